//! A Stack Exchange dump as replay events and its ground truth.

use std::path::Path;

use super::events::{GroundTruth, ReplayEvent};
use super::{ReplayError, Result};

/// Reads the dump in `dir`: its events in replay order, and the ground truth computed from
/// its files.
pub fn load(dir: &Path) -> Result<(Vec<ReplayEvent>, GroundTruth)> {
    Err(ReplayError::Input(format!(
        "{}: reading a dump is not wired in yet",
        dir.display()
    )))
}
