//! The calibrated latency profiles (`tests/eval/profiles/*.json`, schema `gaia-calibration/1`,
//! described in docs/calibration.md), read into per-(workload, placement) latency models.
//!
//! How a latency is drawn, as docs/calibration.md asks:
//! - a measured request size or token count: one of its raw samples, at random;
//! - between two measured sizes: a sample of the nearer one, scaled along the curve through the
//!   two p50s (a power law for matmul sizes, a straight line for token counts);
//! - beyond the largest measured size: a sample of the largest one, scaled by the fit's ratio.
//!
//! A revision start draws one cold-start record (the main run or a repeat): its *ready* time
//! (`total_s - first_request_s`) and the extra the first request of a fresh process took over
//! the steady state (`first_request_s` minus the steady p50 of that same request: CUDA context
//! creation, the GPU's first-generation warm-up).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::rng::Rng;
use crate::Error;

/// The paper's four functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    Matmul,
    ImageClassification,
    TextGeneration,
    IdleWait,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Matmul,
        Workload::ImageClassification,
        Workload::TextGeneration,
        Workload::IdleWait,
    ];

    /// Key in the profile file, and directory name under examples/functions/.
    pub fn key(self) -> &'static str {
        match self {
            Workload::Matmul => "matmul",
            Workload::ImageClassification => "image_classification",
            Workload::TextGeneration => "text_generation",
            Workload::IdleWait => "idle_wait",
        }
    }
}

/// Where a pod runs, as calibrated: 2 or 16 CPU threads, the GPU, or a seventh of a
/// time-sliced GPU (from the profile's `gpu_shared` section, schema /2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hw {
    Cpu2,
    Cpu16,
    Gpu,
    GpuShared,
    /// A MIG 1g slice: modelled (`mig_1g_modelled`), never measured.
    Mig1g,
}

impl Hw {
    pub const ALL: [Hw; 3] = [Hw::Cpu2, Hw::Cpu16, Hw::Gpu];

    pub fn key(self) -> &'static str {
        match self {
            Hw::Cpu2 => "cpu2",
            Hw::Cpu16 => "cpu16",
            Hw::Gpu => "gpu",
            Hw::GpuShared => "gpu_shared",
            Hw::Mig1g => "mig_1g",
        }
    }
}

/// One request of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// Two n×n matrices created and multiplied.
    Matmul { size: u32 },
    /// One JPEG through ResNet-18.
    Image,
    /// Greedy generation of this many new tokens.
    Text { tokens: u32 },
    /// A sleep.
    Idle { seconds: f64 },
}

impl Request {
    pub fn workload(&self) -> Workload {
        match self {
            Request::Matmul { .. } => Workload::Matmul,
            Request::Image => Workload::ImageClassification,
            Request::Text { .. } => Workload::TextGeneration,
            Request::Idle { .. } => Workload::IdleWait,
        }
    }
}

/// What serving one request costs: handler time and CPU cores busy meanwhile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Service {
    pub latency_s: f64,
    pub cores: f64,
}

/// One cold start: time until the process can serve, and the first request's extra time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ColdStart {
    pub ready_s: f64,
    pub warmup_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Point {
    x: f64,
    p50: f64,
    cores_busy: Option<f64>,
    samples: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Law {
    /// p50 ∝ x^k between neighbours (matmul sizes).
    Power,
    /// p50 linear between neighbours (token counts).
    Linear,
}

#[derive(Debug, Clone, PartialEq)]
enum Model {
    /// One request kind (ResNet-18 on the JPEG; a sleep of `reference_s`).
    Flat {
        samples: Vec<f64>,
        p50: f64,
        reference_s: Option<f64>,
    },
    /// Latency depends on a size (matmul `n`) or a token count.
    Curve {
        points: Vec<Point>,
        /// (power, coefficient) pairs of the fit `t = Σ c·x^p`.
        fit: Vec<(f64, f64)>,
        law: Law,
    },
}

/// The calibrated behaviour of one workload on one placement.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementProfile {
    pub cold: Vec<ColdStart>,
    /// Cores busy while serving (steady state), where no per-size figure exists.
    pub cores_busy: f64,
    model: Model,
}

impl PlacementProfile {
    /// A profile with one constant latency (for tests and what-if runs).
    pub fn constant(latency_s: f64, cores_busy: f64, ready_s: f64) -> Self {
        PlacementProfile {
            cold: vec![ColdStart {
                ready_s,
                warmup_s: 0.0,
            }],
            cores_busy,
            model: Model::Flat {
                samples: vec![latency_s],
                p50: latency_s,
                reference_s: None,
            },
        }
    }

    /// The same profile with every latency `factor` times longer (samples, medians, fit); the
    /// cold starts and CPU use unchanged. A shared GPU is the whole GPU's profile slowed by the
    /// factor measured with 7 processes on one GPU.
    pub fn scaled(&self, factor: f64) -> PlacementProfile {
        let model = match &self.model {
            Model::Flat {
                samples,
                p50,
                reference_s,
            } => Model::Flat {
                samples: samples.iter().map(|x| x * factor).collect(),
                p50: p50 * factor,
                reference_s: *reference_s,
            },
            Model::Curve { points, fit, law } => Model::Curve {
                points: points
                    .iter()
                    .map(|p| Point {
                        x: p.x,
                        p50: p.p50 * factor,
                        cores_busy: p.cores_busy,
                        samples: p.samples.iter().map(|x| x * factor).collect(),
                    })
                    .collect(),
                fit: fit.iter().map(|(p, c)| (*p, c * factor)).collect(),
                law: *law,
            },
        };
        PlacementProfile {
            cold: self.cold.clone(),
            cores_busy: self.cores_busy,
            model,
        }
    }

    /// Draws the handler time and CPU use of one request.
    pub fn draw(&self, req: &Request, rng: &mut Rng) -> Service {
        match &self.model {
            Model::Flat {
                samples,
                reference_s,
                ..
            } => {
                let scale = match (req, reference_s) {
                    (Request::Idle { seconds }, Some(r)) if *r > 0.0 => seconds / r,
                    _ => 1.0,
                };
                Service {
                    latency_s: rng.pick(samples) * scale,
                    cores: self.cores_busy,
                }
            }
            Model::Curve { points, fit, law } => {
                let x = curve_x(req);
                let (p, target) = locate(points, fit, *law, x);
                let sample = rng.pick(&p.samples);
                let scale = if p.p50 > 0.0 { target / p.p50 } else { 1.0 };
                Service {
                    latency_s: sample * scale,
                    cores: cores_at(points, x).unwrap_or(self.cores_busy),
                }
            }
        }
    }

    /// The steady-state median of a request (no randomness).
    pub fn p50(&self, req: &Request) -> f64 {
        match &self.model {
            Model::Flat {
                p50, reference_s, ..
            } => match (req, reference_s) {
                (Request::Idle { seconds }, Some(r)) if *r > 0.0 => p50 * seconds / r,
                _ => *p50,
            },
            Model::Curve { points, fit, law } => locate(points, fit, *law, curve_x(req)).1,
        }
    }
}

fn curve_x(req: &Request) -> f64 {
    match req {
        Request::Matmul { size } => f64::from(*size),
        Request::Text { tokens } => f64::from(*tokens),
        Request::Image => 0.0,
        Request::Idle { seconds } => *seconds,
    }
}

fn fit_at(fit: &[(f64, f64)], x: f64) -> f64 {
    fit.iter().map(|(p, c)| c * x.powf(*p)).sum()
}

/// The measured point whose samples to draw, and the p50 to scale them to.
fn locate<'a>(points: &'a [Point], fit: &[(f64, f64)], law: Law, x: f64) -> (&'a Point, f64) {
    // `points` is non-empty and sorted (checked at load).
    let first = &points[0];
    let last = &points[points.len() - 1];
    if let Some(p) = points.iter().find(|p| (p.x - x).abs() < 1e-9) {
        return (p, p.p50);
    }
    if x > last.x {
        let ratio = fit_at(fit, x) / fit_at(fit, last.x).max(f64::MIN_POSITIVE);
        return (last, last.p50 * ratio);
    }
    if x < first.x {
        let ratio = fit_at(fit, x) / fit_at(fit, first.x).max(f64::MIN_POSITIVE);
        return (first, first.p50 * ratio);
    }
    let i = points
        .iter()
        .position(|p| p.x > x)
        .unwrap_or(points.len() - 1);
    let (a, b) = (&points[i - 1], &points[i]);
    let target = match law {
        Law::Power if a.x > 0.0 && a.p50 > 0.0 && b.p50 > 0.0 => {
            let k = (b.p50 / a.p50).ln() / (b.x / a.x).ln();
            a.p50 * (x / a.x).powf(k)
        }
        _ => a.p50 + (b.p50 - a.p50) * (x - a.x) / (b.x - a.x),
    };
    let nearer = if x - a.x <= b.x - x { a } else { b };
    (nearer, target)
}

fn cores_at(points: &[Point], x: f64) -> Option<f64> {
    let with: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.cores_busy.map(|c| (p.x, c)))
        .collect();
    let (first, last) = (with.first()?, with.last()?);
    if x <= first.0 {
        return Some(first.1);
    }
    if x >= last.0 {
        return Some(last.1);
    }
    let i = with.iter().position(|(px, _)| *px > x)?;
    let ((ax, ac), (bx, bc)) = (with[i - 1], with[i]);
    Some(ac + (bc - ac) * (x - ax) / (bx - ax))
}

/// The profile schemas this reader takes: /2 adds the optional `gpu_shared` section.
pub const SCHEMAS: [&str; 2] = ["gaia-calibration/1", "gaia-calibration/2"];

/// Every (workload, placement) the file holds, plus the machine it was measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub machine: String,
    placements: BTreeMap<(Workload, Hw), PlacementProfile>,
    /// Per workload, the slowdown on a GPU time-sliced 7 ways (`gpu_shared`), where measured.
    pub shared_slowdown: BTreeMap<Workload, f64>,
    /// Per workload, the modelled slowdown on a MIG 1g slice.
    pub mig_slowdown: BTreeMap<Workload, f64>,
    /// Where the shared-GPU figures were measured.
    pub shared_machine: Option<String>,
}

impl Profile {
    pub fn load(path: &Path) -> Result<Profile, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.to_owned(),
            source,
        })?;
        Profile::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Profile, Error> {
        let schema = v.get("schema").and_then(Value::as_str).unwrap_or("");
        if !SCHEMAS.contains(&schema) {
            return Err(Error::profile(
                "schema",
                format!("{schema:?}, expected one of {SCHEMAS:?}"),
            ));
        }
        let machine = describe_machine(v);
        let mut placements = BTreeMap::new();
        for w in Workload::ALL {
            for hw in Hw::ALL {
                let at = format!("workloads.{}.placements.{}", w.key(), hw.key());
                let p = v
                    .pointer(&format!("/workloads/{}/placements/{}", w.key(), hw.key()))
                    .ok_or_else(|| Error::profile(&at, "missing"))?;
                placements.insert((w, hw), parse_placement(w, p, &at)?);
            }
        }
        let shared_slowdown = slowdowns(v, "slowdown_7_processes")?;
        let mig_slowdown = slowdowns(v, "mig_1g_modelled")?;
        for (hw, factors) in [
            (Hw::GpuShared, &shared_slowdown),
            (Hw::Mig1g, &mig_slowdown),
        ] {
            for (w, factor) in factors {
                if let Some(gpu) = placements.get(&(*w, Hw::Gpu)) {
                    let slowed = gpu.scaled(*factor);
                    placements.insert((*w, hw), slowed);
                }
            }
        }
        let shared_machine = v
            .pointer("/gpu_shared/measured_on/gpu/name")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(Profile {
            machine,
            placements,
            shared_slowdown,
            mig_slowdown,
            shared_machine,
        })
    }

    /// A profile made of given parts (tests, what-if runs).
    pub fn from_parts(machine: &str, parts: Vec<((Workload, Hw), PlacementProfile)>) -> Profile {
        Profile {
            machine: machine.into(),
            placements: parts.into_iter().collect(),
            shared_slowdown: BTreeMap::new(),
            mig_slowdown: BTreeMap::new(),
            shared_machine: None,
        }
    }

    pub fn get(&self, w: Workload, hw: Hw) -> Result<&PlacementProfile, Error> {
        self.placements.get(&(w, hw)).ok_or_else(|| {
            Error::profile(
                format!("workloads.{}.placements.{}", w.key(), hw.key()),
                "missing",
            )
        })
    }
}

/// `gpu_shared.workloads.<w>.<key>.factor` per workload; the idle wait, which uses no GPU,
/// is not slowed (1) wherever any factor exists.
fn slowdowns(v: &Value, key: &str) -> Result<BTreeMap<Workload, f64>, Error> {
    let mut out = BTreeMap::new();
    for w in Workload::ALL {
        let at = format!("gpu_shared.workloads.{}.{key}.factor", w.key());
        let Some(f) = v.pointer(&format!("/gpu_shared/workloads/{}/{key}/factor", w.key())) else {
            continue;
        };
        let factor = f
            .as_f64()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| Error::profile(&at, "not a positive number"))?;
        out.insert(w, factor);
    }
    if !out.is_empty() {
        out.entry(Workload::IdleWait).or_insert(1.0);
    }
    Ok(out)
}

fn describe_machine(v: &Value) -> String {
    let gpu = v
        .pointer("/machine/gpu/name")
        .and_then(Value::as_str)
        .unwrap_or("unknown GPU");
    let cpus = v
        .pointer("/machine/logical_cpus")
        .and_then(Value::as_u64)
        .map(|n| format!("{n} vCPUs"))
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{gpu}, {cpus}")
}

fn num(v: &Value, key: &str, at: &str) -> Result<f64, Error> {
    v.get(key)
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite())
        .ok_or_else(|| Error::profile(format!("{at}.{key}"), "missing or not a number"))
}

fn samples(v: &Value, at: &str) -> Result<Vec<f64>, Error> {
    let list: Vec<f64> = v
        .get("samples")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::profile(format!("{at}.samples"), "missing"))?
        .iter()
        .filter_map(Value::as_f64)
        .filter(|x| x.is_finite() && *x >= 0.0)
        .collect();
    if list.is_empty() {
        return Err(Error::profile(
            format!("{at}.samples"),
            "no usable latency sample",
        ));
    }
    Ok(list)
}

fn parse_placement(w: Workload, p: &Value, at: &str) -> Result<PlacementProfile, Error> {
    let cores_busy = p
        .pointer("/cpu_utilisation/cores_busy")
        .and_then(Value::as_f64)
        .ok_or_else(|| Error::profile(format!("{at}.cpu_utilisation.cores_busy"), "missing"))?;
    let model = match w {
        Workload::ImageClassification | Workload::IdleWait => Model::Flat {
            samples: samples(p, at)?,
            p50: num(p, "p50", at)?,
            reference_s: match w {
                Workload::IdleWait => Some(
                    p.pointer("/cold_start/first_request/seconds")
                        .and_then(Value::as_f64)
                        .ok_or_else(|| {
                            Error::profile(
                                format!("{at}.cold_start.first_request.seconds"),
                                "missing: the idle profile must say how long its sleeps were",
                            )
                        })?,
                ),
                _ => None,
            },
        },
        Workload::Matmul | Workload::TextGeneration => {
            let (key, law) = match w {
                Workload::Matmul => ("size", Law::Power),
                _ => ("new_tokens", Law::Linear),
            };
            let raw = p
                .get("points")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::profile(format!("{at}.points"), "missing"))?;
            let mut points = Vec::with_capacity(raw.len());
            for (i, pt) in raw.iter().enumerate() {
                let pat = format!("{at}.points[{i}]");
                points.push(Point {
                    x: num(pt, key, &pat)?,
                    p50: num(pt, "p50", &pat)?,
                    cores_busy: pt.get("cores_busy").and_then(Value::as_f64),
                    samples: samples(pt, &pat)?,
                });
            }
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            points.dedup_by(|b, a| (a.x - b.x).abs() < 1e-9);
            if points.is_empty() {
                return Err(Error::profile(format!("{at}.points"), "empty"));
            }
            let powers = p
                .pointer("/fit/powers")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::profile(format!("{at}.fit.powers"), "missing"))?;
            let coefs = p
                .pointer("/fit/coefficients")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::profile(format!("{at}.fit.coefficients"), "missing"))?;
            if powers.len() != coefs.len() || powers.is_empty() {
                return Err(Error::profile(
                    format!("{at}.fit"),
                    "powers and coefficients differ in length",
                ));
            }
            let fit = powers
                .iter()
                .zip(coefs)
                .map(|(p, c)| match (p.as_f64(), c.as_f64()) {
                    (Some(p), Some(c)) => Ok((p, c)),
                    _ => Err(Error::profile(format!("{at}.fit"), "not numbers")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Model::Curve { points, fit, law }
        }
    };
    let mut profile = PlacementProfile {
        cold: vec![],
        cores_busy,
        model,
    };
    let mut records = vec![p
        .get("cold_start")
        .ok_or_else(|| Error::profile(format!("{at}.cold_start"), "missing"))?];
    if let Some(more) = p.get("cold_start_repeats").and_then(Value::as_array) {
        records.extend(more);
    }
    for (i, r) in records.into_iter().enumerate() {
        let rat = format!("{at}.cold_start[{i}]");
        let total = num(r, "total_s", &rat)?;
        let first = num(r, "first_request_s", &rat)?;
        let first_req = first_request(w, r.get("first_request"), &rat)?;
        let steady = profile.p50(&first_req);
        profile.cold.push(ColdStart {
            ready_s: (total - first).max(0.0),
            warmup_s: (first - steady).max(0.0),
        });
    }
    Ok(profile)
}

fn first_request(w: Workload, v: Option<&Value>, at: &str) -> Result<Request, Error> {
    let v = v.ok_or_else(|| Error::profile(format!("{at}.first_request"), "missing"))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_f64)
            .ok_or_else(|| Error::profile(format!("{at}.first_request.{k}"), "missing"))
    };
    Ok(match w {
        Workload::Matmul => Request::Matmul {
            size: field("size")? as u32,
        },
        Workload::TextGeneration => Request::Text {
            tokens: field("new_tokens")? as u32,
        },
        Workload::ImageClassification => Request::Image,
        Workload::IdleWait => Request::Idle {
            seconds: field("seconds")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100() -> Profile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/h100.json");
        Profile::load(&path).expect("the committed profile loads")
    }

    /// The sweep's p50 total per placement equals the calibration's own interpolation.
    #[test]
    fn matmul_sweep_matches_the_calibration_interpolation() {
        let p = h100();
        for (hw, expected) in [(Hw::Gpu, 8.28), (Hw::Cpu16, 468.4), (Hw::Cpu2, 1963.0)] {
            let prof = p.get(Workload::Matmul, hw).unwrap();
            let total: f64 = (0..=100)
                .map(|k| prof.p50(&Request::Matmul { size: k * 200 }))
                .sum();
            assert!(
                (total / expected - 1.0).abs() < 0.01,
                "{hw:?}: {total} vs {expected}"
            );
        }
    }

    #[test]
    fn cold_starts_and_warmups_come_from_the_records() {
        let p = h100();
        let gpu = p.get(Workload::TextGeneration, Hw::Gpu).unwrap();
        assert_eq!(gpu.cold.len(), 2);
        // 54.38 - 26.02 and 39.82 - 15.77; warm-up over a steady 5.81 s
        assert!((gpu.cold[0].ready_s - 28.36).abs() < 0.01);
        assert!((gpu.cold[1].ready_s - 24.05).abs() < 0.01);
        assert!((gpu.cold[0].warmup_s - (26.02 - 5.8076)).abs() < 0.01);
        let idle = p.get(Workload::IdleWait, Hw::Cpu16).unwrap();
        assert!(idle
            .cold
            .iter()
            .all(|c| c.warmup_s < 0.01 && c.ready_s < 0.2));
    }

    #[test]
    fn draws_are_measured_samples_scaled_between_sizes() {
        let p = h100();
        let cpu = p.get(Workload::Matmul, Hw::Cpu16).unwrap();
        let mut rng = Rng::new(1);
        // size 20000 is measured on cpu16: its two samples
        for _ in 0..20 {
            let s = cpu.draw(&Request::Matmul { size: 20000 }, &mut rng);
            assert!(s.latency_s == 14.979 || s.latency_s == 14.489, "{s:?}");
            assert!((s.cores - 10.6).abs() < 1e-9);
        }
        // between 12000 and 14000: between their p50s
        let mid = cpu.p50(&Request::Matmul { size: 13000 });
        let (a, b) = (
            cpu.p50(&Request::Matmul { size: 12000 }),
            cpu.p50(&Request::Matmul { size: 14000 }),
        );
        assert!(a < mid && mid < b, "{a} {mid} {b}");
        // beyond the largest measured cpu2 size: from the fit, larger than at 16000
        let cpu2 = p.get(Workload::Matmul, Hw::Cpu2).unwrap();
        assert!(
            cpu2.p50(&Request::Matmul { size: 20000 }) > cpu2.p50(&Request::Matmul { size: 16000 })
        );
        let idle = p.get(Workload::IdleWait, Hw::Gpu).unwrap();
        assert!((idle.p50(&Request::Idle { seconds: 4.0 }) - 4.0004).abs() < 1e-6);
    }

    #[test]
    fn the_shared_gpu_is_the_gpu_slowed_by_the_measured_factor() {
        let p = h100();
        let f = p.shared_slowdown[&Workload::ImageClassification];
        assert!((1.0..1.5).contains(&f), "{f}");
        assert!(p.shared_slowdown[&Workload::Matmul] > 5.0);
        assert_eq!(p.shared_slowdown[&Workload::IdleWait], 1.0);
        let gpu = p.get(Workload::ImageClassification, Hw::Gpu).unwrap();
        let shared = p.get(Workload::ImageClassification, Hw::GpuShared).unwrap();
        assert!((shared.p50(&Request::Image) / gpu.p50(&Request::Image) - f).abs() < 1e-9);
        assert_eq!(shared.cold, gpu.cold);
        assert_eq!(p.shared_machine.as_deref(), Some("NVIDIA H200"));
        // the MIG slice: modelled from the same run, a little slower than the time-slice
        let mig = p.mig_slowdown[&Workload::Matmul];
        assert!(mig > p.shared_slowdown[&Workload::Matmul], "{mig}");
        assert!(p.get(Workload::TextGeneration, Hw::Mig1g).is_ok());
        // a /1 file (no gpu_shared section) still reads, without a shared placement
        let mut v: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/h100.json"),
            )
            .unwrap(),
        )
        .unwrap();
        v["schema"] = "gaia-calibration/1".into();
        v.as_object_mut().unwrap().remove("gpu_shared");
        let old = Profile::from_value(&v).unwrap();
        assert!(old.get(Workload::Matmul, Hw::GpuShared).is_err());
        assert!(old.get(Workload::Matmul, Hw::Gpu).is_ok());
    }

    #[test]
    fn a_wrong_schema_is_refused() {
        let err = Profile::from_value(&serde_json::json!({"schema": "x"})).unwrap_err();
        assert!(err.to_string().contains("schema"), "{err}");
        let err =
            Profile::from_value(&serde_json::json!({"schema": "gaia-calibration/1"})).unwrap_err();
        assert!(err.to_string().contains("workloads.matmul"), "{err}");
    }
}
