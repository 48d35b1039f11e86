//! The Catchment node: the data directory, the store, and the engine that validates, applies,
//! stores and indexes every change, with the views read from the index.

#![deny(missing_docs)]

pub mod api;
pub mod discovery;
pub mod engine;
pub mod error;
pub mod home;
pub mod import;
pub mod index;
pub mod invites;
pub mod local;
pub mod net;
pub mod ops;
pub mod peers;
pub mod query;
pub mod relay;
pub mod replay;
pub mod runtime;
pub mod store;
pub mod sync;
pub mod topic_key;
pub mod ui;

pub use engine::{Engine, Ingested};
pub use error::{EngineError, Result};
pub use home::{Config, Home};
pub use store::{Backend, SledBackend};
