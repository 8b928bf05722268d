//! The `gaia-webhook` process: wiring and signals.

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use crate::admission::Admission;
use crate::certs::ManagedTls;
use crate::config::{Args, Config};
use crate::image::ImageSource;
use crate::knative_features::KnativeFeatures;
use crate::metrics::Metrics;
use crate::namespaces::NamespaceLabels;
use crate::pool::ClassifierPool;
use crate::server::{serve, ServerOptions, TlsSource};
use crate::sources::SourceChain;
use crate::Error;

/// Runs the webhook until SIGTERM or Ctrl-C.
pub async fn run(flags: Args) -> Result<(), Error> {
    let mut config = match &flags.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(path) = &flags.ladder_from {
        config.ladder = crate::config::load_ladder(path)?;
        match &config.ladder {
            Some(l) => info!(
                rungs = %l.rungs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(" → "),
                "placement ladder read from the autoscaler's configuration"
            ),
            None => info!("no placement ladder in the autoscaler's configuration"),
        }
    }
    let config = Arc::new(config);
    let client = if flags.kube {
        crate::server::install_crypto_provider();
        Some(kube::Client::try_default().await?)
    } else {
        None
    };
    let namespaces = match &client {
        Some(c) => NamespaceLabels::watch(c.clone()),
        None => NamespaceLabels::none(),
    };
    let features = match &client {
        Some(c) => KnativeFeatures::poll(
            c.clone(),
            Duration::from_secs(flags.knative_features_seconds.max(1)),
        ),
        None => KnativeFeatures::none(),
    };
    let workers = flags.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
    });
    let pool = ClassifierPool::start(
        workers,
        workers * 64,
        config.cache_entries,
        config.source.clone(),
    )?;
    let kube_client = client.clone();
    let images = if config.image.enabled {
        Some(Arc::new(ImageSource::new(&config.image, client.clone())?))
    } else {
        None
    };
    let admission = Arc::new(Admission {
        config: Arc::clone(&config),
        sources: SourceChain::new(client, images.clone()),
        pool,
        namespaces,
        features,
        metrics: Arc::new(Metrics::new()),
    });
    // Reviews whose image was read after their deadline are finished here (docs/image-source.md).
    if let (Some(images), Some(client)) = (&images, &kube_client) {
        if config.image.finish_after_deadline {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            images.set_follow_ups(tx);
            tokio::spawn(crate::follow_up::run(
                Arc::clone(&admission),
                client.clone(),
                rx,
            ));
        }
    }
    let tls = match (&flags.tls_cert, &flags.tls_key, &flags.tls_secret) {
        (Some(cert), Some(key), None) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        (None, None, Some(secret)) => {
            let Some((namespace, name)) = secret.split_once('/') else {
                return Err(Error::Config(format!(
                    "--tls-secret {secret:?}: expected NAMESPACE/NAME"
                )));
            };
            let Some(client) = kube_client else {
                return Err(Error::Config(
                    "--tls-secret needs the Kubernetes API (--kube true)".into(),
                ));
            };
            TlsSource::Managed {
                client,
                tls: ManagedTls {
                    namespace: namespace.to_string(),
                    secret: name.to_string(),
                    service: flags.service.clone(),
                    webhook_configuration: flags.webhook_configuration.clone(),
                    validity: Duration::from_secs(flags.cert_validity_days.max(1) * 86_400),
                    check_every: Duration::from_secs(flags.cert_check_seconds.max(1)),
                },
            }
        }
        _ => {
            return Err(Error::Config(
                "give either --tls-cert and --tls-key, or --tls-secret NAMESPACE/NAME".into(),
            ))
        }
    };
    info!(workers, kube = flags.kube, default_mode = %config.default_mode, "gaia-webhook starting");
    serve(
        admission,
        ServerOptions {
            listen: flags.listen,
            tls,
            reload_every: Duration::from_secs(2),
            drain: Duration::from_secs(flags.drain_seconds),
            shutdown_delay: Duration::from_secs(flags.shutdown_delay_seconds),
            metrics_listen: flags.metrics_listen,
        },
        shutdown_signal(),
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
