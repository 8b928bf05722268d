//! The process: config, watches, leader election, HTTP endpoints, the cycle loop, shutdown.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{info, info_span, warn, Instrument};

use crate::act::KubeActuator;
use crate::cluster::index::Index;
use crate::cluster::nodes::{label_selector, node_info, NodeInfo};
use crate::cluster::pods::{pod_info, PodInfo, NON_TERMINAL};
use crate::cluster::service::{api_resource, ManagedService};
use crate::config::{Args, Config};
use crate::cycle::{Cycle, CycleSettings, Snapshot};
use crate::leader::{identity, LeaderElector};
use crate::observe::prometheus::PromObserver;
use crate::server::{self, AppState, Health};
use crate::telemetry::{ErrorLabels, Metrics};
use crate::Error;

/// Runs the autoscaler until SIGTERM or Ctrl-C.
pub async fn run(args: Args) -> Result<(), Error> {
    let config = Config::load(&args)?;
    if args.check_config {
        let text = serde_saphyr::to_string(&config).map_err(|e| Error::ConfigParse {
            path: args.config.clone().unwrap_or_default(),
            message: e.to_string(),
        })?;
        print!("{text}");
        return Ok(());
    }
    let config = Arc::new(config);
    let observer = PromObserver::new(
        &config.prometheus.url,
        config.prometheus.timeout,
        config.queries(),
        config.policy.short_window,
        config.policy.long_window,
    )?;
    for (name, promql) in observer.rendered() {
        info!(query = name, %promql, "PromQL");
    }
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(config.interval));
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = shutdown_tx.send(true);
    });

    // Watches.
    let services: Arc<Index<ManagedService>> = Arc::new(Index::new());
    let pods: Arc<Index<PodInfo>> = Arc::new(Index::new());
    let nodes: Arc<Index<NodeInfo>> = Arc::new(Index::new());
    let gpu = config.gpu.resource.clone();
    let container = config.cpu.container.clone();
    let mut tasks = Vec::new();
    {
        let gpu = gpu.clone();
        let api = if config.namespace.is_empty() {
            Api::<DynamicObject>::all_with(client.clone(), &api_resource())
        } else {
            Api::<DynamicObject>::namespaced_with(
                client.clone(),
                &config.namespace,
                &api_resource(),
            )
        };
        tasks.push(tokio::spawn(watch_into(
            api,
            watcher::Config::default(),
            services.clone(),
            move |o: &DynamicObject| ManagedService::from_dynamic(o, &gpu),
            "services",
            metrics.clone(),
            shutdown.clone(),
        )));
    }
    {
        let gpu = gpu.clone();
        tasks.push(tokio::spawn(watch_into(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields(NON_TERMINAL),
            pods.clone(),
            move |p: &Pod| pod_info(p, &gpu, &container),
            "pods",
            metrics.clone(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(watch_into(
        Api::<Node>::all(client.clone()),
        watcher::Config::default().labels(&label_selector(&config.gpu_node_selector())),
        nodes.clone(),
        move |n: &Node| node_info(n, &gpu),
        "nodes",
        metrics.clone(),
        shutdown.clone(),
    )));

    // Leader election.
    let me = identity();
    let (leading_tx, leading) = watch::channel(!config.leader_election.enabled);
    let elector = if config.leader_election.enabled {
        let elector =
            LeaderElector::new(client.clone(), config.leader_election.clone(), me.clone());
        info!(identity = %me, lease = %config.leader_election.name,
              namespace = %config.leader_election.namespace, "leader election on");
        Some(tokio::spawn(elector.run(leading_tx, shutdown.clone())))
    } else {
        info!("leader election off: acting as the only replica");
        drop(leading_tx);
        None
    };

    // HTTP endpoints.
    let state = AppState {
        metrics: metrics.clone(),
        health: health.clone(),
    };
    let server = tokio::spawn(server::serve(config.listen, state, shutdown.clone()));
    info!(listen = %config.listen, "serving /metrics /healthz /readyz");

    let actuator = KubeActuator::new(
        client.clone(),
        me,
        config.placement.clone(),
        leading.clone(),
        args.dry_run,
    );
    let mut cycle = Cycle::new(CycleSettings::from_config(&config));
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        health.tick();
        let synced = services.is_synced() && pods.is_synced() && nodes.is_synced();
        health.set_ready(synced);
        metrics.services_watched.set(services.len() as i64);
        let lead = *leading.borrow();
        metrics.leader.set(i64::from(lead));
        if !lead || !synced {
            continue;
        }
        let snap = Snapshot {
            services: services.snapshot(),
            pods: pods.snapshot(),
            nodes: nodes.snapshot(),
        };
        let report = cycle
            .run(&snap, &observer, &actuator, jiff::Timestamp::now(), None)
            .instrument(info_span!("cycle"))
            .await;
        metrics.record(&report);
        info!(services = report.services, queries = report.prometheus_queries,
              ms = report.duration.as_millis() as u64, decisions = ?report.decisions,
              gpus_free = report.gpu.free_total, act_errors = report.act_errors, "cycle");
    }

    // Graceful end: the cycle in progress has finished; release the Lease, stop serving.
    if let Some(e) = elector {
        let _ = e.await;
    }
    for t in tasks {
        let _ = t.await;
    }
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(e) => warn!(error = %e, "HTTP server task failed"),
    }
    info!("stopped");
    Ok(())
}

/// Feeds `index` from a watch until shutdown. Watch errors are retried with back-off.
async fn watch_into<K, T>(
    api: Api<K>,
    config: watcher::Config,
    index: Arc<Index<T>>,
    project: impl Fn(&K) -> Option<T>,
    what: &'static str,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(e)) => index.apply(e, &project),
                Some(Err(e)) => {
                    warn!(watch = what, error = %e, "watch failed, retrying");
                    metrics.errors.get_or_create(&ErrorLabels { error: format!("watch_{what}") }).inc();
                }
                None => break,
            },
            _ = shutdown.changed() => break,
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
