//! /metrics, /healthz and /readyz.
//!
//! - `/healthz`: the main loop ticked recently (a wedged loop fails liveness).
//! - `/readyz`: the Service, pod and node watches have completed their first list.
//! - `/metrics`: [`crate::telemetry::Metrics`] in the Prometheus text format.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::telemetry::Metrics;
use crate::Error;

/// Liveness and readiness, updated by the main loop.
#[derive(Debug)]
pub struct Health {
    start: Instant,
    last_tick_ms: AtomicU64,
    max_silence: Duration,
    ready: AtomicBool,
}

impl Health {
    /// `interval`: the cycle interval; the loop is unhealthy after three silent intervals
    /// (and at least a minute: a long cycle is not a dead one).
    pub fn new(interval: Duration) -> Self {
        Health {
            start: Instant::now(),
            last_tick_ms: AtomicU64::new(0),
            max_silence: (interval * 3).max(Duration::from_secs(60)),
            ready: AtomicBool::new(false),
        }
    }

    pub fn tick(&self) {
        self.last_tick_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_live(&self) -> bool {
        let now = self.start.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_tick_ms.load(Ordering::Relaxed))
            <= self.max_silence.as_millis() as u64
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.is_live() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "decision loop stalled")
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet")
    }
}

/// Serves until `shutdown` changes.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(Error::Server)?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await
        .map_err(Error::Server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_answer_on_loopback() {
        crate::observe::prometheus::install_crypto_provider();
        let health = Arc::new(Health::new(Duration::from_secs(10)));
        let state = AppState {
            metrics: Arc::new(Metrics::new()),
            health: health.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = watch::channel(false);
        let server = tokio::spawn(async move {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                })
                .await
        });
        let get = |path: &'static str| async move {
            let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        assert_eq!(get("/readyz").await.0, 503);
        health.set_ready(true);
        assert_eq!(get("/readyz").await.0, 200);
        health.tick();
        assert_eq!(get("/healthz").await.0, 200);
        let (code, body) = get("/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("gaia_autoscaler_cycles_total"), "{body}");
        tx.send(true).unwrap();
        server.await.unwrap().unwrap();
    }
}
