//! Invites and the admissions they lead to: issuing, listing and revoking invites, joining a
//! topic with one, and settling admissions that wait in quarantine.
//!
//! **Issuing** ([`Engine::issue_invite`]). An admin signs a [`Grant`] for a fresh invite key:
//! role, expiry, use limit, and the charter heads at which the admin holds its role. The invite
//! string ([`catchment_protocol::invite`]) carries the topic key, the invite secret, the grant,
//! the inviter's addresses and the charter's signed changes up to the grant's heads. This node
//! records each invite it issues (its public key, role, expiry, uses and creation time, never
//! the secret) so that [`Engine::invites`] can count who used it and
//! [`Engine::revoke_invite`] can find it.
//!
//! **Joining** ([`Engine::join_invite`]) needs nobody online:
//!
//! 1. the string is decoded: prefix, checksum, format version, the grant's signature;
//! 2. an invite whose expiry has passed by this node's clock is refused before anything is
//!    stored;
//! 3. the charter changes it carries are ingested like changes from any peer, so validation
//!    stays the judge of each;
//! 4. a member already in the topic, or an invite the charter here says is revoked, is refused;
//! 5. the topic key is recorded and this member's journal 0 opens with the admission proof.
//!
//! Since the charter came with the invite, the admission validates here at once and the new
//! member contributes before any peer is reachable. When a join is refused for a topic this
//! node did not hold before, the topic's local record is dropped again, so that a failed join
//! does not leave a topic behind in `topic list`.
//!
//! **Settling** ([`Engine::decide`]). Admissions that cannot be settled offline (an invite used
//! beyond its limit, or revoked concurrently) are quarantined alike on every node (see
//! [`catchment_crdt::membership`]) until an admin admits or refuses them in the charter.
//!
//! The clock is read here only to refuse early and clearly. Validation never reads it: every
//! node refuses an admission that claims to have joined after its grant's expiry.

use std::collections::BTreeSet;

use automerge::ReadDoc;
use catchment_crdt::charter::{self, Decision};
use catchment_crdt::invite::{prove_admission, Grant};
use catchment_crdt::membership::Status;
use catchment_crdt::schema::{AdmissionClaim, Profile, Role};
use catchment_crdt::{journal, DocId, Keypair, MemberId, SignedChange, TopicId};
use catchment_protocol::envelope;
use catchment_protocol::invite::{Invite, InviteError, MAX_CHARTER_BYTES};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::query::Who;
use crate::store::{decode, encode, layout, scan, Batch, StoreError};

fn bad(message: impl Into<String>) -> EngineError {
    EngineError::BadInput(message.into())
}

/// A time in UTC to the minute, for messages.
fn utc(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    text.get(..16).map(|s| s.replace('T', " ")).unwrap_or(text)
}

/// An invite this node issued, as its store records it (never the invite's secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedInvite {
    /// The invite's public key, which is its id.
    pub invite: MemberId,
    /// The role it gives.
    pub role: Role,
    /// When it expires (milliseconds since the epoch), if ever.
    pub expires: Option<i64>,
    /// How many members it admits before further admissions are quarantined, if limited.
    pub uses: Option<u32>,
    /// When it was issued (milliseconds since the epoch).
    pub created: i64,
}

/// A new invite: the string to hand over, and what this node recorded of it.
#[derive(Debug)]
pub struct NewInvite {
    /// The invite string (`catchment1...`).
    pub text: String,
    /// The local record.
    pub issued: IssuedInvite,
    /// Whether the string carries the charter, so that the joiner needs nobody online. A
    /// charter larger than [`MAX_CHARTER_BYTES`] is left out, and the joiner waits for a peer.
    pub carries_charter: bool,
}

/// An issued invite as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteView {
    /// The invite key (hex), its id.
    pub id: String,
    /// The first 8 hex digits of the id.
    pub short: String,
    /// The role it gives.
    pub role: Role,
    /// Expiry (milliseconds since the epoch), if any.
    pub expires: Option<i64>,
    /// Use limit, if any.
    pub uses: Option<u32>,
    /// When it was issued.
    pub created: i64,
    /// Members whose admission names it, as this node has seen them, whatever their standing.
    pub used: usize,
    /// Of those, how many wait for an admin's decision.
    pub quarantined: usize,
    /// Whether an admin revoked it.
    pub revoked: bool,
    /// Whether its expiry has passed by this node's clock.
    pub expired: bool,
}

/// An admission waiting for an admin's decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAdmission {
    /// Who.
    pub member: Who,
    /// Its standing: quarantined, with the reason.
    pub status: Status,
    /// The invite it used (its short id).
    pub invite: Option<String>,
    /// The join time the member claims.
    pub joined: i64,
}

impl Engine {
    /// Signs a grant for a fresh invite key (admins); returns the grant and the invite's secret.
    /// Nothing is recorded: [`Engine::issue_invite`] makes the string and records the invite.
    pub fn create_invite(
        &mut self,
        topic: &TopicId,
        role: Role,
        expires: Option<i64>,
        uses: Option<u32>,
    ) -> Result<(Grant, Keypair)> {
        self.require_admin(topic, "create invites")?;
        if uses == Some(0) {
            return Err(bad("an invite needs at least one use"));
        }
        let now = self.now();
        if expires.is_some_and(|e| e <= now) {
            return Err(bad("the expiry must be in the future"));
        }
        if expires.is_some_and(|e| e > now.saturating_add(crate::local::MAX_HORIZON)) {
            return Err(EngineError::BadInput(
                "the expiry must be within 100 years".into(),
            ));
        }
        let heads = self.state(topic)?.charter.get_heads();
        Ok(Grant::issue(
            &self.key, *topic, role, expires, uses, now, heads,
        ))
    }

    /// Issues an invite (admins): signs its grant, records it here, and returns the string
    /// that carries it with the topic key, the charter and `addresses` (multiaddrs where this
    /// node can be reached; the codec keeps at most 16). Call [`Engine::commit`] before
    /// handing the string out, so that `invite list` knows every invite given.
    ///
    /// A member admitted with an admin invite can write the charter once an admin node has
    /// written its role there ([`Engine::settle_admin_invites`], which a running admin node
    /// does as soon as it sees the admission).
    pub fn issue_invite(
        &mut self,
        topic: &TopicId,
        role: Role,
        expires: Option<i64>,
        uses: Option<u32>,
        addresses: &[String],
    ) -> Result<NewInvite> {
        let (grant, secret) = self.create_invite(topic, role, expires, uses)?;
        let topic_key = self.topic_key(topic)?.ok_or_else(|| {
            bad(format!(
                "this node holds no key for topic {} (it arrived from peers or predates topic \
                 keys), so an invite from here could not let anyone sync with its members",
                topic.short()
            ))
        })?;
        let charter = self.charter_changes(topic)?;
        let size: usize = charter.iter().map(|c| envelope::encode(c).len()).sum();

        let issued = IssuedInvite {
            invite: grant.invite,
            role,
            expires,
            uses,
            created: grant.created,
        };
        let mut batch = Batch::default();
        batch.put(
            layout::key(layout::INVITE, topic, &[&grant.invite.0]),
            encode(&issued),
        );
        self.backend.write(batch)?;

        let text = Invite {
            topic_key,
            secret,
            grant,
            addresses: addresses.to_vec(),
            charter,
        }
        .encode();
        Ok(NewInvite {
            text,
            issued,
            carries_charter: size <= MAX_CHARTER_BYTES,
        })
    }

    /// The charter's signed changes in log order (dependencies first), without reading any
    /// journal.
    fn charter_changes(&self, topic: &TopicId) -> Result<Vec<SignedChange>> {
        let prefix = layout::key(layout::LOG, topic, &[&layout::doc(&DocId::Charter)]);
        let mut out = Vec::new();
        for item in scan(self.backend(), &prefix) {
            let (_, hash) = item?;
            let key = layout::key(layout::CHANGE, topic, &[&hash]);
            let Some(bytes) = self.backend.get(&key)? else {
                continue;
            };
            let signed = envelope::decode(&bytes).map_err(|e| StoreError::Corrupt {
                key: hex::encode(&key),
                reason: e.to_string(),
            })?;
            out.push(signed);
        }
        Ok(out)
    }

    /// The invites this node issued for `topic`.
    fn issued_invites(&self, topic: &TopicId) -> Result<Vec<IssuedInvite>> {
        let mut out = Vec::new();
        for item in scan(self.backend(), &layout::prefix(layout::INVITE, topic)) {
            let (k, v) = item?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// The invites this node issued for `topic`, newest first, with who used them.
    pub fn invites(&mut self, topic: &TopicId) -> Result<Vec<InviteView>> {
        let now = self.now();
        let issued = self.issued_invites(topic)?;
        let state = self.state(topic)?;
        let mut out: Vec<InviteView> = issued
            .into_iter()
            .map(|record| {
                let users: Vec<MemberId> = state
                    .admissions
                    .values()
                    .filter(|a| a.invite == Some(record.invite))
                    .map(|a| a.member)
                    .collect();
                let quarantined = users
                    .iter()
                    .filter(|m| matches!(state.status(m), Some(Status::Quarantined(_))))
                    .count();
                InviteView {
                    id: record.invite.to_hex(),
                    short: record.invite.short(),
                    role: record.role,
                    expires: record.expires,
                    uses: record.uses,
                    created: record.created,
                    used: users.len(),
                    quarantined,
                    revoked: state.charter_view.revoked.contains_key(&record.invite),
                    expired: record.expires.is_some_and(|e| e < now),
                }
            })
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Resolves an invite id prefix among the invites issued here and those members used.
    pub fn resolve_invite(&mut self, topic: &TopicId, typed: &str) -> Result<MemberId> {
        let lower = typed.trim().to_lowercase();
        if lower.is_empty() || !lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(EngineError::UnknownInvite(typed.trim().to_string()));
        }
        let mut known: BTreeSet<MemberId> = self
            .issued_invites(topic)?
            .into_iter()
            .map(|record| record.invite)
            .collect();
        known.extend(
            self.state(topic)?
                .admissions
                .values()
                .filter_map(|a| a.invite),
        );
        let found: Vec<MemberId> = known
            .into_iter()
            .filter(|invite| invite.to_hex().starts_with(&lower))
            .collect();
        match found.as_slice() {
            [only] => Ok(*only),
            [] => Err(EngineError::UnknownInvite(lower)),
            _ => Err(EngineError::AmbiguousInvite(lower)),
        }
    }

    /// Revokes an invite (admins), given a prefix of its id. The members this node has seen
    /// admitted with it stay; any other admission with it is quarantined on every node.
    /// Returns the invite and the members kept.
    pub fn revoke_invite(
        &mut self,
        topic: &TopicId,
        typed: &str,
    ) -> Result<(MemberId, BTreeSet<MemberId>)> {
        self.require_admin(topic, "revoke invites")?;
        let invite = self.resolve_invite(topic, typed)?;
        let state = self.state(topic)?;
        if state.charter_view.revoked.contains_key(&invite) {
            return Err(bad(format!("invite {} is already revoked", invite.short())));
        }
        let admitted: BTreeSet<MemberId> = state
            .admissions
            .values()
            .filter(|a| a.invite == Some(invite))
            .filter(|a| matches!(state.status(&a.member), Some(Status::Admitted(_))))
            .map(|a| a.member)
            .collect();
        let at = self.now();
        self.write(topic, DocId::Charter, |tx| {
            charter::revoke_invite(tx, &invite, &admitted, at)
        })?;
        Ok((invite, admitted))
    }

    /// Joins a topic with an invite string (see the module docs for the steps). Returns the
    /// topic; this member's standing in it may already be quarantined, if this node knows the
    /// invite was used up. Call [`Engine::commit`] before confirming.
    pub fn join_invite(&mut self, text: &str, profile: &Profile) -> Result<TopicId> {
        let invite = Invite::decode(text)?;
        if let Some(expires) = invite.grant.expires {
            if expires < self.now() {
                return Err(EngineError::InviteExpired(utc(expires)));
            }
        }
        if invite.charter.iter().any(|c| c.doc != DocId::Charter) {
            return Err(InviteError::Tampered(
                "it carries a change that is not the topic's charter".into(),
            )
            .into());
        }
        let topic = invite.grant.topic;
        let known = self.topic_record(&topic)?.is_some();
        let joined = self.join_with(&invite, profile);
        if joined.is_err() && !known {
            self.drop_topic_record(&topic)?;
        }
        joined
    }

    fn join_with(&mut self, invite: &Invite, profile: &Profile) -> Result<TopicId> {
        let topic = invite.grant.topic;
        if !invite.charter.is_empty() {
            let report = self.ingest(&topic, invite.charter.clone())?;
            // An admin's node validated every one of these: a refusal means they were altered.
            if let Some(rejection) = report.rejected.first() {
                return Err(InviteError::Tampered(format!(
                    "a charter change it carries is refused ({rejection})"
                ))
                .into());
            }
        }

        let me = self.me;
        let state = self.state(&topic)?;
        if let Some(status) = state.status(&me) {
            return Err(EngineError::AlreadyMember(status.describe()));
        }
        if let Some(role) = state.charter_view.roles.get(&me) {
            return Err(EngineError::AlreadyMember(role.to_string()));
        }
        if state
            .charter_view
            .revoked
            .get(&invite.grant.invite)
            .is_some_and(|r| !r.admitted.contains(&me))
        {
            return Err(EngineError::InviteRevoked);
        }
        let charter_here = invite
            .grant
            .charter_heads
            .iter()
            .all(|h| state.charter.get_change_by_hash(h).is_some());
        if !charter_here {
            // TODO: keep the topic and its key so that a running node can fetch the charter
            // from the invite's addresses and then write the admission; today the admission
            // would only wait in memory, so the join is refused instead.
            return Err(EngineError::CharterMissing);
        }

        // The key first: a node holding this topic under another key refuses before any
        // admission is written.
        self.add_topic_with_key(&topic, invite.topic_key)?;
        self.join(&invite.grant, &invite.secret, profile)
    }

    /// Forgets the local record of a topic this node learned only through a refused join.
    /// The charter changes already validated and stored stay, as from any peer.
    fn drop_topic_record(&mut self, topic: &TopicId) -> Result<()> {
        let mut batch = Batch::default();
        batch.delete(layout::prefix(layout::TOPIC, topic));
        self.backend.write(batch)?;
        self.topics.remove(topic);
        Ok(())
    }

    /// Joins a topic with a grant and the invite's secret: this member's journal 0 opens with
    /// the admission proof. The topic's charter, at least up to the heads the grant names,
    /// must be here. [`Engine::join_invite`] does this for an invite string, with its checks.
    pub fn join(
        &mut self,
        grant: &Grant,
        invite_key: &Keypair,
        profile: &Profile,
    ) -> Result<TopicId> {
        let topic = grant.topic;
        grant
            .verify()
            .map_err(|e| InviteError::Tampered(e.to_string()))?;
        if invite_key.member_id() != grant.invite {
            return Err(InviteError::Tampered("the secret does not match the grant".into()).into());
        }
        let me = self.me;
        if let Some(status) = self.state(&topic)?.status(&me) {
            return Err(EngineError::AlreadyMember(status.describe()));
        }
        let proof = prove_admission(invite_key, &topic, &me);
        let claim = AdmissionClaim::Invite {
            grant: grant.to_bytes(),
            proof: proof.to_vec(),
        };
        self.start_journal(&topic, 0, Some(&claim))?;
        if !profile.name.is_empty() || !profile.about.is_empty() {
            self.write(&topic, self.journal0(), |tx| {
                journal::set_profile(tx, profile)
            })?;
        }
        Ok(topic)
    }

    /// A member's standing in a topic, if its admission is here.
    pub fn standing(&mut self, topic: &TopicId, member: &MemberId) -> Result<Option<Status>> {
        Ok(self.state(topic)?.status(member))
    }

    /// The admissions waiting for an admin's decision, with the reason each waits.
    pub fn pending_admissions(&mut self, topic: &TopicId) -> Result<Vec<PendingAdmission>> {
        let state = self.state(topic)?;
        let waiting: Vec<(MemberId, Status, Option<MemberId>, i64)> = state
            .statuses
            .iter()
            .filter(|(_, status)| matches!(status, Status::Quarantined(_)))
            .filter_map(|(member, status)| {
                let admission = state.admissions.get(member)?;
                Some((*member, *status, admission.invite, admission.joined))
            })
            .collect();
        waiting
            .into_iter()
            .map(|(member, status, invite, joined)| {
                Ok(PendingAdmission {
                    member: self.who(topic, &member)?,
                    status,
                    invite: invite.map(|i| i.short()),
                    joined,
                })
            })
            .collect()
    }

    /// Admits or refuses a quarantined admission (admins); a refused one may still be admitted
    /// later. Returns the member's standing afterwards.
    pub fn decide(
        &mut self,
        topic: &TopicId,
        member: &MemberId,
        decision: Decision,
    ) -> Result<Status> {
        let action = match decision {
            Decision::Admit => "admit members",
            Decision::Refuse => "refuse members",
        };
        self.require_admin(topic, action)?;
        let status = self
            .state(topic)?
            .status(member)
            .ok_or_else(|| EngineError::UnknownMember(member.short()))?;
        let who = member.short();
        match (decision, status) {
            (_, Status::Quarantined(_)) | (Decision::Admit, Status::Refused) => {}
            (Decision::Admit, Status::Admitted(_)) => {
                return Err(bad(format!("{who} is already admitted")));
            }
            (Decision::Refuse, Status::Admitted(_)) => {
                return Err(bad(format!(
                    "{who} is admitted, not waiting for a decision: to take them out, remove \
                     them (`catchment member remove`)"
                )));
            }
            (Decision::Refuse, Status::Refused) => {
                return Err(bad(format!("{who} is already refused")));
            }
            (_, Status::Removed) => return Err(bad(format!("{who} was removed"))),
        }
        self.write(topic, DocId::Charter, |tx| {
            charter::decide(tx, member, decision)
        })?;
        self.state(topic)?
            .status(member)
            .ok_or(EngineError::UnknownMember(who))
    }
}

impl Engine {
    /// Writes the admin role into the charter for members admitted with an admin invite.
    ///
    /// Validation counts only charter roles as admins (a charter change is judged by the charter
    /// at its own dependencies), so an admin invite's grant alone does not let its holder write
    /// the charter. The first admin node that sees such an admission settled (admitted, not
    /// quarantined) writes the role; the running node calls this after every change it
    /// receives. Returns how many roles were written.
    pub fn settle_admin_invites(&mut self, topic: &TopicId) -> Result<usize> {
        let me = self.me;
        let state = self.state(topic)?;
        if !state.charter_view.is_admin(&me) {
            return Ok(0);
        }
        let due: Vec<MemberId> = state
            .admissions
            .values()
            .filter(|a| a.role == Role::Admin && a.invite.is_some())
            .filter(|a| !state.charter_view.roles.contains_key(&a.member))
            .filter(|a| state.status(&a.member) == Some(Status::Admitted(Role::Admin)))
            .map(|a| a.member)
            .collect();
        for member in &due {
            self.write(topic, DocId::Charter, |tx| {
                catchment_crdt::charter::set_role(tx, member, Some(Role::Admin))
            })?;
        }
        Ok(due.len())
    }
}
