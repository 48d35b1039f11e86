//! Imported authors' aliases: listing them, and linking one to a real member so that its
//! records (and their recognition) follow the person.
//!
//! A link is a charter entry (`aliases`: alias -> member), so only an admin writes it and
//! every node reads the same. Linking again to another member moves the record; unlinking
//! makes the alias stand on its own again.

use std::collections::BTreeMap;

use catchment_crdt::schema::{Contribution, Kind, MAX_NAME};
use catchment_crdt::views::Recipient;
use catchment_crdt::{charter, DocId, MemberId, TopicId};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::query::{FeedFilter, ProfileView, Who};
use crate::store::{decode, layout, scan};

/// An alias as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasView {
    /// The alias (`user12`).
    pub alias: String,
    /// The member it is linked to, if any.
    pub member: Option<Who>,
    /// Its visible contributions by kind.
    pub counts: BTreeMap<Kind, u64>,
}

impl Engine {
    /// Links `alias` to `member` (admins), or unlinks it (`None`).
    pub fn link_alias(
        &mut self,
        topic: &TopicId,
        alias: &str,
        member: Option<&MemberId>,
    ) -> Result<()> {
        self.require_admin(topic, "link aliases")?;
        let alias = alias.trim();
        if alias.is_empty() || alias.len() > MAX_NAME || alias.chars().any(char::is_control) {
            return Err(EngineError::BadInput(format!(
                "alias {alias:?} must be 1 to {MAX_NAME} bytes of printable text"
            )));
        }
        let known = self.aliases(topic)?.iter().any(|a| a.alias == alias);
        let linked = self.state(topic)?.charter_view.aliases.get(alias).copied();
        if !known && linked.is_none() {
            return Err(EngineError::BadInput(format!(
                "no imported author {alias:?} in this topic (see `catchment alias list`)"
            )));
        }
        match member {
            Some(member) => {
                if !self.state(topic)?.is_visible(member) {
                    return Err(EngineError::UnknownMember(member.short()));
                }
                if linked == Some(*member) {
                    return Ok(());
                }
                self.write(topic, DocId::Charter, |tx| {
                    charter::link_alias(tx, alias, member)
                })?;
            }
            None => {
                if linked.is_none() {
                    return Err(EngineError::BadInput(format!("{alias:?} is not linked")));
                }
                self.write(topic, DocId::Charter, |tx| charter::unlink_alias(tx, alias))?;
            }
        }
        Ok(())
    }

    /// The alias exactly as typed, if an imported author of this topic has it (or an admin
    /// linked it).
    pub fn known_alias(&mut self, topic: &TopicId, typed: &str) -> Result<Option<String>> {
        let typed = typed.trim();
        if self.state(topic)?.charter_view.aliases.contains_key(typed) {
            return Ok(Some(typed.to_string()));
        }
        Ok(self
            .aliases(topic)?
            .into_iter()
            .find(|a| a.alias == typed)
            .map(|a| a.alias))
    }

    /// An imported author's profile: its recognition while no member claims it, and its
    /// recent contributions. A linked alias shows the member it follows.
    pub fn alias_profile(&mut self, topic: &TopicId, alias: &str) -> Result<ProfileView> {
        let linked = self.state(topic)?.charter_view.aliases.get(alias).copied();
        if let Some(member) = linked {
            let mut view = self.profile(topic, &member)?;
            view.status = format!("{}; imported as {alias}", view.status);
            return Ok(view);
        }
        let me = Recipient::Alias(alias.to_string());
        let (rank, recognition) = self
            .recognition(topic)?
            .into_iter()
            .enumerate()
            .find(|(_, (r, _))| *r == me)
            .map(|(i, (_, rec))| (i + 1, rec))
            .unwrap_or_default();
        let recent = self.feed(
            topic,
            &FeedFilter {
                alias: Some(alias.to_string()),
                limit: 10,
                ..FeedFilter::default()
            },
        )?;
        Ok(ProfileView {
            who: Who {
                id: alias.to_string(),
                short: String::new(),
                name: alias.to_string(),
                alias: true,
            },
            about: String::new(),
            status: "imported author, not linked to a member".into(),
            rank,
            recognition,
            kudos: Vec::new(),
            recent,
        })
    }

    /// Every alias that wrote a visible contribution, and every linked one, by name.
    pub fn aliases(&mut self, topic: &TopicId) -> Result<Vec<AliasView>> {
        self.state(topic)?;
        let mut counts: BTreeMap<String, BTreeMap<Kind, u64>> = BTreeMap::new();
        let state = &self.topics[topic];
        for item in scan(self.backend(), &layout::prefix(layout::CONTRIBUTION, topic)) {
            let (k, v) = item?;
            let c: Contribution = decode(&k, &v)?;
            let Some(alias) = c.alias else { continue };
            if c.retracted
                || state.charter_view.hidden.contains_key(&c.id)
                || !state.is_visible(&c.author)
            {
                continue;
            }
            *counts.entry(alias).or_default().entry(c.kind).or_default() += 1;
        }
        let links = state.charter_view.aliases.clone();
        for alias in links.keys() {
            counts.entry(alias.clone()).or_default();
        }
        let mut out = Vec::with_capacity(counts.len());
        for (alias, counts) in counts {
            let member = match links.get(&alias) {
                Some(m) => Some(self.who(topic, m)?),
                None => None,
            };
            out.push(AliasView {
                alias,
                member,
                counts,
            });
        }
        Ok(out)
    }
}
