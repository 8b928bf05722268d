//! One AdmissionReview in, one AdmissionReview out.
//!
//! Every answer is a well-formed AdmissionReview; nothing here returns an HTTP error. How each
//! kind of bad input is answered, and why:
//!
//! | input | answer | why |
//! |---|---|---|
//! | not JSON, not an AdmissionReview, no `request` | invalid (denied, no uid) | the apiserver never sends this; the sender gets the parse error |
//! | not a `serving.knative.dev` Service, or DELETE/CONNECT | allowed, no patch | a misconfigured rule must not block the cluster |
//! | CREATE/UPDATE without `object` | allowed, warning | nothing to look at |
//! | Service not opted in, or in an excluded namespace | allowed, no patch | opt-in only |
//! | unknown `gaia.dev/execution-mode` value | denied, message lists the valid values | the user asked for something Gaia cannot do; saying so beats guessing |
//! | source unreadable, too large, too deep, not UTF-8, classification over the deadline | allowed with the default mode, rationale and a warning say why | deploying must not depend on the classifier |
//! | a Service Gaia cannot place (no containers) | allowed, warning, no patch | Knative's own validation reports it |
//! | a placement whose fields Knative's `config-features` leaves off | allowed with mode and rationale, without the placement; rationale and warning give the fix | Knative would reject the whole Service |

pub mod decide;
pub mod review;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gaia_contract::RequestedMode;
use serde_json::Value;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::Config;
use crate::image::ReviewContext;
use crate::knative_features::{not_injected, KnativeFeatures};
use crate::metrics::Metrics;
use crate::namespaces::NamespaceLabels;
use crate::pool::{ClassifierPool, Hit};
use crate::sources::SourceChain;
use crate::Error;
use decide::{Analysis, OptIn};
use gaia_contract::Verdict;
use review::{RequestIn, ReviewIn, ReviewOut};

/// How a review ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Opted in; the answer carries a patch.
    Patched,
    /// Opted in; the Service already was as Gaia wants it.
    Unchanged,
    /// Not Gaia's business (not opted in, excluded namespace, other kind or operation).
    Skipped,
    /// Refused with a message to the user.
    Denied,
    /// The request itself was unreadable.
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Patched => "patched",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
        }
    }
}

/// Everything a review needs.
pub struct Admission {
    pub config: Arc<Config>,
    pub sources: SourceChain,
    pub pool: ClassifierPool,
    pub namespaces: NamespaceLabels,
    /// Knative's `config-features`, which gates the placement's fields.
    pub features: KnativeFeatures,
    pub metrics: Arc<Metrics>,
}

impl Admission {
    /// Answers one HTTP body. Never fails.
    pub async fn review(&self, body: &[u8]) -> (ReviewOut, Outcome) {
        let started = Instant::now();
        let (review, outcome) = self.review_inner(body).await;
        self.metrics.observe_review(outcome, started.elapsed());
        (review, outcome)
    }

    async fn review_inner(&self, body: &[u8]) -> (ReviewOut, Outcome) {
        let parsed: ReviewIn = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "malformed AdmissionReview");
                return invalid(format!("malformed AdmissionReview: {e}"));
            }
        };
        if parsed.kind.as_deref() != Some("AdmissionReview") {
            return invalid(format!(
                "expected kind AdmissionReview, got {:?}",
                parsed.kind.unwrap_or_default()
            ));
        }
        let api_version = parsed
            .api_version
            .unwrap_or_else(|| review::API_VERSION_V1.to_string());
        let Some(request) = parsed.request else {
            return invalid("AdmissionReview has no request".to_string());
        };
        let meta = |key: &str| {
            request
                .object
                .as_ref()
                .or(request.old_object.as_ref())
                .and_then(|o| o.pointer("/metadata")?.get(key)?.as_str())
                .map(str::to_string)
        };
        let namespace = request
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| meta("namespace"))
            .unwrap_or_default();
        let name = request
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| meta("name"))
            .or_else(|| meta("generateName"))
            .unwrap_or_default();
        let span = info_span!("review", %namespace, %name, uid = %request.uid, op = %request.operation, dry_run = request.dry_run.unwrap_or(false));
        let ctx = ReviewContext {
            name: request
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| meta("name"))
                .unwrap_or_default(),
            follow_up: !request.dry_run.unwrap_or(false),
        };
        self.review_request(&api_version, request, namespace, ctx)
            .instrument(span)
            .await
    }

    async fn review_request(
        &self,
        api_version: &str,
        request: RequestIn,
        namespace: String,
        ctx: ReviewContext,
    ) -> (ReviewOut, Outcome) {
        let allow = ReviewOut::allow(api_version, &request.uid);
        let is_service =
            request.kind.group == "serving.knative.dev" && request.kind.kind == "Service";
        let is_write = matches!(request.operation.as_str(), "CREATE" | "UPDATE");
        if !is_service || !is_write {
            debug!(kind = %request.kind.kind, version = %request.kind.version, "not a Service CREATE/UPDATE: skipped");
            return (allow, Outcome::Skipped);
        }
        let Some(service) = request.object else {
            return (
                allow.with_warnings(vec![
                    "gaia: the review has no object; nothing classified".into()
                ]),
                Outcome::Skipped,
            );
        };
        if self.config.excluded_namespaces.contains(&namespace) {
            return (allow, Outcome::Skipped);
        }
        let requested = match decide::requested_mode(&service, self.namespaces.opted_in(&namespace))
        {
            OptIn::No => return (allow, Outcome::Skipped),
            OptIn::Invalid(message) => {
                info!(%message, "denied");
                return (
                    ReviewOut::deny(api_version, &request.uid, message),
                    Outcome::Denied,
                );
            }
            OptIn::Yes(m) => m,
        };
        let old = request.old_object;
        let mut warnings = Vec::new();
        let verdict = self
            .analyse(
                &service,
                old.as_ref(),
                &namespace,
                requested,
                &ctx,
                self.config.review_deadline,
                &mut warnings,
            )
            .await;
        self.metrics
            .observe_classification(verdict.mode, verdict.source);

        let first = decide::first_rung(&service, &verdict, self.config.ladder.as_ref());
        let verdict = decide::with_first_rung(verdict, first.as_ref());
        let (verdict, place) = self.gated(&service, verdict, first.as_ref(), &mut warnings);
        let mutated = match decide::mutate(
            &service,
            &verdict,
            &self.config.placement,
            first.as_ref(),
            place,
        ) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("gaia: cannot place this Service: {e}"));
                return (allow.with_warnings(warnings), Outcome::Skipped);
            }
        };
        let patch = json_patch::diff(&service, &mutated);
        let allow = allow.with_warnings(warnings);
        if patch.0.is_empty() {
            return (allow, Outcome::Unchanged);
        }
        info!(mode = %verdict.mode, source = %verdict.source, rationale = %verdict.rationale, ops = patch.0.len(), "patched");
        match allow.clone().with_patch(&patch) {
            Ok(r) => (r, Outcome::Patched),
            Err(e) => {
                let mut w = allow.response.warnings.clone();
                w.push(format!("gaia: cannot serialise the patch: {e}"));
                (allow.with_warnings(w), Outcome::Skipped)
            }
        }
    }

    /// What the webhook would make of `service` now, with `budget` for reading and
    /// classifying: the verdict and the Service as wanted. For the follow-up of a review whose
    /// image was read after it. `None` when the Service is not opted in or cannot be placed.
    pub async fn desired(
        &self,
        service: &Value,
        namespace: &str,
        budget: Duration,
    ) -> Option<(Verdict, Value)> {
        let requested = match decide::requested_mode(service, self.namespaces.opted_in(namespace)) {
            OptIn::Yes(m) => m,
            _ => return None,
        };
        let ctx = ReviewContext::default();
        let mut warnings = Vec::new();
        let verdict = self
            .analyse(
                service,
                None,
                namespace,
                requested,
                &ctx,
                budget,
                &mut warnings,
            )
            .await;
        let first = decide::first_rung(service, &verdict, self.config.ladder.as_ref());
        let verdict = decide::with_first_rung(verdict, first.as_ref());
        let (verdict, place) = self.gated(service, verdict, first.as_ref(), &mut warnings);
        let mutated = decide::mutate(
            service,
            &verdict,
            &self.config.placement,
            first.as_ref(),
            place,
        )
        .ok()?;
        Some((verdict, mutated))
    }

    /// Whether the placement can be injected: not while Knative's `config-features` leaves off
    /// a field its profile needs (Knative would reject the Service). Then the verdict's
    /// rationale and a warning say so, and only the annotations are written.
    fn gated(
        &self,
        service: &Value,
        mut verdict: Verdict,
        first: Option<&decide::FirstRung<'_>>,
        warnings: &mut Vec<String>,
    ) -> (Verdict, bool) {
        let profile = decide::profile_for(service, &verdict, &self.config.placement, first);
        let off = self.features.flags_off(profile);
        if off.is_empty() {
            return (verdict, true);
        }
        let why = not_injected(&off);
        warn!(flags = %off.join(","), "placement not injected: Knative's config-features leaves it off");
        warnings.push(format!("gaia: {why}"));
        verdict.rationale = format!("{}; {why}", verdict.rationale);
        (verdict, false)
    }

    /// Finds the source and classifies it, within `budget` (the review deadline).
    #[allow(clippy::too_many_arguments)]
    async fn analyse(
        &self,
        service: &Value,
        old: Option<&Value>,
        namespace: &str,
        requested: RequestedMode,
        ctx: &ReviewContext,
        budget: Duration,
        warnings: &mut Vec<String>,
    ) -> Verdict {
        let deadline = Instant::now() + budget;
        let default_mode = self.config.default_mode;
        let fetched = tokio::time::timeout(
            budget,
            self.sources.fetch(service, namespace, ctx, deadline),
        )
        .await;
        let source = match fetched {
            Ok(Ok(Some(s))) => s,
            Ok(Ok(None)) => {
                return decide::effective(requested, Analysis::NoSource, None, default_mode)
            }
            Ok(Err(Error::ImagePending {
                reference,
                waited,
                registry,
            })) => {
                let why = match registry {
                    // the tag resolution itself had no answer: say which registry is slow or down
                    Some(r) => format!(
                        "registry {r} did not answer within {} ms (image {reference})",
                        waited.as_millis()
                    ),
                    None => format!(
                        "image {reference} not read within {} ms",
                        waited.as_millis()
                    ),
                };
                let then = if ctx.follow_up && !ctx.name.is_empty() {
                    "the read continues and the verdict will be written onto the Service"
                } else {
                    "the read continues; the next review uses it"
                };
                warnings.push(format!(
                    "gaia: {why}: admitted with the default mode; {then}"
                ));
                return decide::effective(requested, Analysis::Failed(why), None, default_mode);
            }
            Ok(Err(e)) => {
                let why = format!("source unreadable: {e}");
                warnings.push(format!("gaia: {why}"));
                return decide::effective(requested, Analysis::Failed(why), None, default_mode);
            }
            Err(_) => {
                let why = format!(
                    "reading the source took longer than {:?}",
                    self.config.review_deadline
                );
                warnings.push(format!("gaia: {why}"));
                return decide::effective(requested, Analysis::Failed(why), None, default_mode);
            }
        };
        let origin = Some(source.origin.annotation());
        let image_digest = source.origin.image_digest().map(str::to_string);
        if let Some(mut prior) = decide::reusable_prior(service, old, &source.digest, requested) {
            debug!(digest = %source.digest, "source unchanged: earlier verdict kept");
            prior.origin = origin;
            prior.image_digest = image_digest;
            return prior;
        }
        let digest = source.digest.clone();
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let mut verdict = match self.pool.classify(&digest, source.files, remaining).await {
            Ok((c, hit)) => {
                self.metrics.observe_cache(hit == Hit::Cached);
                if c.fallback {
                    warnings.push(
                        "gaia: the Python parser could not read all of the source; a line-level scan was used"
                            .to_string(),
                    );
                }
                decide::effective(
                    requested,
                    Analysis::Classified(&c),
                    Some(digest),
                    default_mode,
                )
            }
            Err(e) => {
                let why = e.to_string();
                warn!(error = %why, origin = %source.origin, "classification failed");
                warnings.push(format!("gaia: {why}; the default mode is used"));
                decide::effective(requested, Analysis::Failed(why), Some(digest), default_mode)
            }
        };
        verdict.origin = origin;
        verdict.image_digest = image_digest;
        verdict
    }
}

fn invalid(message: String) -> (ReviewOut, Outcome) {
    (ReviewOut::invalid(message), Outcome::Invalid)
}
