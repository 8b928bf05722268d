//! The policy: every rule that moves a Service between CPU and GPU, in one pure function.
//!
//! [`decide`] reads a Service's state (mode, placement, rollout, SLO, what it remembers in
//! `gaia.dev/observed`), the metrics of the revision that serves it, the free GPUs and the
//! clock, and returns one [`Decision`]. It does no I/O, so every rule is tested by a table (see
//! `tests/decide_table.rs`) and the same function runs in the controller and the benchmark.
//!
//! The rules, in the order they are checked:
//!
//! 1. **Pinned** modes (`cpu`, `gpu`) are never moved.
//! 2. **Rollout**: while a new revision is rolling out, hold. If a revision *we* asked for is
//!    still not ready after `rolloutTimeout`, roll back to the previous placement (a GPU revision
//!    that cannot start counts as a useless promotion and starts the back-off).
//! 3. **Missing data holds**: no Prometheus answer, no p95, no request rate, too few requests,
//!    or no CPU figure (for a promotion) means *hold*, never move.
//! 4. **Promote** (on CPU): p95 over the short window above `SLO × (1 + sloTolerance)`, with at
//!    least `minRequests` requests in that window, **and** compute-bound (CPU use / CPU limit
//!    ≥ `cpuUtilization`, or CPU cores per in-flight request ≥ `cpuPerRequest`: a function that
//!    is slow because it waits uses no CPU while it waits and is never promoted), sustained:
//!    either `sustainCycles` consecutive violating cycles *and* the long-window p95 above the
//!    SLO too, or — the fast path — `severeCycles` consecutive cycles at or above
//!    `severeFactor × SLO`. Then the hysteresis checks (dwell, back-off, moves/hour with room
//!    for a possible revert), then a free GPU on one node (else [`Decision::NoGpu`]: an Event,
//!    and the next cycle tries again; no revision is created that would sit Pending).
//! 5. **Verify** (on GPU, after our promotion): once `verify.settle` has passed and the new
//!    revision has `verify.minRequests` requests in the short window, compare its p95 with the
//!    CPU p95 remembered at promotion. A gain below `verify.minGain` reverts to CPU at once
//!    (dwell does not apply; the cap left room for it), counts a useless promotion and blocks
//!    promotions for `backoffBase × 2^(n-1)` (at most `backoffMax`). A good gain is remembered
//!    and resets the count.
//! 6. **Demote** (on GPU, after dwell, within the cap): when idle (long-window rate below
//!    `demote.idleRps`, or scaled to zero with no series) and in place for a whole long window
//!    (since our last move, else since the Service's creation: a new Service still loading its
//!    model holds as `dwell`); or when the load is at or below the
//!    load at which the remembered CPU p95 met the SLO; or when, at a comparable load, the GPU
//!    p95 shows no significant gain over the remembered CPU p95.
//!
//! The consecutive-violation count is the only state that is not in the cluster: it lives in
//! the leader's memory, is an input and an output of [`decide`], and losing it (a restart, a
//! new leader) only delays a promotion by a few cycles; it never causes a move.

//!
//! The crate is pure: no Kubernetes, no async runtime, no HTTP. The autoscaler
//! (`gaia-autoscaler`) and the virtual-clock replay (`gaia-eval`) both call [`decide`].
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod clock;
mod config;
mod decide;
mod error;
pub mod ladder;

pub use config::{
    positive, DemoteConfig, HysteresisConfig, PolicyConfig, PromoteConfig, VerifyConfig,
    DEFAULT_CAPACITY_WITHOUT_LIMIT, DEFAULT_INTERVAL,
};
pub use decide::*;
pub use error::Error;
