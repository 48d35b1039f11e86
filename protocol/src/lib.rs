//! Catchment's wire formats, without I/O.
//!
//! The signed change envelope, the unit every node stores and sends ([`envelope`]), the
//! invite string ([`invite`]), and anti-entropy sync with the topic key's secrets: topic tags,
//! membership proofs and sealed gossip ([`sync`]).

#![deny(missing_docs)]

pub mod envelope;
pub mod invite;
pub mod sync;
