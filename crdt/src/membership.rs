//! Who counts as a member, derived the same way on every node.
//!
//! Membership is derived, never stored: the charter's roles, removals, revocations and
//! decisions, plus every accepted self-admission. An admission that cannot be settled offline
//! is quarantined (kept, not shown, not relayed) until an admin decides:
//!
//! * over the limit: admissions with one invite are ranked by their claimed join time, then by
//!   member id; those past the invite's use limit are quarantined;
//! * revoked: an admission with a revoked invite that the revocation did not list as already
//!   admitted is quarantined.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::charter::{CharterView, Decision};
use crate::keys::MemberId;
use crate::schema::Role;
use crate::validate::Admission;

/// Why an admission waits for an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quarantine {
    /// The invite's use limit was already reached.
    OverLimit,
    /// The invite was revoked.
    Revoked,
}

/// A member's standing in a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Status {
    /// A member with this role; its contributions count.
    Admitted(Role),
    /// Waiting for an admin; its contributions are kept but not shown.
    Quarantined(Quarantine),
    /// An admin refused the admission.
    Refused,
    /// Removed by an admin; what it wrote before the removal still counts.
    Removed,
}

impl Status {
    /// Whether what this member wrote is shown and counted.
    pub fn is_visible(&self) -> bool {
        matches!(self, Status::Admitted(_) | Status::Removed)
    }

    /// A short word for people.
    pub fn describe(&self) -> String {
        match self {
            Status::Admitted(role) => role.to_string(),
            Status::Quarantined(Quarantine::OverLimit) => {
                "quarantined (invite over its use limit)".into()
            }
            Status::Quarantined(Quarantine::Revoked) => "quarantined (invite revoked)".into(),
            Status::Refused => "refused".into(),
            Status::Removed => "removed".into(),
        }
    }
}

/// Every admitted member's status.
pub fn statuses(
    charter: &CharterView,
    admissions: &BTreeMap<MemberId, Admission>,
) -> BTreeMap<MemberId, Status> {
    let mut by_invite: BTreeMap<MemberId, Vec<&Admission>> = BTreeMap::new();
    for admission in admissions.values() {
        if let Some(invite) = admission.invite {
            by_invite.entry(invite).or_default().push(admission);
        }
    }
    let mut over_limit = std::collections::BTreeSet::new();
    for list in by_invite.values_mut() {
        list.sort_by_key(|a| (a.joined, a.member));
        for (rank, admission) in list.iter().enumerate() {
            if admission.uses.is_some_and(|uses| rank >= uses as usize) {
                over_limit.insert(admission.member);
            }
        }
    }

    let mut out = BTreeMap::new();
    for (member, admission) in admissions {
        let status = if charter.removed.contains_key(member) {
            Status::Removed
        } else if charter.decisions.get(member) == Some(&Decision::Refuse) {
            Status::Refused
        } else {
            let revoked = admission
                .invite
                .and_then(|invite| charter.revoked.get(&invite))
                .is_some_and(|r| !r.admitted.contains(member));
            let admitted_by_admin = charter.decisions.get(member) == Some(&Decision::Admit);
            let role = charter.roles.get(member).copied().unwrap_or(admission.role);
            if admitted_by_admin || charter.roles.contains_key(member) {
                Status::Admitted(role)
            } else if revoked {
                Status::Quarantined(Quarantine::Revoked)
            } else if over_limit.contains(member) {
                Status::Quarantined(Quarantine::OverLimit)
            } else {
                Status::Admitted(role)
            }
        };
        out.insert(*member, status);
    }
    out
}
