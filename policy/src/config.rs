//! Every threshold the policy reads, with its defaults and its validation.

use std::time::Duration;

use gaia_contract::duration::{format_duration, serde_duration};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Time between two decision cycles, by default: the streaks (`sustainCycles`, `severeCycles`)
/// count cycles of this length.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Cores a container without CPU limit or request is measured against, by default.
pub const DEFAULT_CAPACITY_WITHOUT_LIMIT: f64 = 1.0;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Every threshold the policy reads. Defaults are discussed in docs/autoscaler.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Window of the reactive p95, request rate, mean latency and CPU use.
    #[serde(with = "serde_duration")]
    pub short_window: Duration,
    /// Window of the confirming p95 and of the idle rate.
    #[serde(with = "serde_duration")]
    pub long_window: Duration,
    pub promote: PromoteConfig,
    pub verify: VerifyConfig,
    pub demote: DemoteConfig,
    pub hysteresis: HysteresisConfig,
    /// A revision we asked for that is not ready after this long is rolled back.
    #[serde(with = "serde_duration")]
    pub rollout_timeout: Duration,
    /// The latency histogram's largest finite bucket (Knative's queue-proxy: 10 s). A p95 at it
    /// only says "at least this"; the policy then takes the mean latency when that is higher.
    #[serde(with = "serde_duration")]
    pub latency_ceiling: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PromoteConfig {
    /// p95 must exceed `SLO × (1 + sloTolerance)` to count as a violation (noise band).
    pub slo_tolerance: f64,
    /// Consecutive violating cycles needed (with the long window violated too).
    pub sustain_cycles: u32,
    /// p95 at or above `severeFactor × SLO` is a severe violation...
    pub severe_factor: f64,
    /// ...and this many consecutive severe cycles promote without waiting for the long window.
    pub severe_cycles: u32,
    /// Requests needed in the short window before a p95 means anything.
    pub min_requests: f64,
    /// Fewer requests suffice when the violation is severe *and* the median violates the SLO
    /// too (every request is slow, not one cold start): a function taking 15 s a request never
    /// reaches `minRequests` in a minute.
    pub min_requests_severe: f64,
    /// Compute-bound when CPU use / CPU limit reaches this...
    pub cpu_utilization: f64,
    /// ...or when CPU cores per in-flight request (Little's law: rate × mean latency) do.
    pub cpu_per_request: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// Time after a move before its result is judged (revision start, cold start out of the
    /// short window).
    #[serde(with = "serde_duration")]
    pub settle: Duration,
    /// The GPU p95 must be at least this fraction below the remembered CPU p95.
    pub min_gain: f64,
    /// Requests needed in the short window to judge.
    pub min_requests: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DemoteConfig {
    /// Below this long-window request rate (req/s) a GPU Service is idle.
    pub idle_rps: f64,
    /// The no-gain check compares only loads within this factor of the remembered CPU load.
    pub comparable_load: f64,
    /// With DCGM evidence (`prometheus.dcgm`): a GPU whose mean utilisation over the long
    /// window is under this (%) idles, and the revision is demoted on the short window's load
    /// (decide.rs, `gpu_idles`).
    pub gpu_idle_utilization: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HysteresisConfig {
    /// Minimum time on a placement before a voluntary move (promotion or demotion).
    #[serde(with = "serde_duration")]
    pub min_dwell: Duration,
    /// Moves of one Service in any hour, reverts included.
    pub max_moves_per_hour: u32,
    /// Back-off after the first useless promotion; doubles with each one in a row.
    #[serde(with = "serde_duration")]
    pub backoff_base: Duration,
    #[serde(with = "serde_duration")]
    pub backoff_max: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            short_window: Duration::from_secs(60),
            long_window: Duration::from_secs(300),
            promote: PromoteConfig::default(),
            verify: VerifyConfig::default(),
            demote: DemoteConfig::default(),
            hysteresis: HysteresisConfig::default(),
            rollout_timeout: Duration::from_secs(300),
            latency_ceiling: Duration::from_secs(10),
        }
    }
}

impl Default for PromoteConfig {
    fn default() -> Self {
        PromoteConfig {
            slo_tolerance: 0.1,
            sustain_cycles: 3,
            severe_factor: 2.0,
            severe_cycles: 2,
            min_requests: 20.0,
            min_requests_severe: 3.0,
            cpu_utilization: 0.6,
            cpu_per_request: 0.5,
        }
    }
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            settle: Duration::from_secs(90),
            min_gain: 0.25,
            min_requests: 20.0,
        }
    }
}

impl Default for DemoteConfig {
    fn default() -> Self {
        DemoteConfig {
            idle_rps: 0.05,
            comparable_load: 2.0,
            gpu_idle_utilization: 10.0,
        }
    }
}

impl Default for HysteresisConfig {
    fn default() -> Self {
        HysteresisConfig {
            min_dwell: Duration::from_secs(300),
            max_moves_per_hour: 4,
            backoff_base: Duration::from_secs(600),
            backoff_max: Duration::from_secs(6 * 3600),
        }
    }
}

impl PolicyConfig {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        let p = &self.promote;
        positive("policy.shortWindow", self.short_window)?;
        if self.long_window < self.short_window {
            return Err(Error::config(
                "policy.longWindow",
                format!(
                    "{} is shorter than policy.shortWindow {}",
                    format_duration(self.long_window),
                    format_duration(self.short_window)
                ),
            ));
        }
        fraction("policy.promote.sloTolerance", p.slo_tolerance, 0.0, 1.0)?;
        at_least_one("policy.promote.sustainCycles", p.sustain_cycles)?;
        at_least_one("policy.promote.severeCycles", p.severe_cycles)?;
        if !(p.severe_factor.is_finite() && p.severe_factor >= 1.0 + p.slo_tolerance) {
            return Err(Error::config(
                "policy.promote.severeFactor",
                "must be a number ≥ 1 + sloTolerance",
            ));
        }
        non_negative("policy.promote.minRequests", p.min_requests)?;
        non_negative("policy.promote.minRequestsSevere", p.min_requests_severe)?;
        fraction("policy.promote.cpuUtilization", p.cpu_utilization, 0.0, 1.0)?;
        non_negative("policy.promote.cpuPerRequest", p.cpu_per_request)?;
        fraction("policy.verify.minGain", self.verify.min_gain, 0.0, 1.0)?;
        non_negative("policy.verify.minRequests", self.verify.min_requests)?;
        non_negative("policy.demote.idleRps", self.demote.idle_rps)?;
        fraction(
            "policy.demote.gpuIdleUtilization",
            self.demote.gpu_idle_utilization,
            0.0,
            100.0,
        )?;
        if !(self.demote.comparable_load.is_finite() && self.demote.comparable_load >= 1.0) {
            return Err(Error::config("policy.demote.comparableLoad", "must be ≥ 1"));
        }
        let h = &self.hysteresis;
        if h.max_moves_per_hour < 2 {
            return Err(Error::config(
                "policy.hysteresis.maxMovesPerHour",
                "must be at least 2 (a promotion keeps room for its revert)",
            ));
        }
        positive("policy.hysteresis.backoffBase", h.backoff_base)?;
        if h.backoff_max < h.backoff_base {
            return Err(Error::config(
                "policy.hysteresis.backoffMax",
                "must not be shorter than backoffBase",
            ));
        }
        positive("policy.rolloutTimeout", self.rollout_timeout)?;
        positive("policy.latencyCeiling", self.latency_ceiling)?;
        Ok(())
    }
}

fn fraction(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), Error> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("must be between {lo} and {hi}"),
        ))
    }
}

fn non_negative(field: &str, v: f64) -> Result<(), Error> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(field, "must be a number ≥ 0"))
    }
}

fn at_least_one(field: &str, v: u32) -> Result<(), Error> {
    if v >= 1 {
        Ok(())
    } else {
        Err(Error::config(field, "must be at least 1"))
    }
}

/// A duration setting that must be longer than zero.
pub fn positive(field: &str, d: Duration) -> Result<(), Error> {
    if d.is_zero() {
        Err(Error::config(field, "must be longer than 0s"))
    } else {
        Ok(())
    }
}
