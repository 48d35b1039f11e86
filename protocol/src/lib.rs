//! Catchment's wire formats, without I/O.
//!
//! Today this is the signed change envelope, the unit every node stores and (with the network)
//! sends: see [`envelope`]. Invites, the topic handshake and anti-entropy sessions join it as
//! the network arrives.

#![deny(missing_docs)]

pub mod envelope;
