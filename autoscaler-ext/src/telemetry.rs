//! The autoscaler's own metrics (served on /metrics) and log setup.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::cycle::CycleReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `hold`, `promote`, `demote`, `revert`, `rollback`, `remember`, `no_gpu`.
    pub kind: String,
    /// The hold reason, or empty.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PreflightLabels {
    /// The check's name (`gpu-nodes`, `prometheus`, ...; `kn gaia doctor` prints the same).
    pub check: String,
    /// `pass`, `warn` or `fail`: 1 for the check's status at the last run, 0 for the others.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

/// Every metric, registered once.
pub struct Metrics {
    pub registry: Registry,
    pub decisions: Family<DecisionLabels, Counter>,
    pub cycle_duration: Histogram,
    pub cycles: Counter,
    pub prometheus_queries: Counter,
    pub prometheus_errors: Counter,
    pub act_errors: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    pub services_watched: Gauge,
    pub gpus_free: Gauge,
    pub leader: Gauge,
    pub preflight_checks: Family<PreflightLabels, Gauge>,
    pub preflight_runs: Counter,
    pub preflight_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gaia_autoscaler");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions taken, by kind and hold reason",
            decisions.clone(),
        );
        // 1 ms .. ~33 s
        let cycle_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "cycle_duration_seconds",
            "Duration of a decision cycle (observe, decide, act)",
            cycle_duration.clone(),
        );
        let cycles = Counter::default();
        registry.register("cycles", "Decision cycles run", cycles.clone());
        let prometheus_queries = Counter::default();
        registry.register(
            "prometheus_queries",
            "HTTP queries sent to Prometheus",
            prometheus_queries.clone(),
        );
        let prometheus_errors = Counter::default();
        registry.register(
            "prometheus_query_errors",
            "Cycles whose Prometheus queries failed (every Service held)",
            prometheus_errors.clone(),
        );
        let act_errors = Counter::default();
        registry.register(
            "act_errors",
            "Decisions that could not be carried out",
            act_errors.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register("errors", "Errors outside cycles, by kind", errors.clone());
        let services_watched = Gauge::default();
        registry.register(
            "services_watched",
            "Knative Services carrying gaia.dev/mode",
            services_watched.clone(),
        );
        let gpus_free = Gauge::default();
        registry.register(
            "gpus_free",
            "Free GPUs in the GPU pool at the last cycle",
            gpus_free.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the Lease and acts",
            leader.clone(),
        );
        let preflight_checks = Family::<PreflightLabels, Gauge>::default();
        registry.register(
            "preflight_check",
            "The preflight's checks at its last run: 1 on the status each check has",
            preflight_checks.clone(),
        );
        let preflight_runs = Counter::default();
        registry.register("preflight_runs", "Preflight runs", preflight_runs.clone());
        let preflight_errors = Counter::default();
        registry.register(
            "preflight_errors",
            "Preflight runs that could not start",
            preflight_errors.clone(),
        );
        Metrics {
            registry,
            decisions,
            cycle_duration,
            cycles,
            prometheus_queries,
            prometheus_errors,
            act_errors,
            errors,
            services_watched,
            gpus_free,
            leader,
            preflight_checks,
            preflight_runs,
            preflight_errors,
        }
    }

    /// The preflight's last run: each check 1 on its status, 0 on the two others.
    pub fn record_preflight(&self, report: &gaia_preflight::Report) {
        self.preflight_runs.inc();
        for c in &report.checks {
            for s in [
                gaia_preflight::Status::Pass,
                gaia_preflight::Status::Warn,
                gaia_preflight::Status::Fail,
            ] {
                self.preflight_checks
                    .get_or_create(&PreflightLabels {
                        check: c.id.to_string(),
                        status: crate::preflight::status_name(s).into(),
                    })
                    .set(i64::from(c.status == s));
            }
        }
    }

    pub fn record(&self, r: &CycleReport) {
        self.cycles.inc();
        self.cycle_duration.observe(r.duration.as_secs_f64());
        self.prometheus_queries
            .inc_by(u64::from(r.prometheus_queries));
        if r.prometheus_error.is_some() {
            self.prometheus_errors.inc();
        }
        self.act_errors.inc_by(r.act_errors);
        self.services_watched.set(r.services as i64);
        self.gpus_free.set(i64::from(r.gpu.free_total));
        for (kind, n) in &r.decisions {
            if *kind != "hold" {
                self.decisions
                    .get_or_create(&DecisionLabels {
                        kind: (*kind).to_string(),
                        reason: String::new(),
                    })
                    .inc_by(*n);
            }
        }
        for (reason, n) in &r.holds {
            self.decisions
                .get_or_create(&DecisionLabels {
                    kind: "hold".into(),
                    reason: (*reason).to_string(),
                })
                .inc_by(*n);
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_report_shows_up_in_the_exposition() {
        let m = Metrics::new();
        let r = CycleReport {
            services: 3,
            decisions: BTreeMap::from([("hold", 2), ("promote", 1)]),
            holds: BTreeMap::from([("within_slo", 2)]),
            prometheus_queries: 6,
            ..CycleReport::default()
        };
        m.record(&r);
        let text = m.encode();
        for line in [
            "gaia_autoscaler_decisions_total{kind=\"promote\",reason=\"\"} 1",
            "gaia_autoscaler_decisions_total{kind=\"hold\",reason=\"within_slo\"} 2",
            "gaia_autoscaler_services_watched 3",
            "gaia_autoscaler_prometheus_queries_total 6",
            "gaia_autoscaler_cycle_duration_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn each_check_is_one_on_its_status_only() {
        use gaia_preflight::{Blocks, Check, CheckId, Report, Status};
        let m = Metrics::new();
        let check = |status| Report {
            checks: vec![Check {
                id: CheckId::GpuNodes,
                status,
                summary: String::new(),
                fix: None,
                blocks: Blocks::Promotions,
            }],
        };
        m.record_preflight(&check(Status::Fail));
        m.record_preflight(&check(Status::Pass));
        let text = m.encode();
        for line in [
            "gaia_autoscaler_preflight_check{check=\"gpu-nodes\",status=\"pass\"} 1",
            "gaia_autoscaler_preflight_check{check=\"gpu-nodes\",status=\"fail\"} 0",
            "gaia_autoscaler_preflight_check{check=\"gpu-nodes\",status=\"warn\"} 0",
            "gaia_autoscaler_preflight_runs_total 2",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
