//! Derived views that need more than one record: recognition and the order of a thread.
//!
//! Recognition is a fold over the visible records. What it counts:
//!
//! * per recipient, contributions by kind (retracted or hidden ones do not count);
//! * the net endorsement received on those contributions, except the recipient's own;
//! * kudos received, except from oneself;
//! * accepted answers: answers that their question's author (someone else) accepted;
//! * a score: the sum of each count times the charter's [`Weights`].
//!
//! Imported records are credited to their original author's alias, or to the member an admin
//! linked the alias to. Ranking is by score, then by recipient (member id or alias), so ties
//! rank the same on every node.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::charter::CharterView;
use crate::keys::MemberId;
use crate::schema::{Contribution, Endorsement, Kind, Kudos, Weights};

/// Who receives recognition: a member, or an imported author's alias no member has claimed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "id")]
pub enum Recipient {
    /// A member.
    Member(MemberId),
    /// An unclaimed alias.
    Alias(String),
}

/// Who a contribution's recognition goes to.
pub fn credited_to(charter: &CharterView, contribution: &Contribution) -> Recipient {
    match &contribution.alias {
        Some(alias) => match charter.aliases.get(alias) {
            Some(member) => Recipient::Member(*member),
            None => Recipient::Alias(alias.clone()),
        },
        None => Recipient::Member(contribution.author),
    }
}

/// Who gave an endorsement: the member, or for an imported vote the voter's alias (or the
/// member an admin linked it to).
pub fn endorsed_by(charter: &CharterView, endorsement: &Endorsement) -> Recipient {
    match &endorsement.alias {
        Some(alias) => match charter.aliases.get(alias) {
            Some(member) => Recipient::Member(*member),
            None => Recipient::Alias(alias.clone()),
        },
        None => Recipient::Member(endorsement.endorser),
    }
}

/// One recipient's recognition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recognition {
    /// Contributions by kind.
    pub counts: BTreeMap<Kind, u64>,
    /// Net endorsement received.
    pub endorsement: i64,
    /// Kudos received.
    pub kudos: u64,
    /// Accepted answers.
    pub accepted: u64,
    /// The weighted score.
    pub score: i64,
}

impl Recognition {
    /// Recomputes the score from the counts.
    pub fn rescore(&mut self, weights: &Weights) {
        // Saturating: weights are an admin's numbers, and no number may crash a node.
        let times = |w: i64, n: i64| w.saturating_mul(n);
        let by_kind = self
            .counts
            .iter()
            .map(|(k, n)| times(weights.for_kind(*k), *n as i64))
            .fold(0i64, i64::saturating_add);
        self.score = by_kind
            .saturating_add(times(weights.endorsement, self.endorsement))
            .saturating_add(times(weights.kudos, self.kudos as i64))
            .saturating_add(times(weights.accepted, self.accepted as i64));
    }
}

/// What the tally needs to know of a contribution.
#[derive(Debug, Clone)]
struct Seen {
    recipient: Recipient,
    kind: Kind,
    parent: Option<String>,
}

/// Accumulates recognition over visible records.
///
/// Feed it every visible contribution first, then endorsements, kudos and acceptances in any
/// order; records about contributions it has not seen are ignored.
#[derive(Debug, Default)]
pub struct Tally {
    seen: HashMap<String, Seen>,
    by: BTreeMap<Recipient, Recognition>,
}

impl Tally {
    /// A visible (not retracted, not hidden, by a visible author) contribution.
    pub fn contribution(&mut self, charter: &CharterView, c: &Contribution) {
        let recipient = credited_to(charter, c);
        *self
            .by
            .entry(recipient.clone())
            .or_default()
            .counts
            .entry(c.kind)
            .or_default() += 1;
        self.seen.insert(
            c.id.clone(),
            Seen {
                recipient,
                kind: c.kind,
                parent: c.parent.clone(),
            },
        );
    }

    /// A visible endorser's endorsement.
    pub fn endorsement(&mut self, charter: &CharterView, e: &Endorsement) {
        let Some(seen) = self.seen.get(&e.contribution) else {
            return;
        };
        if seen.recipient == endorsed_by(charter, e) {
            return;
        }
        self.by
            .entry(seen.recipient.clone())
            .or_default()
            .endorsement += e.value as i64;
    }

    /// Kudos from a visible member.
    pub fn kudos(&mut self, k: &Kudos) {
        if k.from == k.to {
            return;
        }
        self.by.entry(Recipient::Member(k.to)).or_default().kudos += 1;
    }

    /// A question's acceptance of `answer`; `question` must be a visible question.
    pub fn accepted(&mut self, question: &str, answer: &str) {
        let (Some(q), Some(a)) = (self.seen.get(question), self.seen.get(answer)) else {
            return;
        };
        if q.kind != Kind::Question
            || a.kind != Kind::Answer
            || a.parent.as_deref() != Some(question)
        {
            return;
        }
        if q.recipient == a.recipient {
            return;
        }
        let recipient = a.recipient.clone();
        self.by.entry(recipient).or_default().accepted += 1;
    }

    /// The ranking: highest score first, ties by recipient.
    pub fn finish(self, weights: &Weights) -> Vec<(Recipient, Recognition)> {
        let mut out: Vec<(Recipient, Recognition)> = self
            .by
            .into_iter()
            .map(|(r, mut rec)| {
                rec.rescore(weights);
                (r, rec)
            })
            .collect();
        out.sort_by(|(ra, a), (rb, b)| b.score.cmp(&a.score).then_with(|| ra.cmp(rb)));
        out
    }
}

/// Orders a question's answers: the accepted one first, then by score (highest first), then
/// oldest first, then by id.
pub fn rank_answers<T>(
    answers: &mut [T],
    accepted: Option<&str>,
    key: impl Fn(&T) -> (&str, i64, i64),
) {
    answers.sort_by(|a, b| {
        let (ida, sa, ca) = key(a);
        let (idb, sb, cb) = key(b);
        let acc_a = Some(ida) == accepted;
        let acc_b = Some(idb) == accepted;
        acc_b
            .cmp(&acc_a)
            .then(sb.cmp(&sa))
            .then(ca.cmp(&cb))
            .then(ida.cmp(idb))
    });
}
