//! Device use and its guards: which calls place work on a GPU, and whether a CPU path exists.
//!
//! A use is *guarded* when it sits under a device guard (an `if`/ternary whose test checks GPU
//! availability or a GPU switch, a `try` with a handler, code after `if not available: return`),
//! or when the device it names was chosen that way (`device = "cuda" if
//! torch.cuda.is_available() else "cpu"`, then `.to(device)`), or for `device_map="auto"`.

use ruff_python_ast::{self as ast, Expr};

use super::imports::{qualname, ImportTable};
use super::rules::{self, DeviceString};
use super::source::call_excerpt;
use super::values::{Dev, Val};
use super::walk::{CallSite, Hit};
use gaia_contract::FindingKind;

const MAX_TEST_DEPTH: u32 = 64;

/// Is this condition a device guard? Returns what makes it one: an availability check
/// (`torch.cuda.is_available()`), a name that is a GPU switch (`use_gpu`, `args.cuda`,
/// `device.type`), or a comparison with a device string (`device == "cuda"`).
pub fn guard_test(test: &Expr, imports: &ImportTable) -> Option<String> {
    guard_in(test, imports, 0)
}

fn is_guard_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    rules::GUARD_NAME_PARTS.iter().any(|p| lower.contains(p))
}

fn is_device_constant(e: &Expr) -> bool {
    match e {
        Expr::StringLiteral(s) => {
            let s = s.value.to_str();
            let lower = s.to_ascii_lowercase();
            rules::device_string(s) == DeviceString::Gpu || lower == "cpu" || lower == "mps"
        }
        _ => false,
    }
}

/// Is this call an availability check (`torch.cuda.is_available()`,
/// `tf.config.list_physical_devices("GPU")`)? Returns its dotted name.
pub fn availability_check(call: &ast::ExprCall, imports: &ImportTable) -> Option<String> {
    let q = qualname(&call.func, imports)?;
    let root = q.split('.').next().unwrap_or(&q);
    let last = q.rsplit('.').next().unwrap_or(&q);
    let gpu_aware = rules::lookup(rules::GPU_CAPABLE_FRAMEWORKS, root).is_some()
        || rules::lookup(rules::GPU_ONLY_LIBRARIES, &q).is_some();
    (gpu_aware && rules::AVAILABILITY_CHECKS.contains(&last)).then(|| format!("{q}()"))
}

fn literal_str(e: Option<&Expr>) -> Option<&str> {
    match e? {
        Expr::StringLiteral(s) => Some(s.value.to_str()),
        _ => None,
    }
}

/// Tests that a GPU is there outside a framework's API: `importlib.util.find_spec("cupy")` (a
/// GPU library installed), `shutil.which("nvidia-smi")`, and running `nvidia-smi`.
fn installed_check(call: &ast::ExprCall, imports: &ImportTable) -> Option<String> {
    let q = qualname(&call.func, imports)?;
    let first = call.arguments.args.first();
    match q.as_str() {
        "importlib.util.find_spec" => {
            let lib = literal_str(first)?;
            let gpu = rules::lookup(rules::GPU_ONLY_LIBRARIES, lib).is_some()
                || rules::lookup(rules::GPU_CAPABLE_FRAMEWORKS, lib).is_some();
            gpu.then(|| format!("find_spec({lib:?})"))
        }
        "shutil.which" => (literal_str(first)? == "nvidia-smi").then(|| "which nvidia-smi".into()),
        q if rules::PROCESS_CALLS.contains(&q) => {
            let program = match first? {
                Expr::List(l) => literal_str(l.elts.first()),
                Expr::Tuple(t) => literal_str(t.elts.first()),
                e => literal_str(Some(e)).and_then(|s| s.split_whitespace().next()),
            }?;
            (program == "nvidia-smi").then(|| format!("{q}: nvidia-smi"))
        }
        _ => None,
    }
}

/// Is this expression the result of an availability check (`torch.cuda.is_available() and
/// torch.cuda.device_count() > 0`, `not find_spec("cupy") is None`)? Syntactic, for `return`s.
pub fn is_check_expr(e: &Expr, imports: &ImportTable, depth: u32) -> bool {
    if depth > MAX_TEST_DEPTH {
        return false;
    }
    let d = depth + 1;
    match e {
        Expr::Call(c) => {
            availability_check(c, imports).is_some() || installed_check(c, imports).is_some()
        }
        Expr::BoolOp(b) => b.values.iter().any(|x| is_check_expr(x, imports, d)),
        Expr::UnaryOp(u) => is_check_expr(&u.operand, imports, d),
        Expr::Compare(c) => std::iter::once(c.left.as_ref())
            .chain(c.comparators.iter())
            .any(|x| is_check_expr(x, imports, d)),
        _ => false,
    }
}

fn guard_in(e: &Expr, imports: &ImportTable, depth: u32) -> Option<String> {
    if depth > MAX_TEST_DEPTH {
        return None;
    }
    let d = depth + 1;
    match e {
        Expr::Call(c) => availability_check(c, imports)
            .or_else(|| installed_check(c, imports))
            .or_else(|| guard_in(&c.func, imports, d))
            .or_else(|| {
                c.arguments
                    .args
                    .iter()
                    .find_map(|a| guard_in(a, imports, d))
            }),
        Expr::Name(n) => is_guard_name(n.id.as_str()).then(|| n.id.to_string()),
        Expr::Attribute(a) => {
            if is_guard_name(a.attr.as_str()) {
                Some(a.attr.to_string())
            } else {
                guard_in(&a.value, imports, d)
            }
        }
        Expr::Compare(c) => {
            if std::iter::once(c.left.as_ref())
                .chain(c.comparators.iter())
                .any(is_device_constant)
            {
                return Some("a device comparison".to_owned());
            }
            std::iter::once(c.left.as_ref())
                .chain(c.comparators.iter())
                .find_map(|x| guard_in(x, imports, d))
        }
        Expr::BoolOp(b) => b.values.iter().find_map(|x| guard_in(x, imports, d)),
        Expr::UnaryOp(u) => guard_in(&u.operand, imports, d),
        Expr::Named(n) => guard_in(&n.value, imports, d),
        _ => None,
    }
}

/// A device argument's meaning: `Some(dev)` when it names a device.
fn device_of(v: &Val) -> Option<Dev> {
    match v {
        Val::Dict(entries) => {
            // device_map={"": 0} or {"model": "cuda:0"}
            let devs: Vec<Dev> = entries.iter().filter_map(|(_, v)| v.device()).collect();
            if devs.contains(&Dev::Gpu) {
                Some(Dev::Gpu)
            } else {
                devs.first().copied()
            }
        }
        v => v.device(),
    }
}

fn device_hit(dev: Option<Dev>, detail: String) -> Option<Hit> {
    let guarded = match dev? {
        Dev::Gpu => false,
        Dev::Guarded | Dev::Auto => true,
        Dev::Cpu => return None,
    };
    Some(Hit::new(FindingKind::DeviceUse, detail).guarded(guarded))
}

/// Device-related findings of one call.
pub fn check_call(site: &CallSite<'_, '_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let call = site.call;
    let text = || call_excerpt(site.src, call);
    if let Some(q) = site.qual.as_deref() {
        let last = q.rsplit('.').next().unwrap_or(q);
        if let Some(rest) = q.strip_prefix("torch.cuda.") {
            if rules::AVAILABILITY_CHECKS.contains(&last) {
                hits.push(Hit::new(FindingKind::AvailabilityCheck, format!("{q}()")));
            } else if !(rules::SAFE_CUDA_FUNCTIONS.contains(&last) || rest.starts_with("amp.")) {
                hits.push(Hit::new(FindingKind::CudaCall, text()));
            }
            return hits;
        }
        if let Some(check) = availability_check(call, site.imports) {
            hits.push(Hit::new(FindingKind::AvailabilityCheck, check));
            return hits;
        }
        let device_ctor = matches!(
            q,
            "torch.device" | "tensorflow.device" | "torch.set_default_device" | "jax.devices"
        );
        if device_ctor {
            if let Some(arg) = call.arguments.args.first() {
                let v = site.eval.eval(site.at, arg);
                let dev = match v {
                    Val::Int(_) if q == "torch.device" => Some(Dev::Gpu),
                    ref v => v.device(),
                };
                hits.extend(device_hit(dev, text()));
            }
            return hits;
        }
        if matches!(q, "accelerate.Accelerator") {
            hits.push(Hit::new(FindingKind::DeviceUse, text()).guarded(true));
        }
        // GPTQ/AWQ configs load CUDA kernels (bitsandbytes configs: by their keywords below).
        if rules::CUDA_QUANTIZATION_CONFIGS.contains(&last) && last != "BitsAndBytesConfig" {
            hits.push(Hit::new(
                FindingKind::DeviceUse,
                format!("{}: quantized loading needs CUDA", text()),
            ));
        }
    }
    // Without any GPU-capable library in the function, `.to(...)` and `.cuda()` are methods of
    // its own classes.
    let gpu_capable = site.eval.gpu_capable;
    let mut skip_device_kw = false;
    if let Expr::Attribute(a) = call.func.as_ref() {
        let receiver_is_module = qualname(&a.value, site.imports).is_some();
        match a.attr.as_str() {
            "cuda"
                if gpu_capable && !receiver_is_module && !site.self_defines("cuda", &a.value) =>
            {
                hits.push(Hit::new(FindingKind::DeviceUse, text()));
            }
            "set_providers" => {
                if let Some(arg) = call.arguments.args.first() {
                    let v = site.eval.eval(site.at, arg);
                    hits.extend(device_hit(device_of(&v), text()));
                }
            }
            "to" if gpu_capable && !receiver_is_module => {
                let arg = call.arguments.args.first().or_else(|| {
                    call.arguments
                        .keywords
                        .iter()
                        .find(|k| k.arg.as_deref() == Some("device"))
                        .map(|k| &k.value)
                });
                if let Some(arg) = arg {
                    let dev = site.eval.eval(site.at, arg).device();
                    hits.extend(device_hit(dev, text()));
                }
                skip_device_kw = true;
            }
            _ => {}
        }
    }
    for k in &call.arguments.keywords {
        let Some(name) = k.arg.as_deref() else {
            continue;
        };
        match name {
            "device" if !skip_device_kw => {
                let v = site.eval.eval(site.at, &k.value);
                hits.extend(device_hit(device_of(&v), text()));
            }
            "device_map" | "providers" => {
                let v = site.eval.eval(site.at, &k.value);
                hits.extend(device_hit(device_of(&v), text()));
            }
            n if rules::CUDA_QUANTIZATION_KEYWORDS.contains(&n)
                && site.eval.eval(site.at, &k.value) == Val::Int(1) =>
            {
                hits.push(Hit::new(
                    FindingKind::DeviceUse,
                    format!("{n}=True: bitsandbytes quantization needs CUDA"),
                ));
            }
            _ => {}
        }
    }
    hits
}
