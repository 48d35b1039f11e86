//! Catchment's wire formats, without I/O.
//!
//! The signed change envelope, the unit every node stores and sends ([`envelope`]), and the
//! invite string ([`invite`]).

#![deny(missing_docs)]

pub mod envelope;
pub mod invite;
