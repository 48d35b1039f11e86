//! Validation: the one gate every change passes, local or remote, before it is applied,
//! relayed or stored.
//!
//! The checks, in order (the first that fails decides):
//!
//! 1. size: at most [`MAX_CHANGE_BYTES`], before anything decodes it;
//! 2. decoding, inside `catch_unwind`: Automerge is untrusted code on untrusted bytes; only a
//!    plain (not deflated) change chunk whose header checksum matches its hash is accepted;
//! 3. the actor id is a 32-byte, non-weak ed25519 key, and the signature beside the change
//!    verifies strictly over (topic, document, change hash);
//! 4. the author may write the document: its own journal, or the charter as an admin *at the
//!    change's dependencies* (the genesis change is the topic's id and makes its author admin);
//! 5. the author is a member: journal 0 opens with an admission claim that verifies against
//!    the charter at the heads the claim names; later changes need that admission accepted;
//! 6. a removed member's journals are pinned at the heads the removing admin saw;
//! 7. a journal change that writes an imported author's alias names charter heads
//!    (`admin_at`) at which its author is an admin: only admins import.
//!
//! Every check reads only the documents, never a clock, so every node reaches the same verdict
//! for the same change and documents. A change whose dependencies, charter heads or author's
//! admission are not here yet is [`Verdict::Pending`], not invalid.

use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use crate::charter::CharterView;
use crate::ids::{DocId, TopicId};
use crate::invite::{admission_message, Grant};
use crate::journal;
use crate::keys::{KeyError, MemberId};
use crate::schema::{AdmissionClaim, Role};
use crate::signed::{signing_message, SignedChange};

/// The largest change accepted, in bytes.
pub const MAX_CHANGE_BYTES: usize = 256 * 1024;
/// The chunk type byte of an uncompressed Automerge change.
const CHANGE_CHUNK: u8 = 1;

/// Why a change is refused. Every node gives the same reason for the same change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Larger than [`MAX_CHANGE_BYTES`].
    #[error("change of {size} bytes is over the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not an Automerge change.
    #[error("change does not decode: {0}")]
    Undecodable(String),
    /// The actor id is not a 32-byte key.
    #[error("change author is not an ed25519 key")]
    NotAKey,
    /// The author's key is weak.
    #[error("change author has a weak key")]
    WeakKey,
    /// The signature is missing or does not verify.
    #[error("change signature does not verify")]
    BadSignature,
    /// A change to someone else's journal.
    #[error("member {author:?} may not write the journal of {owner:?}")]
    NotYourJournal {
        /// Who wrote it.
        author: MemberId,
        /// Whose journal it is.
        owner: MemberId,
    },
    /// A charter change by someone who was not an admin at its dependencies.
    #[error("member {0:?} is not an admin and may not change the charter")]
    NotAnAdmin(MemberId),
    /// A first journal change without an admission claim.
    #[error("member {0:?} is not a member of this topic")]
    NotAMember(MemberId),
    /// An admission claim that does not hold.
    #[error("admission refused: {0}")]
    BadAdmission(String),
    /// The genesis change is not a proper genesis.
    #[error("genesis change refused: {0}")]
    BadGenesis(&'static str),
    /// A change writing imported (aliased) records by someone who was not an admin at the
    /// charter heads it names, or that names none.
    #[error("member {0:?} is not an admin and may not write imported records")]
    NotAnImporter(MemberId),
    /// A removed member's change beyond the heads its removal pinned.
    #[error("member {0:?} was removed; this change comes after the removal")]
    BeyondRemoval(MemberId),
    /// Automerge refused to apply it.
    #[error("change does not apply: {0}")]
    Apply(String),
    /// Automerge panicked on it.
    #[error("change made the document engine panic")]
    Panicked,
}

/// What a pending change waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Changes of the same document it depends on.
    Deps(Vec<ChangeHash>),
    /// Charter changes an admission or a charter change refers to.
    Charter(Vec<ChangeHash>),
    /// The author's admission (the first change of its journal 0).
    Admission(MemberId),
}

/// An accepted admission: who joined, how, and with which role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Admission {
    /// The member admitted.
    pub member: MemberId,
    /// The role the claim gives.
    pub role: Role,
    /// The invite key used, if any.
    pub invite: Option<MemberId>,
    /// The invite's use limit, if any.
    pub uses: Option<u32>,
    /// The time the member claims it joined.
    pub joined: i64,
}

/// The verdict on a change.
#[derive(Debug)]
pub enum Verdict {
    /// It may be applied, relayed and stored.
    Valid(Box<Accepted>),
    /// It waits for something not here yet.
    Pending(Wait),
    /// It is refused for good.
    Invalid(Rejection),
}

/// A valid change, decoded.
#[derive(Debug)]
pub struct Accepted {
    /// The decoded change.
    pub change: Change,
    /// Its author.
    pub author: MemberId,
    /// When the change is a member's admission: what it admits.
    pub admission: Option<Admission>,
}

/// What validation may read besides the change: the documents as this node has them.
pub struct Context<'a> {
    /// The topic.
    pub topic: TopicId,
    /// The charter document (empty before the genesis arrives).
    pub charter: &'a Automerge,
    /// The charter as read at its current heads.
    pub charter_view: &'a CharterView,
    /// Whether a member's admission has been accepted here.
    pub admitted: &'a dyn Fn(&MemberId) -> bool,
}

/// Decodes a change, refusing oversized bytes first and catching a panic in the decoder.
pub fn decode(bytes: &[u8]) -> Result<Change, Rejection> {
    if bytes.len() > MAX_CHANGE_BYTES {
        return Err(Rejection::TooLarge {
            size: bytes.len(),
            max: MAX_CHANGE_BYTES,
        });
    }
    // A deflated change chunk would pass the size limit and then inflate a thousandfold;
    // `SignedChange::sign` always writes the plain chunk (header: magic, checksum, type).
    if bytes
        .get(8)
        .is_some_and(|chunk_type| *chunk_type != CHANGE_CHUNK)
    {
        return Err(Rejection::Undecodable(
            "not an uncompressed change chunk".into(),
        ));
    }
    let owned = bytes.to_vec();
    match catch_unwind(move || Change::from_bytes(owned)) {
        // Automerge's change parser skips the header checksum (its document loader checks it),
        // and the signature covers the hash, not the checksum: refuse altered checksums here.
        Ok(Ok(change)) if bytes.get(4..8) != Some(&change.hash().0[..4]) => Err(
            Rejection::Undecodable("checksum does not match the change".into()),
        ),
        Ok(Ok(change)) => Ok(change),
        Ok(Err(e)) => Err(Rejection::Undecodable(e.to_string())),
        Err(_) => Err(Rejection::Panicked),
    }
}

/// Applies accepted changes to `doc`, turning an error or a panic into a rejection.
///
/// After an `Err` the document may hold part of the batch; the caller reloads it from the
/// store.
pub fn apply(doc: &mut Automerge, changes: Vec<Change>) -> Result<(), Rejection> {
    match catch_unwind(AssertUnwindSafe(|| doc.apply_changes(changes))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Rejection::Apply(e.to_string())),
        Err(_) => Err(Rejection::Panicked),
    }
}

/// Like [`apply`], and returns the patches the changes made (what they touched), which is much
/// cheaper than diffing the document afterwards.
pub fn apply_logged(
    doc: &mut Automerge,
    changes: Vec<Change>,
) -> Result<Vec<automerge::Patch>, Rejection> {
    let applied = catch_unwind(AssertUnwindSafe(|| {
        let mut log = automerge::PatchLog::active();
        doc.apply_changes_log_patches(changes, &mut log)?;
        Ok::<_, automerge::AutomergeError>(doc.make_patches(&mut log))
    }));
    match applied {
        Ok(Ok(patches)) => Ok(patches),
        Ok(Err(e)) => Err(Rejection::Apply(e.to_string())),
        Err(_) => Err(Rejection::Panicked),
    }
}

/// The author of a change: its actor id as a member key.
pub fn author_of(change: &Change) -> Result<MemberId, Rejection> {
    let bytes: [u8; 32] = change
        .actor_id()
        .to_bytes()
        .try_into()
        .map_err(|_| Rejection::NotAKey)?;
    Ok(MemberId(bytes))
}

/// Validates `signed`, a change to `doc` (the target document as this node has it, which may
/// already hold the change when it was made here).
pub fn validate(ctx: &Context<'_>, doc: &Automerge, signed: &SignedChange) -> Verdict {
    validate_staged(ctx, doc, &|_| false, signed)
}

/// Like [`validate`], for a change that arrives in a batch: `staged` says which changes of
/// the same document earlier in the batch were already found valid (they count as present
/// for the dependency check, though not yet applied). Every other check is the same.
pub fn validate_staged(
    ctx: &Context<'_>,
    doc: &Automerge,
    staged: &dyn Fn(&ChangeHash) -> bool,
    signed: &SignedChange,
) -> Verdict {
    let checked = decode(&signed.bytes).and_then(|change| check(ctx, doc, staged, signed, change));
    verdict(checked)
}

/// Like [`validate_staged`], for a caller that has already decoded `signed.bytes` with
/// [`decode`] (to look up its hash, say): the change is not decoded a second time. `change`
/// must be exactly the decoding of `signed.bytes`; a change whose bytes differ is refused as
/// undecodable, so that what is applied is always what is signed and stored.
///
/// `signature`: the outcome of check 3 computed beforehand ([`SignatureCheck`], e.g. on
/// another thread); it is used only if it was computed over exactly this topic, document,
/// change hash and signature, and check 3 runs here otherwise.
pub fn validate_decoded(
    ctx: &Context<'_>,
    doc: &Automerge,
    staged: &dyn Fn(&ChangeHash) -> bool,
    signed: &SignedChange,
    change: Change,
    signature: Option<SignatureCheck>,
) -> Verdict {
    if change.raw_bytes() != signed.bytes.as_slice() {
        return Verdict::Invalid(Rejection::Undecodable(
            "the decoded change is not the signed bytes".into(),
        ));
    }
    verdict(check_with(ctx, doc, staged, signed, change, signature))
}

/// Check 3 (the author is a non-weak ed25519 key and the signature verifies strictly) of a
/// decoded change, split in two so that the costly half can run on other threads:
/// [`SignatureCheck::start`] reads the author's key on the calling thread (where
/// [`MemberId::verifying_key`] remembers it), [`PendingSignature::verify`] runs
/// `verify_strict`. The verdict is the same as when [`validate`] checks it itself: the same
/// function on the same inputs, whatever thread runs it.
pub struct PendingSignature {
    covers: Covers,
    key: Result<(MemberId, ed25519_dalek::VerifyingKey), Rejection>,
}

/// What a signature check was computed over.
#[derive(Clone, PartialEq, Eq)]
struct Covers {
    topic: TopicId,
    doc: DocId,
    hash: ChangeHash,
    signature: [u8; 64],
}

impl Covers {
    fn of(topic: &TopicId, signed: &SignedChange, hash: ChangeHash) -> Self {
        Covers {
            topic: *topic,
            doc: signed.doc,
            hash,
            signature: signed.signature,
        }
    }
}

/// The outcome of check 3 for one change, from [`PendingSignature::verify`].
pub struct SignatureCheck {
    covers: Covers,
    result: Result<MemberId, Rejection>,
}

impl SignatureCheck {
    /// Starts check 3 of `signed` in `topic`, whose decoding (by [`decode`]) is `change`.
    pub fn start(topic: &TopicId, signed: &SignedChange, change: &Change) -> PendingSignature {
        PendingSignature {
            covers: Covers::of(topic, signed, change.hash()),
            key: author_key(change),
        }
    }
}

impl PendingSignature {
    /// Runs the strict verification.
    pub fn verify(self) -> SignatureCheck {
        let covers = self.covers;
        let result = self.key.and_then(|(author, key)| {
            verify_signature(
                &key,
                &covers.topic,
                &covers.doc,
                &covers.hash,
                &covers.signature,
            )
            .map(|()| author)
        });
        SignatureCheck { covers, result }
    }
}

/// The author of a change and its checked key.
fn author_key(change: &Change) -> Result<(MemberId, ed25519_dalek::VerifyingKey), Rejection> {
    let author = author_of(change)?;
    let key = author.verifying_key().map_err(|e| match e {
        KeyError::WeakKey => Rejection::WeakKey,
        _ => Rejection::NotAKey,
    })?;
    Ok((author, key))
}

fn verify_signature(
    key: &ed25519_dalek::VerifyingKey,
    topic: &TopicId,
    doc: &DocId,
    hash: &ChangeHash,
    signature: &[u8; 64],
) -> Result<(), Rejection> {
    crate::keys::verify_with(key, &signing_message(topic, doc, hash), signature)
        .map_err(|_| Rejection::BadSignature)
}

fn verdict(checked: Result<Result<Accepted, Wait>, Rejection>) -> Verdict {
    match checked {
        Ok(Ok(accepted)) => Verdict::Valid(Box::new(accepted)),
        Ok(Err(wait)) => Verdict::Pending(wait),
        Err(rejection) => Verdict::Invalid(rejection),
    }
}

/// Every check after decoding; `change` is the decoding of `signed.bytes`.
fn check(
    ctx: &Context<'_>,
    doc: &Automerge,
    staged: &dyn Fn(&ChangeHash) -> bool,
    signed: &SignedChange,
    change: Change,
) -> Result<Result<Accepted, Wait>, Rejection> {
    check_with(ctx, doc, staged, signed, change, None)
}

/// [`check`], with check 3 possibly computed beforehand.
fn check_with(
    ctx: &Context<'_>,
    doc: &Automerge,
    staged: &dyn Fn(&ChangeHash) -> bool,
    signed: &SignedChange,
    change: Change,
    signature: Option<SignatureCheck>,
) -> Result<Result<Accepted, Wait>, Rejection> {
    let hash = change.hash();
    let covers = Covers::of(&ctx.topic, signed, hash);
    let author = match signature.filter(|s| s.covers == covers) {
        Some(done) => done.result?,
        None => {
            let (author, key) = author_key(&change)?;
            verify_signature(&key, &ctx.topic, &signed.doc, &hash, &signed.signature)?;
            author
        }
    };

    let missing: Vec<ChangeHash> = change
        .deps()
        .iter()
        .filter(|d| !staged(d) && doc.get_change_by_hash(d).is_none())
        .copied()
        .collect();

    let mut admission = None;
    match signed.doc {
        DocId::Charter => {
            if hash == ctx.topic.genesis_hash() {
                check_genesis(&change, &author)?;
            } else {
                if change.deps().is_empty() {
                    return Err(Rejection::NotAnAdmin(author));
                }
                if !missing.is_empty() {
                    return Ok(Err(Wait::Deps(missing)));
                }
                if !admin_at(ctx.charter, ctx.charter_view, change.deps(), &author)? {
                    return Err(Rejection::NotAnAdmin(author));
                }
            }
        }
        DocId::Journal { member: owner, n } => {
            if author != owner {
                return Err(Rejection::NotYourJournal { author, owner });
            }
            if !missing.is_empty() {
                return Ok(Err(Wait::Deps(missing)));
            }
            if !(ctx.admitted)(&author) {
                if n != 0 || !change.deps().is_empty() {
                    return Ok(Err(Wait::Admission(author)));
                }
                match check_admission(ctx, &change, &author)? {
                    Ok(a) => admission = Some(a),
                    Err(wait) => return Ok(Err(wait)),
                }
            }
            if let Some(removal) = ctx.charter_view.removed.get(&author) {
                if !within_pins(doc, removal.pins.get(&signed.doc), &hash) {
                    return Err(Rejection::BeyondRemoval(author));
                }
            }
            if let Err(wait) = check_importer(ctx, &change, &author)? {
                return Ok(Err(wait));
            }
        }
    }
    Ok(Ok(Accepted {
        change,
        author,
        admission,
    }))
}

/// A change that writes an alias must name charter heads at which its author is an admin.
fn check_importer(
    ctx: &Context<'_>,
    change: &Change,
    author: &MemberId,
) -> Result<Result<(), Wait>, Rejection> {
    let (writes_alias, heads) = journal::alias_claim(change);
    if !writes_alias {
        return Ok(Ok(()));
    }
    let Some(heads) = heads else {
        return Err(Rejection::NotAnImporter(*author));
    };
    let missing = missing_in(ctx.charter, &heads);
    if !missing.is_empty() {
        return Ok(Err(Wait::Charter(missing)));
    }
    if !admin_at(ctx.charter, ctx.charter_view, &heads, author)? {
        return Err(Rejection::NotAnImporter(*author));
    }
    Ok(Ok(()))
}

fn read_alone(change: &Change) -> Result<Automerge, Rejection> {
    let mut doc = Automerge::new();
    apply(&mut doc, vec![change.clone()])?;
    Ok(doc)
}

fn check_genesis(change: &Change, author: &MemberId) -> Result<(), Rejection> {
    if !change.deps().is_empty() || change.seq() != 1 {
        return Err(Rejection::BadGenesis(
            "it must be the first change of the charter",
        ));
    }
    let view = CharterView::read(&read_alone(change)?);
    if view.creator != Some(*author) || !view.is_admin(author) {
        return Err(Rejection::BadGenesis(
            "its author must be the creator and an admin",
        ));
    }
    Ok(())
}

/// Whether `member` was an admin at charter `heads`; `Err` if `heads` are not all here.
fn admin_at(
    charter: &Automerge,
    current: &CharterView,
    heads: &[ChangeHash],
    member: &MemberId,
) -> Result<bool, Rejection> {
    Ok(charter_at(charter, current, heads)?.is_admin(member))
}

fn charter_at(
    charter: &Automerge,
    current: &CharterView,
    heads: &[ChangeHash],
) -> Result<CharterView, Rejection> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    if sorted == charter.get_heads() {
        return Ok(current.clone());
    }
    let fork = catch_unwind(AssertUnwindSafe(|| charter.fork_at(heads)))
        .map_err(|_| Rejection::Panicked)?
        .map_err(|e| Rejection::Apply(e.to_string()))?;
    Ok(CharterView::read(&fork))
}

fn missing_in(doc: &Automerge, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    heads
        .iter()
        .filter(|h| doc.get_change_by_hash(h).is_none())
        .copied()
        .collect()
}

fn check_admission(
    ctx: &Context<'_>,
    change: &Change,
    member: &MemberId,
) -> Result<Result<Admission, Wait>, Rejection> {
    let alone = read_alone(change)?;
    let Some((claim, joined)) = journal::read_admission(&alone) else {
        return Err(Rejection::NotAMember(*member));
    };
    match claim {
        AdmissionClaim::Role { charter_heads } => {
            if charter_heads.is_empty() {
                return Err(Rejection::BadAdmission(
                    "a role claim must name charter heads".into(),
                ));
            }
            let missing = missing_in(ctx.charter, &charter_heads);
            if !missing.is_empty() {
                return Ok(Err(Wait::Charter(missing)));
            }
            let view = charter_at(ctx.charter, ctx.charter_view, &charter_heads)?;
            match view.roles.get(member) {
                Some(role) if !view.removed.contains_key(member) => Ok(Ok(Admission {
                    member: *member,
                    role: *role,
                    invite: None,
                    uses: None,
                    joined,
                })),
                _ => Err(Rejection::NotAMember(*member)),
            }
        }
        AdmissionClaim::Invite { grant, proof } => {
            let grant =
                Grant::from_bytes(&grant).map_err(|e| Rejection::BadAdmission(e.to_string()))?;
            grant
                .verify()
                .map_err(|e| Rejection::BadAdmission(e.to_string()))?;
            if grant.topic != ctx.topic {
                return Err(Rejection::BadAdmission(
                    "the invite is for another topic".into(),
                ));
            }
            let proof: [u8; 64] = proof.try_into().map_err(|_| {
                Rejection::BadAdmission("the invite proof is not a signature".into())
            })?;
            grant
                .invite
                .verify(&admission_message(&ctx.topic, member), &proof)
                .map_err(|_| Rejection::BadAdmission("the invite proof does not verify".into()))?;
            if let Some(expires) = grant.expires {
                if joined > expires {
                    return Err(Rejection::BadAdmission("the invite had expired".into()));
                }
            }
            // No charter heads make the issuer an admin nowhere: nothing to wait for.
            if grant.charter_heads.is_empty() {
                return Err(Rejection::BadAdmission(
                    "the invite grant names no charter heads".into(),
                ));
            }
            let missing = missing_in(ctx.charter, &grant.charter_heads);
            if !missing.is_empty() {
                return Ok(Err(Wait::Charter(missing)));
            }
            if !admin_at(
                ctx.charter,
                ctx.charter_view,
                &grant.charter_heads,
                &grant.issuer,
            )? {
                return Err(Rejection::BadAdmission(
                    "the invite was not signed by an admin".into(),
                ));
            }
            Ok(Ok(Admission {
                member: *member,
                role: grant.role,
                invite: Some(grant.invite),
                uses: grant.uses,
                joined,
            }))
        }
    }
}

/// Whether a removed member's change to a journal lies within the heads its removal pinned.
///
/// When some pinned heads are not here yet, the change may be one of their ancestors, so it is
/// let through; the views read a removed member's journals at the pinned heads either way.
fn within_pins(doc: &Automerge, pins: Option<&Vec<ChangeHash>>, hash: &ChangeHash) -> bool {
    let Some(pins) = pins else { return false };
    if pins.contains(hash) {
        return true;
    }
    if !missing_in(doc, pins).is_empty() {
        return true;
    }
    match doc.fork_at(pins) {
        Ok(fork) => fork.get_change_by_hash(hash).is_some(),
        Err(_) => false,
    }
}
