//! Replaying a community's history as live traffic across real nodes, then checking every node
//! against the ground truth computed straight from the source.
//!
//! * [`cluster`] starts `catchment up` processes on 127.0.0.1, each in its own data directory,
//!   puts them in one topic as admins, and talks to them through their local APIs.
//! * [`schedule`] draws, from a seed, when each node goes offline and comes back.
//! * [`driver`] sends the events in time order, each through the node its original author is
//!   assigned to, while the schedule takes nodes offline; then waits until every node holds the
//!   same changes.
//! * [`check`] reads each node's views and lists every difference from the ground truth.
//!
//! Records are written by the node's member on behalf of the original author (an alias), with
//! contribution ids derived from the source's keys, so that a vote, comment or acceptance can be
//! written on a node that has not yet received the post it is about: nothing needs the target
//! locally, and the views count a record once its target arrives. See `docs/replay.md`.

pub mod check;
pub mod cluster;
pub mod driver;
pub mod schedule;
pub mod source;
pub mod write;

pub use check::{check_node, Difference};
pub use cluster::{Cluster, ClusterConfig};
pub use driver::{replay, Progress, ReplayConfig, ReplayReport};
pub use schedule::{Churn, ChurnStep, Schedule};

use thiserror::Error;

/// What can go wrong while replaying.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// A file or process could not be handled.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A node's process failed to start or stop in time.
    #[error("{0}")]
    Process(String),
    /// A node's API refused or failed a call.
    #[error("{node}: {op}: {message}")]
    Api {
        /// Which node.
        node: String,
        /// The operation.
        op: String,
        /// The node's answer.
        message: String,
    },
    /// Nodes did not agree within the time allowed.
    #[error("the nodes did not agree within {seconds} s: {detail}")]
    NoAgreement {
        /// The time allowed.
        seconds: u64,
        /// What still differed.
        detail: String,
    },
    /// The input was not usable.
    #[error("{0}")]
    Input(String),
    /// Stopped on request (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
}

/// Shorthand for results in this module.
pub type Result<T, E = ReplayError> = std::result::Result<T, E>;

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ReplayError {
    let what = what.into();
    move |source| ReplayError::Io { what, source }
}
