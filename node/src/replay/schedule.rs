//! When nodes go offline and come back, drawn from a seed.
//!
//! Times are counted in events sent (the replay's clock), so that a schedule means the same at
//! any speed. The same seed, node count, event count and offline fraction give the same
//! schedule.
//!
//! * One node (drawn) is offline with its network switched off (`offline on`, the process still
//!   running and writing) for one stretch of `offline_fraction` of the replay.
//! * Each other node except node 1 goes offline once for a shorter stretch (up to a tenth of the
//!   replay), at a drawn moment.
//! * One of those stretches (drawn) is a stopped process instead (SIGTERM, then `catchment up`
//!   again at the end of the stretch); the events of its authors wait until it is back.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What happens to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Churn {
    /// Its network is switched off.
    Offline,
    /// Its network is switched back on.
    Online,
    /// Its process is stopped.
    Stop,
    /// Its process is started again.
    Start,
}

/// One step of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChurnStep {
    /// Before which event (its index in replay order) it happens.
    pub at: usize,
    /// Which node (0-based).
    pub node: usize,
    /// What happens.
    pub churn: Churn,
}

/// The whole schedule, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// The steps, sorted by `at`.
    pub steps: Vec<ChurnStep>,
}

impl Schedule {
    /// Draws a schedule (see the module's description).
    pub fn draw(seed: u64, nodes: usize, events: usize, offline_fraction: f64) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut steps = Vec::new();
        if nodes < 2 || events == 0 || offline_fraction <= 0.0 {
            return Schedule { steps };
        }
        let fraction = offline_fraction.min(1.0);
        let long = ((events as f64 * fraction).ceil() as usize).clamp(1, events);
        let main = rng.gen_range(0..nodes);
        let from = rng.gen_range(0..=events - long);
        steps.push(ChurnStep {
            at: from,
            node: main,
            churn: Churn::Offline,
        });
        steps.push(ChurnStep {
            at: from + long,
            node: main,
            churn: Churn::Online,
        });
        let others: Vec<usize> = (1..nodes).filter(|n| *n != main).collect();
        let stopped = (!others.is_empty()).then(|| others[rng.gen_range(0..others.len())]);
        let short_max = (events / 10).max(1);
        for node in others {
            let len = rng.gen_range(1..=short_max).min(events);
            let from = rng.gen_range(0..=events - len);
            let (down, up) = if Some(node) == stopped {
                (Churn::Stop, Churn::Start)
            } else {
                (Churn::Offline, Churn::Online)
            };
            steps.push(ChurnStep {
                at: from,
                node,
                churn: down,
            });
            steps.push(ChurnStep {
                at: from + len,
                node,
                churn: up,
            });
        }
        steps.sort_by_key(|s| (s.at, s.node));
        Schedule { steps }
    }

    /// The number of events during which `node` is offline or stopped.
    pub fn down_events(&self, node: usize) -> usize {
        let mut since = None;
        let mut total = 0;
        for step in self.steps.iter().filter(|s| s.node == node) {
            match step.churn {
                Churn::Offline | Churn::Stop => since = Some(step.at),
                Churn::Online | Churn::Start => {
                    total += since.take().map(|s| step.at - s).unwrap_or(0);
                }
            }
        }
        total
    }

    /// One line per step, for a log.
    pub fn describe(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| {
                let what = match s.churn {
                    Churn::Offline => "goes offline",
                    Churn::Online => "comes back online",
                    Churn::Stop => "is stopped",
                    Churn::Start => "is started again",
                };
                format!("before event {}: node {} {what}", s.at, s.node + 1)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_and_the_long_stretch_is_long_enough() {
        let a = Schedule::draw(7, 5, 20_000, 1.0 / 3.0);
        assert_eq!(a, Schedule::draw(7, 5, 20_000, 1.0 / 3.0));
        assert_ne!(a, Schedule::draw(8, 5, 20_000, 1.0 / 3.0));
        let longest = (0..5).map(|n| a.down_events(n)).max().unwrap_or(0);
        assert!(longest * 3 >= 20_000, "longest stretch {longest}");
        assert_eq!(a.steps.iter().filter(|s| s.churn == Churn::Stop).count(), 1);
        assert!(a.steps.iter().all(|s| s.at <= 20_000));
    }

    #[test]
    fn nothing_for_one_node_or_no_churn() {
        assert!(Schedule::draw(1, 1, 100, 0.5).steps.is_empty());
        assert!(Schedule::draw(1, 5, 100, 0.0).steps.is_empty());
    }
}
