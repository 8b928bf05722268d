//! The process: config, watches, leader election, HTTP endpoints, the cycle loop, shutdown.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use gaia_contract::queries::{Generation, LabelLayout};
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
use crate::cluster::nodes::{gpu_node_info, label_selector, node_shape, NodeInfo, NodeShape};
use crate::cluster::pods::{pod_info, requested_units, PodInfo, NON_TERMINAL};
use crate::cluster::rungs::PodUnits;
use crate::cluster::service::{api_resource, ManagedService};
use crate::config::{Args, Config};
use crate::cycle::{Cycle, CycleSettings, RungSnapshot, Snapshot};
use crate::leader::{identity, LeaderElector, Leadership};
use crate::observe::prometheus::PromObserver;
use crate::preflight::Preflight;
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
    let generation = config.prometheus.initial_generation();
    let mut queried = (generation, config.prometheus.initial_layout());
    let mut observer = observer_for(&config, queried)?;
    if config.prometheus.generation.fixed().is_none() && !config.preflight.enabled {
        warn!(generation = generation.name(),
              "prometheus.generation: auto without the preflight (preflight.enabled: false): the generation is not detected");
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
    let pods: Arc<Index<PodEntry>> = Arc::new(Index::new());
    let nodes: Arc<Index<NodeEntry>> = Arc::new(Index::new());
    let ladder = config.ladder.clone().map(Arc::new);
    // The ladder's resources, rung by rung ("" for the CPU rung, which has none).
    let rung_resources: Vec<String> = ladder
        .iter()
        .flat_map(|l| l.rungs.iter())
        .map(|r| r.resource.clone().unwrap_or_default())
        .collect();
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
        let resources = rung_resources.clone();
        tasks.push(tokio::spawn(watch_into(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields(NON_TERMINAL),
            pods.clone(),
            move |p: &Pod| {
                let info = pod_info(p, &gpu, &container)?;
                let units = PodUnits {
                    node: info.node.clone(),
                    units: resources
                        .iter()
                        .map(|r| {
                            if r.is_empty() {
                                0
                            } else {
                                requested_units(p, r)
                            }
                        })
                        .collect(),
                };
                Some(PodEntry {
                    info: Arc::new(info),
                    units: units.uses_any().then(|| Arc::new(units)),
                })
            },
            "pods",
            metrics.clone(),
            shutdown.clone(),
        )));
    }
    {
        // Without a ladder, the GPU pool's nodes only (as before); with one, every node: its
        // rungs may select other nodes than the GPU placement does.
        let gpu_selector = config.gpu_node_selector();
        let watch = match &ladder {
            None => watcher::Config::default().labels(&label_selector(&gpu_selector)),
            Some(_) => watcher::Config::default(),
        };
        let gpu_profile = config.placement.gpu.clone();
        let with_shape = ladder.is_some();
        let resources = rung_resources.clone();
        tasks.push(tokio::spawn(watch_into(
            Api::<Node>::all(client.clone()),
            watch,
            nodes.clone(),
            move |n: &Node| {
                let info = gpu_node_info(n, &gpu, &gpu_profile)?;
                let refs: Vec<&str> = resources
                    .iter()
                    .filter(|r| !r.is_empty())
                    .map(String::as_str)
                    .collect();
                let shape = with_shape.then(|| Arc::new(node_shape(n, &refs)));
                let in_gpu_pool = shape
                    .as_ref()
                    .is_none_or(|s| gpu_selector.iter().all(|(k, v)| s.labels.get(k) == Some(v)));
                Some(NodeEntry {
                    info: Arc::new(info),
                    shape,
                    in_gpu_pool,
                })
            },
            "nodes",
            metrics.clone(),
            shutdown.clone(),
        )));
    }

    // Leader election.
    let me = identity();
    let (elector, leading) = if config.leader_election.enabled {
        let (renewed, leading) = Leadership::channel(config.leader_election.renew_deadline);
        let elector =
            LeaderElector::new(client.clone(), config.leader_election.clone(), me.clone());
        info!(identity = %me, lease = %config.leader_election.name,
              namespace = %config.leader_election.namespace, "leader election on");
        (
            Some(tokio::spawn(elector.run(renewed, shutdown.clone()))),
            leading,
        )
    } else {
        info!("leader election off: acting as the only replica");
        (None, Leadership::always())
    };

    // HTTP endpoints.
    let state = AppState {
        metrics: metrics.clone(),
        health: health.clone(),
    };
    let server = tokio::spawn(server::serve(config.listen, state, shutdown.clone()));
    info!(listen = %config.listen, "serving /metrics /healthz /readyz");

    // The preflight, at start and periodically (every replica: the metric; the leader: Events).
    let mut preflight = config.preflight.enabled.then(|| {
        let namespace = std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| config.leader_election.namespace.clone());
        Preflight::new(client.clone(), config.clone(), &namespace, me.clone())
    });
    if preflight.is_none() {
        info!("preflight off (preflight.enabled: false): no move is held for it");
    }
    let actuator = KubeActuator::new(
        client.clone(),
        me,
        config.placement.clone(),
        leading.clone(),
        args.dry_run,
    )
    .with_ladder(ladder.clone());
    if let Some(l) = &ladder {
        let names: Vec<&str> = l.rungs.iter().map(|r| r.name.as_str()).collect();
        info!(rungs = ?names, "placement ladder on: deciding with decide_ladder");
    }
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
        let lead = leading.is_leading();
        metrics.leader.set(i64::from(lead));
        if let Some(p) = preflight.as_mut() {
            if p.run_if_due(lead, &metrics)
                .instrument(info_span!("preflight"))
                .await
            {
                cycle.set_preflight(p.last().cloned());
                // `auto`: the preflight chose the generation and the label layout; their
                // queries from now on
                let chosen = p
                    .last()
                    .map(|l| (l.generation.generation, l.generation.layout));
                if let Some(chosen) = chosen.filter(|c| *c != queried) {
                    observer = observer_for(&config, chosen)?;
                    queried = chosen;
                }
            }
        }
        if !lead || !synced {
            continue;
        }
        let pod_entries = pods.snapshot();
        let node_entries = nodes.snapshot();
        let snap = Snapshot {
            services: services.snapshot(),
            pods: pod_entries.iter().map(|p| p.info.clone()).collect(),
            nodes: node_entries
                .iter()
                .filter(|n| n.in_gpu_pool)
                .map(|n| n.info.clone())
                .collect(),
        };
        let report = match &ladder {
            None => {
                cycle
                    .run(&snap, &observer, &actuator, jiff::Timestamp::now(), None)
                    .instrument(info_span!("cycle"))
                    .await
            }
            Some(_) => {
                let rungs = RungSnapshot {
                    nodes: node_entries
                        .iter()
                        .filter_map(|n| n.shape.clone())
                        .collect(),
                    pods: pod_entries.iter().filter_map(|p| p.units.clone()).collect(),
                };
                cycle
                    .run_ladder(
                        &snap,
                        &rungs,
                        &observer,
                        &actuator,
                        jiff::Timestamp::now(),
                        None,
                    )
                    .instrument(info_span!("cycle"))
                    .await
            }
        };
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

/// The observer for `generation`'s queries in `layout` (its PromQL logged).
fn observer_for(
    config: &Config,
    (generation, layout): (Generation, LabelLayout),
) -> Result<PromObserver, Error> {
    let observer = PromObserver::new(
        &config.prometheus.url,
        config.prometheus.timeout,
        config.queries_for(generation, layout),
        config.policy.short_window,
        config.policy.long_window,
    )?
    .with_shape(config.prometheus.query_shape);
    info!(generation = generation.name(), labels = layout.name(), shape = ?observer.shape(),
          "Prometheus queries");
    for (name, promql) in observer.rendered() {
        info!(query = name, %promql, "PromQL");
    }
    Ok(observer)
}

/// A pod as the watch keeps it: what every cycle reads, and its use of the ladder's resources
/// (only for pods that use any).
struct PodEntry {
    info: Arc<PodInfo>,
    units: Option<Arc<PodUnits>>,
}

/// A node as the watch keeps it: its GPUs for the two placements (none when the GPU profile
/// cannot use it), its shape for the ladder's rungs (with a ladder only), and whether it is in
/// the GPU pool (`gpu.nodeSelector`).
struct NodeEntry {
    info: Arc<NodeInfo>,
    shape: Option<Arc<NodeShape>>,
    in_gpu_pool: bool,
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
