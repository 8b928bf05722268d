//! Leader election on a coordination.k8s.io/v1 Lease, as client-go does it.
//!
//! Every `retryPeriod` each replica reads the Lease. The holder renews it (a `replace` guarded
//! by the resourceVersion it read, so two writers cannot both win). A candidate takes it over
//! when it is empty (released on shutdown) or when its record (holder, renewTime) has not
//! changed for `leaseDuration` *as measured on the candidate's own clock* — so clock skew between
//! nodes does not matter. The holder stops acting as soon as a renewal is refused, or when it
//! could not renew for `renewDeadline` (< `leaseDuration`), so by the time a standby may take
//! over the old leader has already stopped. On SIGTERM the leader releases the Lease and the
//! standby takes over at its next try.
//!
//! Whether a replica leads is [`Leadership`]: not a flag the elector sets, but the time of its
//! last successful renewal, judged against `renewDeadline` on the monotonic clock at the
//! moment of asking. A process frozen past its deadline (SIGSTOP, a paused VM, a network cut
//! that ends) therefore stops acting the instant it runs again, before its elector has read
//! the Lease: its watches and memory are stale by then, and the standby leads.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::LeaderElectionConfig;
use crate::Error;

/// Whether this replica may act now: it holds the Lease, and its last successful renewal
/// began less than `renewDeadline` ago (monotonic clock).
#[derive(Debug, Clone)]
pub struct Leadership {
    renewed: watch::Receiver<Option<Instant>>,
    deadline: Duration,
}

impl Leadership {
    /// The elector's end (when each successful renewal began, `None` once not leading) and
    /// the readers' end.
    pub fn channel(renew_deadline: Duration) -> (watch::Sender<Option<Instant>>, Leadership) {
        let (tx, rx) = watch::channel(None);
        (
            tx,
            Leadership {
                renewed: rx,
                deadline: renew_deadline,
            },
        )
    }

    /// Leader election off: the only replica always leads.
    pub fn always() -> Leadership {
        let (_tx, rx) = watch::channel(Some(Instant::now()));
        Leadership {
            renewed: rx,
            deadline: Duration::MAX,
        }
    }

    pub fn is_leading(&self) -> bool {
        self.is_leading_at(Instant::now())
    }

    pub fn is_leading_at(&self, now: Instant) -> bool {
        matches!(*self.renewed.borrow(), Some(t) if now.saturating_duration_since(t) < self.deadline)
    }
}

/// What to do with the Lease as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// We hold it: renew.
    Renew,
    /// Empty or expired: take it.
    Acquire,
    /// Someone else holds it.
    Follow,
}

/// The last Lease record seen, and when (on our clock) it was first seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    record: (Option<String>, Option<MicroTime>),
    at: Instant,
}

/// Decides from the Lease spec; updates `seen` when the record changed.
pub fn step(
    spec: &LeaseSpec,
    me: &str,
    seen: &mut Option<Seen>,
    now: Instant,
    default_duration: Duration,
) -> Step {
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    if holder.as_deref() == Some(me) {
        return Step::Renew;
    }
    let record = (holder.clone(), spec.renew_time.clone());
    if seen.as_ref().is_none_or(|s| s.record != record) {
        *seen = Some(Seen { record, at: now });
    }
    if holder.is_none() {
        return Step::Acquire;
    }
    let duration = spec
        .lease_duration_seconds
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
        .unwrap_or(default_duration);
    match seen {
        Some(s) if now.duration_since(s.at) > duration => Step::Acquire,
        _ => Step::Follow,
    }
}

pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaderElectionConfig,
    identity: String,
    seen: Option<Seen>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, cfg: LeaderElectionConfig, identity: String) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            identity,
            seen: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn spec_for_me(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(jiff::Timestamp::now());
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(if previous.is_some() {
                transitions + 1
            } else {
                transitions
            }),
            ..LeaseSpec::default()
        }
    }

    /// One round: true when we hold the Lease afterwards.
    pub async fn try_once(&mut self) -> Result<bool, Error> {
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec_for_me(None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let new_spec = match step(
            &spec,
            &self.identity,
            &mut self.seen,
            Instant::now(),
            self.cfg.lease_duration,
        ) {
            Step::Follow => return Ok(false),
            Step::Renew => LeaseSpec {
                renew_time: Some(MicroTime(jiff::Timestamp::now())),
                lease_duration_seconds: Some(self.cfg.lease_duration.as_secs().max(1) as i32),
                ..spec
            },
            Step::Acquire => self.spec_for_me(Some(&spec)),
        };
        lease.spec = Some(new_spec);
        // `replace` sends the resourceVersion we read: a concurrent writer makes it fail.
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the Lease up (on shutdown) so a standby takes over at once.
    pub async fn release(&mut self) -> Result<(), Error> {
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        self.api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }

    /// Runs until `shutdown` changes, publishing on `renewed` when each successful renewal
    /// began (`None` once we do not lead): what [`Leadership`] judges.
    pub async fn run(
        mut self,
        renewed: watch::Sender<Option<Instant>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut last_renewal: Option<Instant> = None;
        loop {
            // the time the request leaves: the Lease record the standby judges is newer
            let attempt = Instant::now();
            let lead = match self.try_once().await {
                Ok(true) => {
                    last_renewal = Some(attempt);
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    warn!(error = %e, lease = %self.cfg.name, "Lease round failed");
                    renewed.borrow().is_some()
                        && last_renewal.is_some_and(|t| t.elapsed() < self.cfg.renew_deadline)
                }
            };
            if lead != renewed.borrow().is_some() {
                info!(identity = %self.identity, lease = %self.cfg.name, leading = lead,
                      "leadership changed");
            }
            renewed.send_replace(if lead { last_renewal } else { None });
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
                _ = shutdown.changed() => break,
            }
        }
        if renewed.borrow().is_some() {
            renewed.send_replace(None);
            match self.release().await {
                Ok(()) => info!(identity = %self.identity, "Lease released"),
                Err(e) => warn!(error = %e, "could not release the Lease"),
            }
        }
    }
}

/// `$POD_NAME` (or the host name) plus a per-process suffix.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "gaia-autoscaler".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}_{:x}{:x}", std::process::id(), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renew_secs: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(Into::into),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(jiff::Timestamp::from_second(renew_secs).unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn leadership_ends_at_the_renew_deadline_even_without_a_word_from_the_elector() {
        let deadline = Duration::from_secs(10);
        let (tx, leadership) = Leadership::channel(deadline);
        let t0 = Instant::now();
        assert!(
            !leadership.is_leading_at(t0),
            "not leading before a renewal"
        );
        tx.send_replace(Some(t0));
        assert!(leadership.is_leading_at(t0 + Duration::from_secs(9)));
        // frozen (SIGSTOP) past the deadline: the elector never said anything, yet the
        // replica does not lead when it runs again
        assert!(!leadership.is_leading_at(t0 + deadline));
        assert!(!leadership.is_leading_at(t0 + Duration::from_secs(3600)));
        tx.send_replace(Some(t0 + Duration::from_secs(20)));
        assert!(leadership.is_leading_at(t0 + Duration::from_secs(25)));
        tx.send_replace(None);
        assert!(!leadership.is_leading_at(t0 + Duration::from_secs(25)));
    }

    #[test]
    fn without_leader_election_the_replica_always_leads() {
        let l = Leadership::always();
        assert!(l.is_leading());
        assert!(l.is_leading_at(Instant::now() + Duration::from_secs(86_400 * 365)));
    }

    #[test]
    fn holder_renews_candidates_wait_for_a_stale_record() {
        let d = Duration::from_secs(15);
        let t0 = Instant::now();
        let mut seen = None;
        assert_eq!(
            step(&spec(Some("me"), 0), "me", &mut seen, t0, d),
            Step::Renew
        );
        // another holder, record first seen now: follow for the whole lease duration
        assert_eq!(
            step(&spec(Some("b"), 100), "me", &mut seen, t0, d),
            Step::Follow
        );
        assert_eq!(
            step(
                &spec(Some("b"), 100),
                "me",
                &mut seen,
                t0 + Duration::from_secs(14),
                d
            ),
            Step::Follow
        );
        // the holder renewed: the clock restarts
        assert_eq!(
            step(
                &spec(Some("b"), 112),
                "me",
                &mut seen,
                t0 + Duration::from_secs(14),
                d
            ),
            Step::Follow
        );
        assert_eq!(
            step(
                &spec(Some("b"), 112),
                "me",
                &mut seen,
                t0 + Duration::from_secs(28),
                d
            ),
            Step::Follow
        );
        // not renewed for more than the lease duration on our clock: take over
        assert_eq!(
            step(
                &spec(Some("b"), 112),
                "me",
                &mut seen,
                t0 + Duration::from_secs(30),
                d
            ),
            Step::Acquire
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut seen = None;
        assert_eq!(
            step(
                &spec(Some(""), 0),
                "me",
                &mut seen,
                Instant::now(),
                Duration::from_secs(15)
            ),
            Step::Acquire
        );
        assert_eq!(
            step(
                &spec(None, 0),
                "me",
                &mut seen,
                Instant::now(),
                Duration::from_secs(15)
            ),
            Step::Acquire
        );
    }

    #[test]
    fn identities_differ_between_processes_of_one_pod() {
        assert!(identity().contains('_'));
    }
}
