//! What the autoscaler remembers on a Service, in the `gaia.dev/observed` annotation.
//!
//! State lives in the cluster, so a restarted or newly elected autoscaler loses nothing, and
//! `kn gaia status` can show it.

use serde::{Deserialize, Serialize};

use crate::Placement;

/// The `gaia.dev/observed` annotation. Unknown fields are ignored and missing ones default, so
/// older and newer autoscalers can read each other's notes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Observed {
    /// Last p95 latency seen while the Service ran on CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<RememberedLatency>,
    /// Last p95 latency seen while the Service ran on GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<RememberedLatency>,
    /// The most recent placement move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_move: Option<PlacementMove>,
    /// Times (RFC 3339) of the moves in the last hour, for the moves-per-hour cap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recent_moves: Vec<jiff::Timestamp>,
    /// How many promotions in a row did not pay off (drives the back-off).
    #[serde(skip_serializing_if = "is_zero")]
    pub useless_promotions: u32,
    /// No promotion before this time (back-off after a promotion that did not pay).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_blocked_until: Option<jiff::Timestamp>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A p95 latency remembered for one placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RememberedLatency {
    pub p95_ms: f64,
    /// Request rate (req/s) at the time, so a latency is read against its load.
    #[serde(default)]
    pub rps: f64,
    pub at: jiff::Timestamp,
}

/// One placement move and why it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementMove {
    pub from: Placement,
    pub to: Placement,
    pub at: jiff::Timestamp,
    pub reason: String,
    /// Which rule made it. Absent in what autoscalers before it wrote: a move from CPU to GPU
    /// is then read as a promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MoveKind>,
}

/// The rules that move a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// CPU → GPU: sustained, compute-bound SLO violation.
    Promote,
    /// GPU → CPU: idle, or light enough for the CPU, or no gain.
    Demote,
    /// GPU → CPU right after a promotion that did not pay off (starts the back-off).
    Revert,
    /// Back to the previous placement: the revision we asked for never became ready.
    Rollback,
}

impl MoveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::Promote => "promote",
            MoveKind::Demote => "demote",
            MoveKind::Revert => "revert",
            MoveKind::Rollback => "rollback",
        }
    }
}

impl PlacementMove {
    /// A promotion of ours, to be verified: recorded as one, or (older records) CPU to GPU.
    pub fn is_promotion(&self) -> bool {
        match self.kind {
            Some(k) => k == MoveKind::Promote,
            None => self.from == Placement::Cpu && self.to == Placement::Gpu,
        }
    }
}

impl Observed {
    /// Reads the annotation. A missing or unreadable annotation yields the empty state: the
    /// caller logs the error; the controller then acts as if it remembered nothing.
    pub fn from_annotation(text: Option<&str>) -> Result<Observed, serde_json::Error> {
        match text {
            None => Ok(Observed::default()),
            Some(t) if t.trim().is_empty() => Ok(Observed::default()),
            Some(t) => serde_json::from_str(t),
        }
    }

    pub fn to_annotation(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    pub fn remembered(&self, placement: Placement) -> Option<&RememberedLatency> {
        match placement {
            Placement::Cpu => self.cpu.as_ref(),
            Placement::Gpu => self.gpu.as_ref(),
        }
    }

    pub fn remember(&mut self, placement: Placement, latency: RememberedLatency) {
        match placement {
            Placement::Cpu => self.cpu = Some(latency),
            Placement::Gpu => self.gpu = Some(latency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_unknown_fields() {
        let mut o = Observed::default();
        let at: jiff::Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        o.remember(
            Placement::Cpu,
            RememberedLatency {
                p95_ms: 1234.5,
                rps: 2.0,
                at,
            },
        );
        o.last_move = Some(PlacementMove {
            from: Placement::Cpu,
            to: Placement::Gpu,
            at,
            reason: "p95 1234ms > SLO 500ms".into(),
            kind: Some(MoveKind::Promote),
        });
        let text = o.to_annotation();
        assert_eq!(Observed::from_annotation(Some(&text)).unwrap(), o);

        let newer = r#"{"cpu":{"p95Ms":10,"at":"2026-11-22T10:00:00Z"},"futureField":[1,2]}"#;
        let read = Observed::from_annotation(Some(newer)).unwrap();
        assert_eq!(read.cpu.unwrap().p95_ms, 10.0);
        assert!(Observed::from_annotation(Some("not json")).is_err());
        assert_eq!(
            Observed::from_annotation(None).unwrap(),
            Observed::default()
        );
    }
}
