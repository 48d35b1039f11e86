//! Reading and writing a member's journal documents.
//!
//! Writers take an open transaction on the journal; they never decide whether the change is
//! allowed (that is [`crate::validate`]'s job, for local and remote changes alike). Readers
//! turn what a journal holds into records, ignoring any entry whose fields are malformed, so
//! that a peer's odd entry shows nowhere rather than differently on different nodes.

use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ChangeHash, ObjId, Prop, ReadDoc};

use crate::keys::MemberId;
use crate::schema::{
    bytes_at, ensure_map, i64_at, map_at, normalise_tags, root, str_at, AdmissionClaim,
    Contribution, Draft, Edit, Endorsement, Kind, Kudos, Profile, SCHEMA_VERSION,
};

const CONTRIBUTIONS: &str = "c";
const ENDORSEMENTS: &str = "e";
const VOTES: &str = "ae";
const ADMIN_AT: &str = "admin_at";
const KUDOS: &str = "k";
const PROFILE: &str = "profile";
const ADMISSION: &str = "admission";

/// Writes a new journal's header; journal 0 also carries the admission claim.
pub fn init<T: Transactable>(
    tx: &mut T,
    member: &MemberId,
    n: u32,
    admission: Option<&AdmissionClaim>,
    joined: i64,
) -> Result<(), AutomergeError> {
    let root = root();
    tx.put(&root, "v", SCHEMA_VERSION)?;
    tx.put(&root, "member", member.to_hex())?;
    tx.put(&root, "n", n as i64)?;
    if let Some(claim) = admission {
        let adm = tx.put_object(&root, ADMISSION, automerge::ObjType::Map)?;
        match claim {
            AdmissionClaim::Role { charter_heads } => {
                let heads: Vec<u8> = charter_heads.iter().flat_map(|h| h.0).collect();
                tx.put(&adm, "role_at", heads)?;
            }
            AdmissionClaim::Invite { grant, proof } => {
                tx.put(&adm, "grant", grant.clone())?;
                tx.put(&adm, "proof", proof.clone())?;
            }
        }
        tx.put(&root, "joined", joined)?;
    }
    Ok(())
}

/// Adds a contribution.
pub fn put_contribution<T: Transactable>(
    tx: &mut T,
    id: &str,
    kind: Kind,
    draft: &Draft,
    created: i64,
) -> Result<(), AutomergeError> {
    let section = ensure_map(tx, &root(), CONTRIBUTIONS)?;
    let entry = tx.put_object(&section, id, automerge::ObjType::Map)?;
    tx.put(&entry, "kind", kind.as_str())?;
    tx.put(&entry, "title", draft.title.as_str())?;
    tx.put(&entry, "body", draft.body.as_str())?;
    tx.put(&entry, "tags", normalise_tags(&draft.tags).join(" "))?;
    if let Some(parent) = &draft.parent {
        tx.put(&entry, "parent", parent.as_str())?;
    }
    if let Some(ask) = &draft.ask {
        tx.put(&entry, "ask", ask.as_str())?;
    }
    if let Some(alias) = &draft.alias {
        tx.put(&entry, "alias", alias.as_str())?;
    }
    tx.put(&entry, "created", created)?;
    Ok(())
}

fn contribution_entry<T: Transactable>(tx: &T, id: &str) -> Result<ObjId, AutomergeError> {
    map_at(tx, &root(), CONTRIBUTIONS)
        .and_then(|section| map_at(tx, &section, id))
        .ok_or_else(|| AutomergeError::InvalidOp(automerge::ObjType::Map))
}

/// Whether this journal holds contribution `id`.
pub fn has_contribution(doc: &impl ReadDoc, id: &str) -> bool {
    map_at(doc, &root(), CONTRIBUTIONS)
        .and_then(|s| map_at(doc, &s, id))
        .is_some()
}

/// Edits a contribution this journal holds.
pub fn edit_contribution<T: Transactable>(
    tx: &mut T,
    id: &str,
    edit: &Edit,
    at: i64,
) -> Result<(), AutomergeError> {
    let entry = contribution_entry(tx, id)?;
    if let Some(title) = &edit.title {
        tx.put(&entry, "title", title.as_str())?;
    }
    if let Some(body) = &edit.body {
        tx.put(&entry, "body", body.as_str())?;
    }
    if let Some(tags) = &edit.tags {
        tx.put(&entry, "tags", normalise_tags(tags).join(" "))?;
    }
    tx.put(&entry, "edited", at)?;
    Ok(())
}

/// Retracts a contribution this journal holds: hidden everywhere, history kept.
pub fn retract<T: Transactable>(tx: &mut T, id: &str, at: i64) -> Result<(), AutomergeError> {
    let entry = contribution_entry(tx, id)?;
    tx.put(&entry, "retracted", true)?;
    tx.put(&entry, "edited", at)?;
    Ok(())
}

/// Marks `answer` as the accepted answer of `question`, a question this journal holds.
pub fn accept<T: Transactable>(
    tx: &mut T,
    question: &str,
    answer: &str,
) -> Result<(), AutomergeError> {
    let entry = contribution_entry(tx, question)?;
    tx.put(&entry, "accepted", answer)?;
    Ok(())
}

/// Sets this member's endorsement of `contribution` (-1, 0 or +1).
pub fn endorse<T: Transactable>(
    tx: &mut T,
    contribution: &str,
    value: i8,
) -> Result<(), AutomergeError> {
    let section = ensure_map(tx, &root(), ENDORSEMENTS)?;
    tx.put(&section, contribution, value as i64)?;
    Ok(())
}

/// Whether this journal holds an endorsement of `contribution`.
pub fn has_endorsement(doc: &impl ReadDoc, contribution: &str) -> bool {
    map_at(doc, &root(), ENDORSEMENTS)
        .map(|s| i64_at(doc, &s, contribution).is_some())
        .unwrap_or(false)
}

/// Records an imported vote: entry `id` endorses `contribution` with `value` in the name of
/// the voter's `alias`, marked with the charter heads at which the writer is an admin.
pub fn put_vote<T: Transactable>(
    tx: &mut T,
    id: &str,
    contribution: &str,
    value: i8,
    alias: &str,
    admin_at: &[ChangeHash],
) -> Result<(), AutomergeError> {
    let section = ensure_map(tx, &root(), VOTES)?;
    let entry = tx.put_object(&section, id, automerge::ObjType::Map)?;
    tx.put(&entry, "contribution", contribution)?;
    tx.put(&entry, "value", value as i64)?;
    tx.put(&entry, "alias", alias)?;
    mark_admin(tx, &entry, admin_at)
}

/// Whether this journal holds imported vote `id`.
pub fn has_vote(doc: &impl ReadDoc, id: &str) -> bool {
    map_at(doc, &root(), VOTES)
        .and_then(|s| map_at(doc, &s, id))
        .is_some()
}

/// Adds an imported contribution: as [`put_contribution`] (the draft carries the alias), and
/// marked with the charter heads at which the writer is an admin. Only admins import.
pub fn put_imported<T: Transactable>(
    tx: &mut T,
    id: &str,
    kind: Kind,
    draft: &Draft,
    created: i64,
    admin_at: &[ChangeHash],
) -> Result<(), AutomergeError> {
    put_contribution(tx, id, kind, draft, created)?;
    let entry = contribution_entry(tx, id)?;
    mark_admin(tx, &entry, admin_at)
}

/// Marks an entry with the charter heads at which its writer is an admin: validation refuses
/// a change that writes an alias without such a mark (see [`alias_claim`]).
fn mark_admin<T: Transactable>(
    tx: &mut T,
    entry: &ObjId,
    charter_heads: &[ChangeHash],
) -> Result<(), AutomergeError> {
    let heads: Vec<u8> = charter_heads.iter().flat_map(|h| h.0).collect();
    tx.put(entry, ADMIN_AT, heads)
}

/// What a change says about aliased records: whether it writes an `alias` field anywhere, and
/// the charter heads its admin marks name (`None` if it has none, or a malformed one; every
/// mark of one change must name the same heads).
pub fn alias_claim(change: &automerge::Change) -> (bool, Option<Vec<ChangeHash>>) {
    // Cheap test first: a change that never spells "alias" writes no alias.
    if !change.raw_bytes().windows(5).any(|w| w == b"alias") {
        return (false, None);
    }
    let mut writes_alias = false;
    let mut unmarked = false;
    let mut heads: Option<Vec<ChangeHash>> = None;
    for op in change.decode().operations {
        let automerge::legacy::Key::Map(key) = &op.key else {
            continue;
        };
        if key.as_str() == "alias" {
            writes_alias = true;
        }
        if key.as_str() == ADMIN_AT {
            let named = match op.primitive_value() {
                Some(automerge::ScalarValue::Bytes(b)) if b.len() % 32 == 0 && !b.is_empty() => b
                    .chunks_exact(32)
                    .map(|c| ChangeHash(c.try_into().expect("chunks of 32")))
                    .collect::<Vec<_>>(),
                // A malformed mark makes the whole change unmarked.
                _ => {
                    unmarked = true;
                    continue;
                }
            };
            match &heads {
                None => heads = Some(named),
                Some(first) if *first == named => {}
                Some(_) => unmarked = true,
            }
        }
    }
    if unmarked {
        return (writes_alias, None);
    }
    (writes_alias, heads)
}

/// Gives kudos.
pub fn put_kudos<T: Transactable>(
    tx: &mut T,
    id: &str,
    to: &MemberId,
    note: &str,
    contribution: Option<&str>,
    created: i64,
) -> Result<(), AutomergeError> {
    let section = ensure_map(tx, &root(), KUDOS)?;
    let entry = tx.put_object(&section, id, automerge::ObjType::Map)?;
    tx.put(&entry, "to", to.to_hex())?;
    tx.put(&entry, "note", note)?;
    if let Some(c) = contribution {
        tx.put(&entry, "contribution", c)?;
    }
    tx.put(&entry, "created", created)?;
    Ok(())
}

/// Sets the profile (journal 0).
pub fn set_profile<T: Transactable>(tx: &mut T, profile: &Profile) -> Result<(), AutomergeError> {
    let section = ensure_map(tx, &root(), PROFILE)?;
    tx.put(&section, "name", profile.name.as_str())?;
    tx.put(&section, "about", profile.about.as_str())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Readers.

/// Reads contribution `id` from the journal `n` of `author`.
pub fn read_contribution(
    doc: &impl ReadDoc,
    author: MemberId,
    n: u32,
    id: &str,
) -> Option<Contribution> {
    use automerge::{ScalarValueRef as Scalar, ValueRef};

    if !crate::ids::is_entry_id(id) {
        return None;
    }
    let section = map_at(doc, &root(), CONTRIBUTIONS)?;
    let entry = map_at(doc, &section, id)?;
    let mut kind = None;
    let mut created = None;
    let mut c = Contribution {
        id: id.to_string(),
        author,
        journal: n,
        kind: Kind::Idea,
        title: String::new(),
        body: String::new(),
        tags: Vec::new(),
        parent: None,
        ask: None,
        created: 0,
        edited: None,
        retracted: false,
        accepted: None,
        alias: None,
    };
    // One pass over the entry's fields; a field of the wrong type counts as absent.
    for field in doc.map_range(&entry, ..) {
        let ValueRef::Scalar(value) = &field.value else {
            continue;
        };
        let text = match value {
            Scalar::Str(s) => Some(s.as_ref()),
            _ => None,
        };
        let number = match value {
            Scalar::Int(i) | Scalar::Timestamp(i) | Scalar::Counter(i) => Some(*i),
            Scalar::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        };
        match field.key.as_ref() {
            "kind" => kind = text.and_then(|t| t.parse::<Kind>().ok()),
            "title" => c.title = text.unwrap_or_default().to_string(),
            "body" => c.body = text.unwrap_or_default().to_string(),
            "tags" => {
                c.tags = text
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "parent" => c.parent = text.map(str::to_string),
            "ask" => c.ask = text.map(str::to_string),
            "created" => created = number,
            "edited" => c.edited = number,
            "retracted" => c.retracted = matches!(value, Scalar::Boolean(true)),
            "accepted" => c.accepted = text.map(str::to_string),
            "alias" => c.alias = text.map(str::to_string),
            _ => {}
        }
    }
    c.kind = kind?;
    c.created = created?;
    Some(c)
}

/// Reads the endorsement of `contribution` in journal `n` of `endorser`.
pub fn read_endorsement(
    doc: &impl ReadDoc,
    endorser: MemberId,
    n: u32,
    contribution: &str,
) -> Option<Endorsement> {
    let section = map_at(doc, &root(), ENDORSEMENTS)?;
    let value = i64_at(doc, &section, contribution)?;
    if !(-1..=1).contains(&value) {
        return None;
    }
    Some(Endorsement {
        contribution: contribution.to_string(),
        endorser,
        value: value as i8,
        journal: n,
        alias: None,
    })
}

/// Reads imported vote `id` in journal `n` of `endorser` (the admin who imported it).
pub fn read_vote(doc: &impl ReadDoc, endorser: MemberId, n: u32, id: &str) -> Option<Endorsement> {
    let section = map_at(doc, &root(), VOTES)?;
    let entry = map_at(doc, &section, id)?;
    let value = i64_at(doc, &entry, "value")?;
    if !(-1..=1).contains(&value) {
        return None;
    }
    let contribution = str_at(doc, &entry, "contribution")?;
    if !crate::ids::is_entry_id(&contribution) {
        return None;
    }
    Some(Endorsement {
        contribution,
        endorser,
        value: value as i8,
        journal: n,
        alias: Some(str_at(doc, &entry, "alias")?),
    })
}

/// Reads kudos `id` given by `from`.
pub fn read_kudos(doc: &impl ReadDoc, from: MemberId, id: &str) -> Option<Kudos> {
    let section = map_at(doc, &root(), KUDOS)?;
    let entry = map_at(doc, &section, id)?;
    Some(Kudos {
        id: id.to_string(),
        from,
        to: str_at(doc, &entry, "to")?.parse().ok()?,
        note: str_at(doc, &entry, "note").unwrap_or_default(),
        contribution: str_at(doc, &entry, "contribution"),
        created: i64_at(doc, &entry, "created")?,
    })
}

/// Reads the profile (journal 0).
pub fn read_profile(doc: &impl ReadDoc) -> Profile {
    match map_at(doc, &root(), PROFILE) {
        Some(p) => Profile {
            name: str_at(doc, &p, "name").unwrap_or_default(),
            about: str_at(doc, &p, "about").unwrap_or_default(),
        },
        None => Profile::default(),
    }
}

/// Reads the admission claim and the claimed join time (journal 0).
pub fn read_admission(doc: &impl ReadDoc) -> Option<(AdmissionClaim, i64)> {
    let adm = map_at(doc, &root(), ADMISSION)?;
    let joined = i64_at(doc, &root(), "joined")?;
    if let Some(heads) = bytes_at(doc, &adm, "role_at") {
        if !heads.len().is_multiple_of(32) {
            return None;
        }
        let charter_heads = heads
            .chunks_exact(32)
            .map(|c| automerge::ChangeHash(c.try_into().expect("chunks of 32")))
            .collect();
        return Some((AdmissionClaim::Role { charter_heads }, joined));
    }
    let grant = bytes_at(doc, &adm, "grant")?;
    let proof = bytes_at(doc, &adm, "proof")?;
    Some((AdmissionClaim::Invite { grant, proof }, joined))
}

/// How many entries (contributions, endorsements, kudos) the journal holds.
pub fn entry_count(doc: &impl ReadDoc) -> usize {
    [CONTRIBUTIONS, ENDORSEMENTS, KUDOS, VOTES]
        .iter()
        .filter_map(|s| map_at(doc, &root(), s))
        .map(|s| doc.length(&s))
        .sum()
}

/// Every entry a journal holds.
pub fn all_entries(doc: &impl ReadDoc) -> Touched {
    let mut touched = Touched {
        profile: true,
        ..Touched::default()
    };
    for (section, set) in [
        (CONTRIBUTIONS, &mut touched.contributions),
        (ENDORSEMENTS, &mut touched.endorsements),
        (KUDOS, &mut touched.kudos),
        (VOTES, &mut touched.votes),
    ] {
        if let Some(s) = map_at(doc, &root(), section) {
            set.extend(doc.keys(&s));
        }
    }
    touched
}

/// The entries that changes between two sets of heads touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Contribution ids.
    pub contributions: BTreeSet<String>,
    /// Endorsed contribution ids.
    pub endorsements: BTreeSet<String>,
    /// Kudos ids.
    pub kudos: BTreeSet<String>,
    /// Imported vote ids.
    pub votes: BTreeSet<String>,
    /// The profile or admission changed.
    pub profile: bool,
}

impl Touched {
    /// Nothing touched.
    pub fn is_empty(&self) -> bool {
        self.contributions.is_empty()
            && self.endorsements.is_empty()
            && self.kudos.is_empty()
            && self.votes.is_empty()
            && !self.profile
    }
}

/// Finds what changed between `before` and `after` (heads of the same journal). This walks
/// the document; where the patches of an apply or a transaction are at hand,
/// [`touched_by`] is much cheaper.
pub fn touched(doc: &automerge::Automerge, before: &[ChangeHash], after: &[ChangeHash]) -> Touched {
    touched_by(&doc.diff(before, after))
}

/// Finds what a set of patches touched.
pub fn touched_by(patches: &[automerge::Patch]) -> Touched {
    let mut touched = Touched::default();
    for patch in patches {
        let mut props = patch.path.iter().map(|(_, p)| p.clone());
        let action_key = match &patch.action {
            automerge::PatchAction::PutMap { key, .. } => Some(Prop::Map(key.clone())),
            automerge::PatchAction::DeleteMap { key } => Some(Prop::Map(key.clone())),
            _ => None,
        };
        let first = props.next().or_else(|| action_key.clone());
        let second = props.next().or(if patch.path.len() == 1 {
            action_key
        } else {
            None
        });
        let (Some(Prop::Map(section)), entry) = (first, second) else {
            continue;
        };
        let entry = match entry {
            Some(Prop::Map(e)) => Some(e),
            _ => None,
        };
        match (section.as_str(), entry) {
            (CONTRIBUTIONS, Some(e)) => {
                touched.contributions.insert(e);
            }
            (ENDORSEMENTS, Some(e)) => {
                touched.endorsements.insert(e);
            }
            (KUDOS, Some(e)) => {
                touched.kudos.insert(e);
            }
            (VOTES, Some(e)) => {
                touched.votes.insert(e);
            }
            (CONTRIBUTIONS | ENDORSEMENTS | KUDOS | VOTES, None) => {}
            _ => touched.profile = true,
        }
    }
    touched
}
