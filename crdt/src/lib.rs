//! Catchment's topic documents, without I/O.
//!
//! A topic is a small set of Automerge documents (see `docs/architecture.md`):
//!
//! * the **charter** ([`charter`]), written only by admins: name, roles, asks, moderation,
//!   score weights, removals, revocations;
//! * one or more **journals** per member ([`journal`]), written only by that member's devices:
//!   its admission, profile, contributions, endorsements, kudos and acceptances.
//!
//! Every change is signed by its author's ed25519 key ([`signed`]), which is also its
//! Automerge actor id, and passes [`validate::validate`] before anything applies, relays or
//! stores it. [`membership`] and [`views`] derive who counts and how much, identically on
//! every node that holds the same changes.

#![deny(missing_docs)]

pub mod charter;
pub mod genesis;
pub mod ids;
pub mod invite;
pub mod journal;
pub mod keys;
pub mod membership;
pub mod schema;
pub mod signed;
pub mod validate;
pub mod views;

pub use charter::CharterView;
pub use ids::{DocId, TopicId};
pub use keys::{Keypair, MemberId};
pub use schema::{Contribution, Kind, Role, Weights, JOURNAL_ROLLOVER};
pub use signed::SignedChange;
pub use validate::{validate, Context, Rejection, Verdict, Wait};
