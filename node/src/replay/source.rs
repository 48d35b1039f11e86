//! A Stack Exchange dump as replay events, with its ground truth.

use std::path::Path;

use super::{ReplayError, Result};
use crate::import::{self, GroundTruth, ImportEvent};

/// Reads the dump in `dir` with the importer's reader: its events in time order (source name:
/// the folder's name), and the ground truth computed straight from its files.
pub fn load(dir: &Path) -> Result<(String, Vec<ImportEvent>, GroundTruth)> {
    let options = import::Options::for_dir(dir);
    let plan = import::read(dir, &options).map_err(|e| ReplayError::Input(e.to_string()))?;
    let truth = import::ground_truth(dir).map_err(|e| ReplayError::Input(e.to_string()))?;
    Ok((plan.source, plan.events, truth))
}
