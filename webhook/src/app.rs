//! The `gaia-webhook` process: flags, logging, wiring, signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tracing::{error, info};

use crate::admission::Admission;
use crate::certs::ManagedTls;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::namespaces::NamespaceLabels;
use crate::pool::ClassifierPool;
use crate::server::{serve, ServerOptions, TlsSource};
use crate::sources::SourceChain;
use crate::Error;

/// Gaia's mutating admission webhook: classifies opted-in Knative Services and injects their
/// execution mode and node placement.
#[derive(Debug, Parser)]
#[command(name = "gaia-webhook", version)]
pub struct Flags {
    /// Address of the HTTPS listener.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM certificate (chain) of the HTTPS listener; re-read when the file changes.
    #[arg(long, requires = "tls_key", conflicts_with = "tls_secret")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the HTTPS listener; re-read when the file changes.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Manage the certificate itself in this Secret (NAMESPACE/NAME), with a CA of its own, and
    /// keep the caBundle of --webhook-configuration in step. Replaces --tls-cert/--tls-key.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub tls_secret: Option<String>,
    /// The webhook's Service name (the certificate's DNS names), with --tls-secret.
    #[arg(long, default_value = "gaia-webhook")]
    pub service: String,
    /// The MutatingWebhookConfiguration whose caBundle is kept in step, with --tls-secret.
    #[arg(long, default_value = "gaia-webhook")]
    pub webhook_configuration: String,
    /// Validity of a self-managed certificate, in days; renewed after two thirds of it.
    #[arg(long, default_value_t = 365)]
    pub cert_validity_days: u64,
    /// How often the self-managed certificate and caBundle are checked, in seconds.
    #[arg(long, default_value_t = 300)]
    pub cert_check_seconds: u64,
    /// Configuration file (YAML); built-in defaults when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Plain-HTTP listener for /metrics, /healthz and /readyz (for probes and scrapers).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Use the Kubernetes API (in-cluster or KUBECONFIG) for ConfigMap sources and namespace
    /// labels. Without it only the inline source annotation and Service annotations count.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub kube: bool,
    /// Classifier threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seconds given to in-flight reviews on shutdown.
    #[arg(long, default_value_t = 10)]
    pub drain_seconds: u64,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

pub fn main() -> ExitCode {
    let flags = Flags::parse();
    init_logging(&flags.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "gaia-webhook stopped");
            eprintln!("gaia-webhook: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(flags: Flags) -> Result<(), Error> {
    let config = match &flags.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
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
    let workers = flags.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
    });
    let pool = ClassifierPool::start(
        workers,
        workers * 64,
        config.cache_entries,
        config.source.limits(),
    )?;
    let kube_client = client.clone();
    let admission = Arc::new(Admission {
        config: Arc::clone(&config),
        sources: SourceChain::new(client),
        pool,
        namespaces,
        metrics: Arc::new(Metrics::new()),
    });
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
