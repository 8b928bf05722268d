//! The benchmark's sharded backend (issue 17): the dataset's revisions split over two real
//! Prometheus servers (external label `shard`), a real Thanos Sidecar beside each and a real
//! Thanos Query over both, all on loopback; the autoscaler asks Query. Thanos is the binary
//! `hack/build.sh thanos` builds (`GAIA_BENCH_THANOS`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Dataset, Gen, PromServer};

/// Two shards, their Sidecars and Query; every process killed and the directory removed on drop.
pub struct Thanos {
    shards: Vec<PromServer>,
    procs: Vec<Child>,
    dir: PathBuf,
    /// Thanos Query's HTTP API (what the autoscaler asks).
    pub url: String,
    /// Every process's HTTP endpoint, whose `process_cpu_seconds_total` the backend's CPU sums.
    pub cpu_urls: Vec<String>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Thanos {
    /// Backfills the even revisions of `ds` into shard `a` and the odd ones into shard `b`,
    /// starts a Sidecar per shard and Query over both, and waits until Query sees both.
    pub async fn start(thanos: &Path, ds: &Dataset, gens: &[Gen], http: &reqwest::Client) -> Self {
        assert!(
            thanos.exists(),
            "{}: no Thanos binary (hack/build.sh thanos builds it)",
            thanos.display()
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("gaia-thanos-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let mut me = Thanos {
            shards: Vec::new(),
            procs: Vec::new(),
            dir,
            url: String::new(),
            cpu_urls: Vec::new(),
        };
        let mut endpoints = Vec::new();
        for (k, shard) in ["a", "b"].into_iter().enumerate() {
            let prom = PromServer::start_shard(ds, gens, (k, 2), &format!("{{shard: {shard}}}"));
            let (grpc, web) = (free_port(), free_port());
            let tsdb = me.dir.join(format!("sidecar-{shard}"));
            std::fs::create_dir_all(&tsdb).expect("sidecar dir");
            me.spawn(
                thanos,
                &format!("sidecar-{shard}"),
                &[
                    "sidecar".into(),
                    format!("--prometheus.url={}", prom.url),
                    format!("--tsdb.path={}", tsdb.display()),
                    format!("--grpc-address=127.0.0.1:{grpc}"),
                    format!("--http-address=127.0.0.1:{web}"),
                ],
            );
            me.cpu_urls.push(prom.url.clone());
            me.cpu_urls.push(format!("http://127.0.0.1:{web}"));
            endpoints.push(format!("--endpoint=127.0.0.1:{grpc}"));
            me.shards.push(prom);
        }
        let (grpc, web) = (free_port(), free_port());
        let mut args = vec![
            "query".to_string(),
            format!("--http-address=127.0.0.1:{web}"),
            format!("--grpc-address=127.0.0.1:{grpc}"),
            "--query.timeout=5m".into(),
        ];
        args.extend(endpoints);
        me.spawn(thanos, "query", &args);
        me.url = format!("http://127.0.0.1:{web}");
        me.cpu_urls.push(me.url.clone());
        me.wait_for_stores(http, 2, Duration::from_secs(120)).await;
        me
    }

    fn spawn(&mut self, thanos: &Path, name: &str, args: &[String]) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(thanos)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start thanos {name}: {e}"));
        self.procs.push(child);
    }

    /// Until Query lists `want` healthy Sidecars (its `/api/v1/stores`).
    async fn wait_for_stores(&mut self, http: &reqwest::Client, want: usize, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            for (i, c) in self.procs.iter_mut().enumerate() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("thanos process {i} exited ({status}):\n{}", self.logs());
                }
            }
            let healthy = match http.get(format!("{}/api/v1/stores", self.url)).send().await {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["data"]["sidecar"].as_array().cloned())
                    .map(|s| s.iter().filter(|e| e["lastError"].is_null()).count())
                    .unwrap_or(0),
                Err(_) => 0,
            };
            if healthy >= want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "thanos query did not see {want} sidecars in {limit:?}:\n{}",
            self.logs()
        );
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!("--- {}\n{tail}\n", e.path().display()));
            }
        }
        out
    }
}

impl Drop for Thanos {
    fn drop(&mut self) {
        for c in self.procs.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.shards.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
