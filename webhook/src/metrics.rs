//! The webhook's Prometheus metrics, served on `/metrics`.

use std::time::Duration;

use gaia_contract::{ExecutionMode, ModeSource};
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::admission::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: &'static str,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

/// All metrics of the webhook.
pub struct Metrics {
    registry: Registry,
    reviews: Family<OutcomeLabels, Counter>,
    latency: Family<OutcomeLabels, Histogram>,
    classifications: Family<ModeLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gaia_webhook");
        let reviews = Family::<OutcomeLabels, Counter>::default();
        let latency = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            // 50 µs .. ~3.3 s
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.000_05, 2.0, 17,
            ))
        });
        let classifications = Family::<ModeLabels, Counter>::default();
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "reviews",
            "AdmissionReviews answered, by outcome",
            reviews.clone(),
        );
        registry.register(
            "review_duration_seconds",
            "Time to answer one AdmissionReview, by outcome",
            latency.clone(),
        );
        registry.register(
            "classifications",
            "Execution modes written to opted-in Services, by mode and where the mode came from",
            classifications.clone(),
        );
        registry.register(
            "classifier_cache",
            "Classifications answered from the source-digest cache (hit) or computed (miss)",
            cache.clone(),
        );
        Metrics {
            registry,
            reviews,
            latency,
            classifications,
            cache,
        }
    }

    pub fn observe_review(&self, outcome: Outcome, took: Duration) {
        let labels = OutcomeLabels {
            outcome: outcome.as_str(),
        };
        self.reviews.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn observe_classification(&self, mode: ExecutionMode, source: ModeSource) {
        self.classifications
            .get_or_create(&ModeLabels {
                mode: mode.as_str(),
                source: source.as_str(),
            })
            .inc();
    }

    pub fn observe_cache(&self, hit: bool) {
        self.cache
            .get_or_create(&CacheLabels {
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
