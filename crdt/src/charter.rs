//! Reading and writing the charter, the admins' document.
//!
//! [`CharterView`] is everything the charter says, read in one pass; the charter stays small
//! (roles, asks, moderation, weights), so it is read whole whenever it changes.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ChangeHash, ObjType, ReadDoc};
use serde::{Deserialize, Serialize};

use crate::ids::DocId;
use crate::keys::MemberId;
use crate::schema::{ensure_map, i64_at, map_at, root, str_at, Ask, Role, Weights, SCHEMA_VERSION};

/// Writes the genesis content: the topic's name, its creator as admin, default weights.
pub fn init<T: Transactable>(
    tx: &mut T,
    name: &str,
    creator: &MemberId,
    created: i64,
) -> Result<(), AutomergeError> {
    let root = root();
    tx.put(&root, "v", SCHEMA_VERSION)?;
    tx.put(&root, "name", name)?;
    tx.put(&root, "creator", creator.to_hex())?;
    tx.put(&root, "created", created)?;
    let roles = tx.put_object(&root, "roles", ObjType::Map)?;
    tx.put(&roles, creator.to_hex(), Role::Admin.as_str())?;
    set_weights(tx, &Weights::default())
}

/// Renames the topic.
pub fn set_name<T: Transactable>(tx: &mut T, name: &str) -> Result<(), AutomergeError> {
    tx.put(root(), "name", name)
}

/// Gives `member` a role, or takes its role away (`None`).
pub fn set_role<T: Transactable>(
    tx: &mut T,
    member: &MemberId,
    role: Option<Role>,
) -> Result<(), AutomergeError> {
    let roles = ensure_map(tx, &root(), "roles")?;
    match role {
        Some(role) => tx.put(&roles, member.to_hex(), role.as_str()),
        None => tx.delete(&roles, member.to_hex()),
    }
}

/// Sets every score weight.
pub fn set_weights<T: Transactable>(tx: &mut T, weights: &Weights) -> Result<(), AutomergeError> {
    let map = ensure_map(tx, &root(), "weights")?;
    for name in Weights::NAMES {
        tx.put(&map, name, weights.get(name).expect("named weight"))?;
    }
    Ok(())
}

/// Opens an ask.
pub fn put_ask<T: Transactable>(tx: &mut T, ask: &Ask) -> Result<(), AutomergeError> {
    let asks = ensure_map(tx, &root(), "asks")?;
    let entry = tx.put_object(&asks, ask.id.as_str(), ObjType::Map)?;
    tx.put(&entry, "title", ask.title.as_str())?;
    tx.put(&entry, "body", ask.body.as_str())?;
    tx.put(&entry, "deadline", ask.deadline)?;
    tx.put(&entry, "created", ask.created)?;
    tx.put(&entry, "by", ask.by.to_hex())?;
    Ok(())
}

/// Hides a contribution (moderation), or shows it again (`None`).
pub fn set_hidden<T: Transactable>(
    tx: &mut T,
    contribution: &str,
    hide: Option<(&str, &MemberId, i64)>,
) -> Result<(), AutomergeError> {
    let hidden = ensure_map(tx, &root(), "hidden")?;
    match hide {
        Some((reason, by, at)) => {
            let entry = tx.put_object(&hidden, contribution, ObjType::Map)?;
            tx.put(&entry, "reason", reason)?;
            tx.put(&entry, "by", by.to_hex())?;
            tx.put(&entry, "at", at)?;
            Ok(())
        }
        None => tx.delete(&hidden, contribution),
    }
}

/// Removes a member, pinning each of its journals at the heads the admin saw.
pub fn remove_member<T: Transactable>(
    tx: &mut T,
    member: &MemberId,
    pins: &BTreeMap<DocId, Vec<ChangeHash>>,
    by: &MemberId,
    at: i64,
) -> Result<(), AutomergeError> {
    let removed = ensure_map(tx, &root(), "removed")?;
    let entry = tx.put_object(&removed, member.to_hex(), ObjType::Map)?;
    tx.put(&entry, "by", by.to_hex())?;
    tx.put(&entry, "at", at)?;
    let pin_map = tx.put_object(&entry, "pins", ObjType::Map)?;
    for (doc, heads) in pins {
        let heads: Vec<u8> = heads.iter().flat_map(|h| h.0).collect();
        tx.put(&pin_map, doc.to_string(), heads)?;
    }
    let roles = ensure_map(tx, &root(), "roles")?;
    tx.delete(&roles, member.to_hex())
}

/// Revokes an invite; admissions with it that the admin had already seen stay valid.
pub fn revoke_invite<T: Transactable>(
    tx: &mut T,
    invite: &MemberId,
    already_admitted: &BTreeSet<MemberId>,
    at: i64,
) -> Result<(), AutomergeError> {
    let revoked = ensure_map(tx, &root(), "revoked")?;
    let entry = tx.put_object(&revoked, invite.to_hex(), ObjType::Map)?;
    tx.put(&entry, "at", at)?;
    let admitted: Vec<String> = already_admitted.iter().map(MemberId::to_hex).collect();
    tx.put(&entry, "admitted", admitted.join(" "))?;
    Ok(())
}

/// An admin's decision on a quarantined admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Admit despite the invite's limit or revocation.
    Admit,
    /// Keep out; the member's journals stay stored but unshown.
    Refuse,
}

/// Records a decision on a quarantined admission.
pub fn decide<T: Transactable>(
    tx: &mut T,
    member: &MemberId,
    decision: Decision,
) -> Result<(), AutomergeError> {
    let decisions = ensure_map(tx, &root(), "decisions")?;
    let value = match decision {
        Decision::Admit => "admit",
        Decision::Refuse => "refuse",
    };
    tx.put(&decisions, member.to_hex(), value)
}

/// Links an imported author's alias to the member who claims it.
pub fn link_alias<T: Transactable>(
    tx: &mut T,
    alias: &str,
    member: &MemberId,
) -> Result<(), AutomergeError> {
    let aliases = ensure_map(tx, &root(), "aliases")?;
    tx.put(&aliases, alias, member.to_hex())
}

/// Unlinks an imported author's alias: its records count for the alias again.
pub fn unlink_alias<T: Transactable>(tx: &mut T, alias: &str) -> Result<(), AutomergeError> {
    let aliases = ensure_map(tx, &root(), "aliases")?;
    tx.delete(&aliases, alias)
}

/// A moderation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hidden {
    /// Why (shown to admins).
    pub reason: String,
    /// The admin.
    pub by: MemberId,
    /// Claimed time.
    pub at: i64,
}

/// A removal record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    /// The admin.
    pub by: MemberId,
    /// Claimed time.
    pub at: i64,
    /// Per journal, the heads beyond which nothing counts.
    pub pins: BTreeMap<DocId, Vec<ChangeHash>>,
}

/// A revocation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Claimed time.
    pub at: i64,
    /// Members admitted with it before the revocation, who stay.
    pub admitted: BTreeSet<MemberId>,
}

/// Everything the charter says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharterView {
    /// The topic's name.
    pub name: String,
    /// The creator, an admin by genesis.
    pub creator: Option<MemberId>,
    /// Claimed creation time.
    pub created: i64,
    /// Roles given in the charter.
    pub roles: BTreeMap<MemberId, Role>,
    /// Score weights.
    pub weights: Weights,
    /// Asks by id.
    pub asks: BTreeMap<String, Ask>,
    /// Hidden contributions by id.
    pub hidden: BTreeMap<String, Hidden>,
    /// Removed members.
    pub removed: BTreeMap<MemberId, Removal>,
    /// Revoked invites by invite key.
    pub revoked: BTreeMap<MemberId, Revocation>,
    /// Decisions on quarantined admissions.
    pub decisions: BTreeMap<MemberId, Decision>,
    /// Imported aliases claimed by members.
    pub aliases: BTreeMap<String, MemberId>,
}

fn heads_from_bytes(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .map(|c| ChangeHash(c.try_into().expect("32 bytes")))
            .collect(),
    )
}

impl CharterView {
    /// Reads the whole charter; malformed entries are skipped.
    pub fn read(doc: &impl ReadDoc) -> CharterView {
        let root = root();
        let mut view = CharterView {
            name: str_at(doc, &root, "name").unwrap_or_default(),
            creator: str_at(doc, &root, "creator").and_then(|s| s.parse().ok()),
            created: i64_at(doc, &root, "created").unwrap_or(0),
            ..CharterView::default()
        };

        if let Some(roles) = map_at(doc, &root, "roles") {
            for key in doc.keys(&roles) {
                let member = key.parse::<MemberId>();
                let role = str_at(doc, &roles, &key).and_then(|r| r.parse::<Role>().ok());
                if let (Ok(member), Some(role)) = (member, role) {
                    view.roles.insert(member, role);
                }
            }
        }
        if let Some(weights) = map_at(doc, &root, "weights") {
            for name in Weights::NAMES {
                if let Some(value) = i64_at(doc, &weights, name) {
                    view.weights.set(name, value);
                }
            }
        }
        if let Some(asks) = map_at(doc, &root, "asks") {
            for id in doc.keys(&asks) {
                let Some(entry) = map_at(doc, &asks, &id) else {
                    continue;
                };
                let ask = (|| {
                    Some(Ask {
                        id: id.clone(),
                        title: str_at(doc, &entry, "title")?,
                        body: str_at(doc, &entry, "body").unwrap_or_default(),
                        deadline: i64_at(doc, &entry, "deadline")?,
                        created: i64_at(doc, &entry, "created")?,
                        by: str_at(doc, &entry, "by")?.parse().ok()?,
                    })
                })();
                if let Some(ask) = ask {
                    view.asks.insert(id, ask);
                }
            }
        }
        if let Some(hidden) = map_at(doc, &root, "hidden") {
            for id in doc.keys(&hidden) {
                let Some(entry) = map_at(doc, &hidden, &id) else {
                    continue;
                };
                let record = (|| {
                    Some(Hidden {
                        reason: str_at(doc, &entry, "reason").unwrap_or_default(),
                        by: str_at(doc, &entry, "by")?.parse().ok()?,
                        at: i64_at(doc, &entry, "at")?,
                    })
                })();
                if let Some(record) = record {
                    view.hidden.insert(id, record);
                }
            }
        }
        if let Some(removed) = map_at(doc, &root, "removed") {
            for key in doc.keys(&removed) {
                let Some(entry) = map_at(doc, &removed, &key) else {
                    continue;
                };
                let record = (|| {
                    let member: MemberId = key.parse().ok()?;
                    let mut pins = BTreeMap::new();
                    if let Some(pin_map) = map_at(doc, &entry, "pins") {
                        for doc_key in doc.keys(&pin_map) {
                            let doc_id: DocId = doc_key.parse().ok()?;
                            let bytes = crate::schema::bytes_at(doc, &pin_map, &doc_key)?;
                            pins.insert(doc_id, heads_from_bytes(&bytes)?);
                        }
                    }
                    Some((
                        member,
                        Removal {
                            by: str_at(doc, &entry, "by")?.parse().ok()?,
                            at: i64_at(doc, &entry, "at")?,
                            pins,
                        },
                    ))
                })();
                if let Some((member, removal)) = record {
                    view.removed.insert(member, removal);
                }
            }
        }
        if let Some(revoked) = map_at(doc, &root, "revoked") {
            for key in doc.keys(&revoked) {
                let Some(entry) = map_at(doc, &revoked, &key) else {
                    continue;
                };
                let Ok(invite) = key.parse::<MemberId>() else {
                    continue;
                };
                let admitted = str_at(doc, &entry, "admitted").unwrap_or_default();
                view.revoked.insert(
                    invite,
                    Revocation {
                        at: i64_at(doc, &entry, "at").unwrap_or(0),
                        admitted: admitted.split(' ').filter_map(|m| m.parse().ok()).collect(),
                    },
                );
            }
        }
        if let Some(decisions) = map_at(doc, &root, "decisions") {
            for key in doc.keys(&decisions) {
                let decision = match str_at(doc, &decisions, &key).as_deref() {
                    Some("admit") => Decision::Admit,
                    Some("refuse") => Decision::Refuse,
                    _ => continue,
                };
                if let Ok(member) = key.parse() {
                    view.decisions.insert(member, decision);
                }
            }
        }
        if let Some(aliases) = map_at(doc, &root, "aliases") {
            for alias in doc.keys(&aliases) {
                if let Some(member) = str_at(doc, &aliases, &alias).and_then(|m| m.parse().ok()) {
                    view.aliases.insert(alias, member);
                }
            }
        }
        view
    }

    /// Whether `member` is an admin: by role, or as the creator unless removed.
    pub fn is_admin(&self, member: &MemberId) -> bool {
        if self.removed.contains_key(member) {
            return false;
        }
        self.roles.get(member) == Some(&Role::Admin)
    }
}
