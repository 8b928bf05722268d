//! The HTTPS server: routes, TLS with certificate rotation, graceful shutdown.
//!
//! - `POST /mutate`: AdmissionReview in, AdmissionReview out (always HTTP 200 with a review);
//! - `GET /healthz`: the process is serving;
//! - `GET /readyz`: ready to answer correctly (namespace labels loaded), and not shutting down;
//! - `GET /metrics`: Prometheus text.
//!
//! The certificate and key are re-read when their files change, so a rotated Secret (mounted
//! as files) takes effect without a restart. On shutdown the server first keeps answering, not
//! ready, for `shutdown_delay` (Kubernetes removes the pod from the Service's endpoints), then
//! stops accepting and finishes the reviews in flight.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use tracing::{info, warn};

use crate::admission::review::ReviewOut;
use crate::admission::{Admission, Outcome};
use crate::certs::{ensure_certificate, sync_ca_bundle, ManagedTls, ServingPair};
use crate::Error;

/// Where the serving certificate comes from.
#[derive(Clone)]
pub enum TlsSource {
    /// PEM files (a mounted Secret, cert-manager, ...); re-read when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// A Secret the webhook manages itself, with the caBundle kept in step.
    Managed {
        client: kube::Client,
        tls: ManagedTls,
    },
}

/// Where and how to serve.
#[derive(Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub tls: TlsSource,
    /// How often certificate files are checked for changes.
    pub reload_every: Duration,
    /// How long in-flight requests get to finish on shutdown.
    pub drain: Duration,
    /// How long the server keeps answering after the shutdown signal, with `/readyz` failing,
    /// before it stops accepting: the time Kubernetes needs to take a terminating pod out of the
    /// Service's endpoints (EndpointSlice, then kube-proxy). Without it the apiserver's next
    /// review can reach a closed port and, with `failurePolicy: Ignore`, a Service is admitted
    /// unclassified.
    pub shutdown_delay: Duration,
    /// Optional plain-HTTP listener for `/metrics`, `/healthz` and `/readyz` only.
    pub metrics_listen: Option<SocketAddr>,
}

/// The routes, shared by the HTTPS server and tests.
pub fn router(admission: Arc<Admission>) -> Router {
    let limit = admission.config.max_body_bytes;
    Router::new()
        .route("/mutate", post(mutate))
        .layer(DefaultBodyLimit::max(limit))
        .merge(plain_router())
        .with_state(admission)
}

fn plain_router() -> Router<Arc<Admission>> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Set once the shutdown signal arrived: `/readyz` fails from then on.
#[derive(Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

async fn mutate(
    State(admission): State<Arc<Admission>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            // Still a well-formed review, so the apiserver logs a reason, not a transport error.
            let message = format!("cannot read the request body: {}", rejection.body_text());
            warn!(%message, "rejected body");
            admission
                .metrics
                .observe_review(Outcome::Invalid, Duration::ZERO);
            return Json(ReviewOut::invalid(message)).into_response();
        }
    };
    let (review, _outcome) = admission.review(&body).await;
    Json(review).into_response()
}

async fn readyz(
    State(admission): State<Arc<Admission>>,
    draining: Option<Extension<Draining>>,
) -> Response {
    if draining.is_some_and(|Extension(d)| d.is_draining()) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else if admission.namespaces.is_ready() {
        "ok".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "namespace labels not loaded yet",
        )
            .into_response()
    }
}

async fn metrics(State(admission): State<Arc<Admission>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admission.metrics.render(),
    )
        .into_response()
}

/// Installs ring as rustls' crypto provider (once per process).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    admission: Arc<Admission>,
    options: ServerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    install_crypto_provider();
    let (tls, reloader) = match options.tls.clone() {
        TlsSource::Files { cert, key } => {
            let tls = RustlsConfig::from_pem_file(&cert, &key)
                .await
                .map_err(|e| {
                    Error::Tls(format!(
                        "cannot load {} / {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
            let task = tokio::spawn(watch_certificates(
                tls.clone(),
                cert,
                key,
                options.reload_every,
            ));
            (tls, task)
        }
        TlsSource::Managed {
            client,
            tls: managed,
        } => {
            let pair = ensure_certificate(&client, &managed).await?;
            sync_ca_bundle(&client, &managed, &pair.ca_bundle_pem).await?;
            let tls = rustls_config(&pair).await?;
            let task = tokio::spawn(keep_certificate(tls.clone(), client, managed, pair));
            (tls, task)
        }
    };
    let handle = Handle::new();
    let draining = Draining::default();
    let mut plain = None;
    if let Some(addr) = options.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Io {
                path: format!("metrics listener {addr}"),
                source,
            })?;
        info!(%addr, "serving /metrics over plain HTTP");
        let app = plain_router()
            .with_state(Arc::clone(&admission))
            .layer(Extension(draining.clone()));
        plain = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    let (drain, delay) = (options.drain, options.shutdown_delay);
    let stopper = handle.clone();
    let signalled = draining.clone();
    tokio::spawn(async move {
        shutdown.await;
        signalled.start();
        if !delay.is_zero() {
            info!(
                ?delay,
                "shutting down: not ready any more, still answering until the endpoint is gone"
            );
            tokio::time::sleep(delay).await;
        }
        info!(?drain, "shutting down: draining in-flight reviews");
        stopper.graceful_shutdown(Some(drain));
    });

    info!(addr = %options.listen, "serving admission reviews over HTTPS");
    // TCP_NODELAY: an answer written in more than one segment would otherwise wait for the
    // client's delayed ACK (40 ms on Linux) behind Nagle's algorithm, on every review.
    let acceptor = RustlsAcceptor::new(tls).acceptor(NoDelayAcceptor::new());
    let result = axum_server::bind(options.listen)
        .acceptor(acceptor)
        .handle(handle)
        .serve(
            router(admission)
                .layer(Extension(draining))
                .into_make_service(),
        )
        .await;
    reloader.abort();
    if let Some(p) = plain {
        p.abort();
    }
    result.map_err(|source| Error::Io {
        path: format!("listener {}", options.listen),
        source,
    })
}

async fn rustls_config(pair: &ServingPair) -> Result<RustlsConfig, Error> {
    RustlsConfig::from_pem(
        pair.cert_pem.clone().into_bytes(),
        pair.key_pem.clone().into_bytes(),
    )
    .await
    .map_err(|e| Error::Tls(format!("the managed certificate does not load: {e}")))
}

/// Re-checks the managed Secret and the caBundle every `check_every`: renews the certificate
/// when it is due (or takes another replica's renewal), reloads it, and repairs the caBundle.
async fn keep_certificate(
    tls: RustlsConfig,
    client: kube::Client,
    managed: ManagedTls,
    mut serving: ServingPair,
) {
    let mut ticker = tokio::time::interval(managed.check_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    loop {
        ticker.tick().await;
        let pair = match ensure_certificate(&client, &managed).await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "checking the webhook certificate failed; serving the current one");
                continue;
            }
        };
        // the caBundle first, so the apiserver trusts the new certificate before it is served
        if let Err(e) = sync_ca_bundle(&client, &managed, &pair.ca_bundle_pem).await {
            warn!(error = %e, "updating the caBundle failed; will retry");
            continue;
        }
        if pair != serving {
            match tls
                .reload_from_pem(
                    pair.cert_pem.clone().into_bytes(),
                    pair.key_pem.clone().into_bytes(),
                )
                .await
            {
                Ok(()) => {
                    info!("serving the renewed webhook certificate");
                    serving = pair;
                }
                Err(e) => {
                    warn!(error = %e, "the renewed certificate does not load; keeping the old one")
                }
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Re-reads the certificate and key whenever either file changes. A broken pair (half-written
/// during rotation, say) is logged and the old pair stays in use until a good one appears.
async fn watch_certificates(tls: RustlsConfig, cert: PathBuf, key: PathBuf, every: Duration) {
    let mut seen = (modified(&cert), modified(&key));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = (modified(&cert), modified(&key));
        if now == seen {
            continue;
        }
        match tls.reload_from_pem_file(&cert, &key).await {
            Ok(()) => {
                info!(cert = %cert.display(), "TLS certificate reloaded");
                seen = now;
            }
            Err(e) => {
                warn!(error = %e, "TLS certificate changed but cannot be loaded; keeping the old one")
            }
        }
    }
}
