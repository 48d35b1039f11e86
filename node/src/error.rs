//! The engine's errors, in the user's terms.

use catchment_crdt::validate::Rejection;
use catchment_protocol::invite::InviteError;
use thiserror::Error;

use crate::store::StoreError;

/// Why an engine operation failed. Nothing already stored is lost by any of these.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No topic matches.
    #[error("no topic matches {0:?} (see `catchment topic list`)")]
    UnknownTopic(String),
    /// Several topics match.
    #[error("{0:?} matches several topics: give more of its id")]
    AmbiguousTopic(String),
    /// No topic exists yet.
    #[error("no topic yet: create one with `catchment topic create NAME`")]
    NoTopic,
    /// Several topics and none chosen.
    #[error("several topics: choose one with --topic")]
    ChooseTopic,
    /// No contribution matches.
    #[error("no contribution {0:?} in this topic")]
    UnknownContribution(String),
    /// Several contributions match.
    #[error("{0:?} matches several contributions: give more of its id")]
    AmbiguousContribution(String),
    /// No member matches.
    #[error("no member {0:?} in this topic")]
    UnknownMember(String),
    /// Several members match.
    #[error("{0:?} matches several members: give more of the key")]
    AmbiguousMember(String),
    /// An admin-only operation.
    #[error("only an admin of this topic may {0}")]
    NotAdmin(&'static str),
    /// Only the author may do this.
    #[error("only the author of {0} may {1}")]
    NotAuthor(String, &'static str),
    /// This node's member is not (or no longer) a member.
    #[error("you are not a member of this topic ({0})")]
    NotMember(String),
    /// The invite string is not a usable invite; says which way it is wrong.
    #[error(transparent)]
    BadInvite(#[from] InviteError),
    /// The invite's expiry has passed by this node's clock.
    #[error("this invite expired on {0} (UTC): ask an admin of the topic for a new one")]
    InviteExpired(String),
    /// An admin revoked the invite.
    #[error("this invite was revoked by an admin of the topic: ask for a new one")]
    InviteRevoked,
    /// This node's member is in the topic already.
    #[error("you are already in this topic ({0})")]
    AlreadyMember(String),
    /// No invite matches.
    #[error("no invite {0:?} issued here or used by a member (see `catchment invite list`)")]
    UnknownInvite(String),
    /// Several invites match.
    #[error("{0:?} matches several invites: give more of its id")]
    AmbiguousInvite(String),
    /// The topic's charter is neither here nor in the invite.
    #[error(
        "this invite does not carry the topic's charter (it was too large to fit) and no peer \
         has sent it yet: join again once a member of the topic is reachable"
    )]
    CharterMissing,
    /// The request itself is wrong.
    #[error("{0}")]
    BadInput(String),
    /// Validation refused a change made here.
    #[error("change refused: {0}")]
    Refused(#[from] Rejection),
    /// The document engine failed on a change made here.
    #[error("document error: {0}")]
    Doc(String),
}

impl From<automerge::AutomergeError> for EngineError {
    fn from(e: automerge::AutomergeError) -> Self {
        EngineError::Doc(e.to_string())
    }
}

/// Results of engine operations.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
