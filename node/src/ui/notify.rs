//! Notifications for the person at this node, and the UI's event stream.
//!
//! A background task watches the node's events. After changes arrive (in bursts, so it waits
//! a moment and takes them together), it reads this member's contributions and profile in
//! each topic through the same operations as every page, compares them with what it read
//! last time, and says what is new for this member: an answer to my question, my answer
//! accepted, an endorsement or kudos for me. Every minute, and after changes, it also names
//! asks that close within a day, once each. The first reading of a topic is the baseline:
//! what happened before the node started is not announced.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use catchment_crdt::schema::{Ask, Kind};
use futures::Stream;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::UiState;
use crate::engine::system_now;
use crate::ops::Request;
use crate::query::{Item, ProfileView, Thread, TopicSummary};
use crate::runtime::Event;

/// How many notifications are kept.
const KEEP: usize = 100;
/// An ask closing within this many milliseconds is announced.
const CLOSING_SOON: i64 = 24 * 3600 * 1000;
/// How many of this member's contributions are watched per topic.
const WATCHED: usize = 500;

/// Something new for this member.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Notice {
    /// Increasing number.
    pub id: u64,
    /// Topic id.
    pub topic: String,
    /// Topic name.
    pub topic_name: String,
    /// What happened, in words.
    pub text: String,
    /// Where to see it.
    pub link: String,
    /// When it was noticed (ms).
    pub at: i64,
}

/// The notifications so far, and a channel for the live ones.
pub(crate) struct Notices {
    list: Mutex<VecDeque<Notice>>,
    unread: AtomicUsize,
    next: AtomicU64,
    live: broadcast::Sender<Notice>,
}

impl Default for Notices {
    fn default() -> Self {
        Notices {
            list: Mutex::new(VecDeque::new()),
            unread: AtomicUsize::new(0),
            next: AtomicU64::new(1),
            live: broadcast::channel(64).0,
        }
    }
}

impl Notices {
    fn push(&self, topic: &TopicSummary, text: String, link: String) {
        let notice = Notice {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            topic: topic.id.clone(),
            topic_name: topic.name.clone(),
            text,
            link,
            at: system_now(),
        };
        tracing::debug!(text = %notice.text, "notification");
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.push_front(notice.clone());
        list.truncate(KEEP);
        self.unread.fetch_add(1, Ordering::Relaxed);
        let _ = self.live.send(notice);
    }

    /// The notifications, newest first; reading them marks them seen.
    pub fn read(&self) -> Vec<Notice> {
        self.unread.store(0, Ordering::Relaxed);
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().cloned().collect()
    }

    /// How many arrived since they were last read.
    pub fn unread(&self) -> usize {
        self.unread.load(Ordering::Relaxed)
    }
}

/// What was last read of one topic.
#[derive(Default)]
struct Snapshot {
    /// My contributions: (kind, label, score, accepted).
    mine: HashMap<String, (Kind, String, i64, bool, usize)>,
    /// My questions' answers by others.
    answers: HashMap<String, HashSet<String>>,
    /// Kudos received: (from, created).
    kudos: HashSet<(String, i64)>,
}

fn quoted(item_label: &str) -> String {
    format!("“{item_label}”")
}

struct Watcher {
    state: Arc<UiState>,
    topics: HashMap<String, Snapshot>,
    asks_told: HashSet<String>,
}

impl Watcher {
    async fn refresh(&mut self) {
        let Ok(topics) = self
            .state
            .call_as::<Vec<TopicSummary>>(Request::TopicList)
            .await
        else {
            return;
        };
        for topic in &topics {
            self.topic(topic).await;
            self.asks(topic).await;
        }
    }

    async fn topic(&mut self, topic: &TopicSummary) {
        let state = self.state.clone();
        let t = Some(topic.id.clone());
        let Ok(items) = state
            .call_as::<Vec<Item>>(Request::Feed {
                topic: t.clone(),
                kind: None,
                tag: None,
                ask: None,
                author: Some("me".into()),
                limit: WATCHED,
            })
            .await
        else {
            return;
        };
        let Ok(profile) = state
            .call_as::<ProfileView>(Request::Profile {
                topic: t.clone(),
                member: None,
            })
            .await
        else {
            return;
        };
        let me = profile.who.id.clone();
        let previous = self.topics.remove(&topic.id);
        let mut next = Snapshot::default();
        let base = format!("/t/{}", topic.id);

        for item in &items {
            let label = super::layout::label(item);
            let accepted = item.kind == Kind::Answer && item.accepted.as_deref() == Some(&item.id);
            next.mine.insert(
                item.id.clone(),
                (item.kind, label.clone(), item.score, accepted, item.replies),
            );
            let before = previous.as_ref().and_then(|p| p.mine.get(&item.id));
            let link = format!("{base}/c/{}", item.id);
            if let Some((_, _, score, was_accepted, _)) = before {
                if item.score > *score {
                    let n = item.score - score;
                    self.state.notices.push(
                        topic,
                        format!("Your {} {} was endorsed (+{n})", item.kind, quoted(&label)),
                        link.clone(),
                    );
                } else if item.score < *score {
                    self.state.notices.push(
                        topic,
                        format!(
                            "Your {} {} was endorsed −{}",
                            item.kind,
                            quoted(&label),
                            score - item.score
                        ),
                        link.clone(),
                    );
                }
                if accepted && !was_accepted {
                    self.state.notices.push(
                        topic,
                        format!("Your answer {} was accepted", quoted(&label)),
                        link.clone(),
                    );
                }
            }

            if item.kind == Kind::Question {
                let known = previous.as_ref().and_then(|p| p.answers.get(&item.id));
                let unchanged = before.is_some_and(|(.., replies)| *replies == item.replies);
                let answers = match known {
                    Some(known) if unchanged => known.clone(),
                    _ if item.replies == 0 => HashSet::new(),
                    _ => self.answers_of(topic, &item.id, &me).await,
                };
                if before.is_some() {
                    let empty = HashSet::new();
                    for answer in answers.difference(known.unwrap_or(&empty)) {
                        self.state.notices.push(
                            topic,
                            format!("New answer to your question {}", quoted(&label)),
                            format!("{base}/c/{}#c-{answer}", item.id),
                        );
                    }
                }
                next.answers.insert(item.id.clone(), answers);
            }
        }

        for kudos in &profile.kudos {
            let key = (kudos.from.id.clone(), kudos.created);
            if previous.as_ref().is_some_and(|p| !p.kudos.contains(&key)) {
                let from = if kudos.from.name.is_empty() {
                    kudos.from.short.clone()
                } else {
                    kudos.from.name.clone()
                };
                let note = if kudos.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", kudos.note)
                };
                self.state.notices.push(
                    topic,
                    format!("{from} gave you kudos{note}"),
                    format!("{base}/m/me"),
                );
            }
            next.kudos.insert(key);
        }
        self.topics.insert(topic.id.clone(), next);
    }

    /// Ids of the answers by others to one of my questions.
    async fn answers_of(&self, topic: &TopicSummary, question: &str, me: &str) -> HashSet<String> {
        let thread = self
            .state
            .call_as::<Thread>(Request::Show {
                topic: Some(topic.id.clone()),
                id: question.to_string(),
            })
            .await;
        match thread {
            Ok(thread) => thread
                .replies
                .iter()
                .filter(|r| r.item.kind == Kind::Answer && r.item.author.id != me)
                .map(|r| r.item.id.clone())
                .collect(),
            Err(_) => HashSet::new(),
        }
    }

    async fn asks(&mut self, topic: &TopicSummary) {
        let Ok(asks) = self
            .state
            .call_as::<Vec<Ask>>(Request::AskList {
                topic: Some(topic.id.clone()),
            })
            .await
        else {
            return;
        };
        let now = system_now();
        for ask in asks {
            let left = ask.deadline - now;
            if left > 0 && left <= CLOSING_SOON && self.asks_told.insert(ask.id.clone()) {
                let hours = (left + 1_800_000) / 3_600_000;
                let when = if hours == 0 {
                    "within the hour".to_string()
                } else {
                    format!("in {hours} h")
                };
                self.state.notices.push(
                    topic,
                    format!("The ask “{}” closes {when}", ask.title),
                    format!("/t/{}/asks#ask-{}", topic.id, ask.id),
                );
            }
        }
    }
}

/// Starts the watcher; it ends when the node's event channel closes.
pub(crate) fn spawn(state: Arc<UiState>) {
    let mut events = state.api.events.subscribe();
    tokio::spawn(async move {
        let mut watcher = Watcher {
            state,
            topics: HashMap::new(),
            asks_told: HashSet::new(),
        };
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(Event::Change { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Take a burst of changes together.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        while events.try_recv().is_ok() {}
                        watcher.refresh().await;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => watcher.refresh().await,
            }
        }
    });
}

/// `GET /events`: the node's events for the open pages, and new notifications.
pub(crate) async fn events(
    State(state): State<Arc<UiState>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let node = BroadcastStream::new(state.api.events.subscribe()).filter_map(|event| {
        let event = event.ok()?;
        let data = serde_json::to_string(&event).ok()?;
        Some(Ok(SseEvent::default().event(event.name()).data(data)))
    });
    let notices = BroadcastStream::new(state.notices.live.subscribe()).filter_map(|notice| {
        let notice = notice.ok()?;
        let data =
            json!({ "text": notice.text, "link": notice.link, "topic": notice.topic }).to_string();
        Some(Ok(SseEvent::default().event("notice").data(data)))
    });
    Sse::new(node.merge(notices)).keep_alive(KeepAlive::default())
}
