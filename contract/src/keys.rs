//! Annotation and label keys. Every key Gaia reads or writes is named here, once.

/// Written by the user: `auto`, `cpu`, `cpu_preferred`, `gpu_preferred` or `gpu`. On the Service
/// metadata or on `spec.template.metadata`. Opts the Service in.
pub const EXECUTION_MODE: &str = "gaia.dev/execution-mode";
/// Label on a Namespace: every Service in it is treated as `auto`.
pub const INJECT_LABEL: &str = "gaia.dev/inject";
/// Value of [`INJECT_LABEL`] that opts a namespace in.
pub const INJECT_ENABLED: &str = "enabled";
/// Written by the user or a tool: the function source inline (one file).
pub const SOURCE: &str = "gaia.dev/source";
/// Written by the user: the p95 latency objective, e.g. `500ms`.
pub const LATENCY_SLO: &str = "gaia.dev/latency-slo";

/// Written by the webhook: the effective execution mode.
pub const MODE: &str = "gaia.dev/mode";
/// Written by the webhook: `user`, `classifier` or `default`.
pub const MODE_SOURCE: &str = "gaia.dev/mode-source";
/// Written by the webhook: one human line saying why.
pub const RATIONALE: &str = "gaia.dev/rationale";
/// Written by the webhook: the findings behind the rationale, compact JSON, bounded in size.
pub const FINDINGS: &str = "gaia.dev/findings";
/// Written by the webhook: hash of the analysed source; unchanged source is not re-analysed.
pub const SOURCE_DIGEST: &str = "gaia.dev/source-digest";
/// Written by the webhook: where the analysed source was read (`annotation`,
/// `configmap:NAME[,NAME]`, `image:REFERENCE`).
pub const SOURCE_ORIGIN: &str = "gaia.dev/source-origin";
/// Written by the webhook: the manifest digest (`sha256:...`) of the image the source was read
/// from, when it came from the image.
pub const IMAGE_DIGEST: &str = "gaia.dev/image-digest";

/// Written by the autoscaler on the Service metadata: where it wants the Service (`cpu` or
/// `gpu`). The webhook keeps it when it re-places a template.
pub const DESIRED_PLACEMENT: &str = "gaia.dev/desired-placement";
/// Written by [`crate::apply_placement`] on `spec.template.metadata`: the placement the template
/// was rewritten for.
pub const PLACED_FOR: &str = "gaia.dev/placed-for";
/// Gaia up to 0.1 wrote both meanings under this one key (desired on the metadata, placed-for on
/// the template). Still read, in both places, so an upgrade loses nothing; never written, and
/// removed from a template when it is next placed.
pub const LEGACY_PLACEMENT: &str = "gaia.dev/placement";
/// Written by the autoscaler: what it saw and remembers (JSON, see [`crate::Observed`]).
pub const OBSERVED: &str = "gaia.dev/observed";
/// Written by the autoscaler on `spec.template.metadata` when a placement ladder is configured:
/// the rung (`cpu`, `gpu-shared`, `gpu`, ...) the template was placed for. `gaia.dev/placed-for`
/// then says `cpu` for the first rung and `gpu` for every other one. While it is there,
/// [`crate::apply_placement`] leaves a template already placed for that coarse placement alone.
pub const RUNG: &str = "gaia.dev/rung";
/// Written by the autoscaler on the Service metadata when a placement ladder is configured: what
/// it remembers per rung (JSON, `gaia_policy::ladder::LadderMemory`).
pub const LADDER: &str = "gaia.dev/ladder";
/// Written by the webhook on the Service metadata with the verdict: the GPU memory the model
/// needs, MiB (the classifier's estimate, `gaia_contract::gpu_memory`), when the code loads a
/// model of known size. The webhook chooses the first rung of a ladder by it; the autoscaler's
/// ladder skips the rungs it does not fit.
pub const GPU_MEMORY: &str = "gaia.dev/gpu-memory-mib";

/// Knative's own annotation on `spec.template.metadata`: how long the revision may take to
/// become ready before Knative gives up on it (Go duration, `600s`; Knative's default is 10
/// minutes). Written by [`crate::apply_placement`] for a profile whose pool grows on demand
/// (`elastic`), so that a node has time to join.
pub const KNATIVE_PROGRESS_DEADLINE: &str = "serving.knative.dev/progress-deadline";

/// Field manager the autoscaler names on its writes. It writes with a JSON patch guarded by a
/// `test` of the resourceVersion (not server-side apply: see `autoscaler-ext/src/act.rs`).
pub const AUTOSCALER_FIELD_MANAGER: &str = "gaia-autoscaler";
