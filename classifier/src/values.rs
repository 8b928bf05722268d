//! A small abstract evaluator: what a value is, as far as the classifier cares (a device, a model
//! name, an integer for a shape, a config dict), following assignments, `self.` attributes,
//! function returns, environment defaults and imports of the project's own modules.

use std::cell::Cell;

use ruff_python_ast::{self as ast, Expr};

use super::devices::guard_test;
use super::imports::{qualname, Target};
use super::rules::{self, DeviceString};
use super::source::LineIndex;
use super::symbols::{Binding, ScopeId, Symbols, MODULE_SCOPE};

/// Where a value is placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    /// A GPU, unconditionally.
    Gpu,
    /// A GPU when there is one, else the CPU (chosen by an availability check or a GPU switch).
    Guarded,
    /// `device_map="auto"` and friends: a GPU when there is one.
    Auto,
    /// The CPU (or another non-CUDA device).
    Cpu,
}

/// What the classifier knows about a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Unknown,
    Str(String),
    Int(i64),
    /// The result of a GPU availability check.
    Avail,
    Dev(Dev),
    Dict(Vec<(String, Val)>),
    Seq(Vec<Val>),
}

impl Val {
    /// The device this value names, if it names one.
    pub fn device(&self) -> Option<Dev> {
        match self {
            Val::Str(s) => Some(match rules::device_string(s) {
                DeviceString::Gpu => Dev::Gpu,
                DeviceString::Auto => Dev::Auto,
                DeviceString::Other => Dev::Cpu,
            }),
            Val::Int(n) => Some(if *n >= 0 { Dev::Gpu } else { Dev::Cpu }),
            Val::Dev(d) => Some(*d),
            Val::Seq(items) => providers_device(items),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The device, where this value is a device string (not a bare integer: `device=0` is
    /// handled by the caller, which knows it is a device argument).
    fn names_device(&self) -> Option<Dev> {
        match self {
            Val::Int(_) => None,
            v => v.device(),
        }
    }
}

/// onnxruntime `providers=[...]`: a GPU provider is GPU use, guarded when the CPU provider follows
/// it. (Entries may be `(name, options)` pairs.) `None` when no GPU provider is named.
fn providers_device(items: &[Val]) -> Option<Dev> {
    let names: Vec<&str> = items
        .iter()
        .filter_map(|v| match v {
            Val::Str(s) => Some(s.as_str()),
            Val::Seq(pair) => match pair.first() {
                Some(Val::Str(s)) => Some(s.as_str()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let gpu = names
        .iter()
        .position(|n| rules::GPU_EXECUTION_PROVIDERS.contains(n))?;
    let cpu_after = names
        .iter()
        .skip(gpu)
        .any(|n| *n == rules::CPU_EXECUTION_PROVIDER);
    Some(if cpu_after { Dev::Guarded } else { Dev::Gpu })
}

/// Python's `str.format` for the classifier's purposes: `{}`, `{0}` and `{name}` replaced by the
/// known strings (unknown ones by nothing); a device among the arguments is the result.
fn format_str(template: &str, args: &[Val], kwargs: &[(String, Val)]) -> Val {
    let mut out = String::new();
    let mut next = 0usize;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(rest.get(..open).unwrap_or(""));
        let after = rest.get(open + 1..).unwrap_or("");
        let Some(close) = after.find('}') else {
            out.push_str(rest.get(open..).unwrap_or(""));
            rest = "";
            break;
        };
        let field = after.get(..close).unwrap_or("");
        let field = field.split([':', '!']).next().unwrap_or("");
        let v = if field.is_empty() {
            next += 1;
            args.get(next - 1)
        } else if let Ok(i) = field.parse::<usize>() {
            args.get(i)
        } else {
            kwargs
                .iter()
                .rev()
                .find(|(k, _)| k == field)
                .map(|(_, v)| v)
        };
        match v {
            Some(Val::Str(s)) => out.push_str(s),
            Some(Val::Int(n)) => out.push_str(&n.to_string()),
            Some(Val::Dev(d)) if out.trim_matches('/').is_empty() => return Val::Dev(*d),
            _ => {}
        }
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Val::Str(out)
}

/// The words of a known command: a string split on whitespace, the strings of a list.
fn collect_words(v: &Val, out: &mut Vec<String>) {
    match v {
        Val::Str(s) => out.extend(s.split_whitespace().map(str::to_owned)),
        Val::Seq(items) => {
            for i in items.iter().take(256) {
                if let Val::Str(s) = i {
                    out.push(s.clone());
                }
            }
        }
        _ => {}
    }
}

/// One parsed module, as the analysis sees it.
pub struct ModuleCtx<'a> {
    pub file: &'a str,
    pub suite: &'a [ast::Stmt],
    pub src: &'a str,
    pub lines: LineIndex,
    pub syms: Symbols<'a>,
}

/// A place in the code: module, scope, enclosing class.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub module: usize,
    pub scope: ScopeId,
    pub class: Option<usize>,
}

/// The evaluator over all parsed modules of a function.
pub struct Eval<'p, 'a> {
    pub modules: &'p [Option<ModuleCtx<'a>>],
    /// Some module of the function imports a GPU-capable framework or a GPU library (without
    /// one, `.to("cuda")` is a method of the function's own classes, not device use).
    pub gpu_capable: bool,
    /// Steps left to the evaluation under way ([`MAX_EVAL_STEPS`]; set by each entry).
    pub steps_left: Cell<u32>,
}

const MAX_DEPTH: u32 = 16;
const MAX_BINDINGS: usize = 8;
/// Most steps of one evaluation (an entry: [`Eval::eval`], [`Eval::is_avail`] at depth 0,
/// [`Eval::kwargs`], [`Eval::command_words`]). Depth and bindings alone bound a name's
/// evaluation by 8 bindings a level over 16 levels: `x = (x if x else x)` eight times over is
/// 16^8 steps for every use of `x`. Past the budget a value is unknown, as past the depth.
pub const MAX_EVAL_STEPS: u32 = 4096;

#[cfg(test)]
thread_local! {
    /// Steps taken on this thread, for the tests' bounds.
    pub static STEPS_TAKEN: Cell<u64> = const { Cell::new(0) };
}
/// Most steps of [`Eval::command_words`] for one command.
const MAX_COMMAND_STEPS: u32 = 256;

fn join_devices(devs: &[Dev]) -> Option<Dev> {
    let has = |d: Dev| devs.contains(&d);
    if devs.is_empty() {
        None
    } else if has(Dev::Guarded) || (has(Dev::Gpu) && has(Dev::Cpu)) {
        Some(Dev::Guarded)
    } else if has(Dev::Gpu) {
        Some(Dev::Gpu)
    } else if has(Dev::Auto) {
        Some(Dev::Auto)
    } else {
        Some(Dev::Cpu)
    }
}

impl<'a> Eval<'_, 'a> {
    fn module(&self, i: usize) -> Option<&ModuleCtx<'a>> {
        self.modules.get(i).and_then(Option::as_ref)
    }

    /// A new evaluation: its step budget starts afresh.
    fn fresh(&self) {
        self.steps_left.set(MAX_EVAL_STEPS);
    }

    /// One step of the evaluation under way; false once its budget is spent.
    fn step(&self) -> bool {
        #[cfg(test)]
        STEPS_TAKEN.with(|t| t.set(t.get() + 1));
        match self.steps_left.get() {
            0 => false,
            n => {
                self.steps_left.set(n - 1);
                true
            }
        }
    }

    pub fn eval(&self, at: At, e: &'a Expr) -> Val {
        self.fresh();
        self.ev(at, e, 0)
    }

    fn bindings(&self, at: At, vals: &[Binding<'a>], depth: u32) -> Val {
        let mut results: Vec<Val> = Vec::new();
        for b in vals.iter().rev().take(MAX_BINDINGS) {
            let v = self.ev(
                At {
                    scope: b.scope,
                    ..at
                },
                b.value,
                depth + 1,
            );
            let v = match (b.guarded, v.names_device()) {
                (true, Some(Dev::Gpu)) => Val::Dev(Dev::Guarded),
                _ => v,
            };
            results.push(v);
        }
        results.retain(|v| *v != Val::Unknown);
        match results.as_slice() {
            [] => Val::Unknown,
            [one] => one.clone(),
            [first, rest @ ..] if rest.iter().all(|v| v == first) => first.clone(),
            many => {
                let devs: Vec<Dev> = many.iter().filter_map(Val::names_device).collect();
                if devs.len() == many.len() {
                    join_devices(&devs).map_or(Val::Unknown, Val::Dev)
                } else {
                    Val::Unknown
                }
            }
        }
    }

    fn name(&self, at: At, id: &str, depth: u32) -> Val {
        let Some(m) = self.module(at.module) else {
            return Val::Unknown;
        };
        let mut scope = Some(at.scope);
        while let Some(s) = scope.and_then(|s| m.syms.scopes.get(s).map(|sc| (s, sc))) {
            let (sid, sc) = s;
            if let Some(vals) = sc.vars.get(id) {
                return self.bindings(At { scope: sid, ..at }, vals, depth);
            }
            if sc.params.contains(id) {
                return Val::Unknown;
            }
            scope = sc.parent;
        }
        match m.syms.imports.get(id).map(|i| &i.target) {
            Some(Target::Local {
                module,
                attr: Some(attr),
            }) => self.module_attr(*module, attr, depth),
            _ => Val::Unknown,
        }
    }

    fn module_attr(&self, module: usize, attr: &str, depth: u32) -> Val {
        if depth > MAX_DEPTH {
            return Val::Unknown;
        }
        let at = At {
            module,
            scope: MODULE_SCOPE,
            class: None,
        };
        self.name(at, attr, depth + 1)
    }

    /// Does the module-level function `func` (of this module, or imported from another module
    /// of the function) return an availability check? A lookup: see `Scope::returns_check`.
    fn returns_check(&self, module: usize, func: &str, depth: u32) -> bool {
        let Some(m) = self.module(module) else {
            return false;
        };
        if let Some(scope) = m.syms.functions.get(func) {
            return m.syms.scopes.get(*scope).is_some_and(|s| s.returns_check);
        }
        match m.syms.imports.get(func).map(|i| &i.target) {
            Some(Target::Local {
                module: other,
                attr: Some(attr),
            }) if *other != module && depth <= MAX_DEPTH => {
                self.returns_check(*other, attr, depth + 1)
            }
            _ => false,
        }
    }

    /// The value a call to a module-level function returns (its `return`s, joined).
    fn returns(&self, at: At, func: &str, depth: u32) -> Val {
        let Some(m) = self.module(at.module) else {
            return Val::Unknown;
        };
        let Some(scope) = m.syms.functions.get(func).copied() else {
            // `from .utils import has_gpu`: the function of that module.
            return match m.syms.imports.get(func).map(|i| &i.target) {
                Some(Target::Local {
                    module,
                    attr: Some(attr),
                }) if depth <= MAX_DEPTH && *module != at.module => {
                    let at = At {
                        module: *module,
                        scope: MODULE_SCOPE,
                        class: None,
                    };
                    self.returns(at, attr, depth + 1)
                }
                _ => Val::Unknown,
            };
        };
        match m.syms.scopes.get(scope) {
            Some(s) => self.bindings(At { scope, ..at }, &s.returns, depth),
            None => Val::Unknown,
        }
    }

    fn ev(&self, at: At, e: &'a Expr, depth: u32) -> Val {
        if depth > MAX_DEPTH || !self.step() {
            return Val::Unknown;
        }
        let Some(m) = self.module(at.module) else {
            return Val::Unknown;
        };
        match e {
            Expr::StringLiteral(s) => Val::Str(s.value.to_str().to_owned()),
            Expr::NumberLiteral(n) => match &n.value {
                ast::Number::Int(i) => i.as_i64().map_or(Val::Unknown, Val::Int),
                _ => Val::Unknown,
            },
            Expr::BooleanLiteral(b) => Val::Int(i64::from(b.value)),
            Expr::Name(n) => self.name(at, n.id.as_str(), depth),
            Expr::Attribute(a) => match a.value.as_ref() {
                Expr::Name(n) if n.id.as_str() == "self" => {
                    let Some(info) = at.class.and_then(|c| m.syms.classes.get(c)) else {
                        return Val::Unknown;
                    };
                    match info.attrs.get(a.attr.as_str()) {
                        Some(vals) => self.bindings(at, vals, depth),
                        None => Val::Unknown,
                    }
                }
                Expr::Name(n) => match m.syms.imports.get(n.id.as_str()).map(|i| &i.target) {
                    Some(Target::Local { module, attr: None }) => {
                        self.module_attr(*module, a.attr.as_str(), depth)
                    }
                    _ => Val::Unknown,
                },
                _ => Val::Unknown,
            },
            Expr::If(x) => {
                let body = self.ev(at, &x.body, depth + 1);
                let orelse = self.ev(at, &x.orelse, depth + 1);
                let devs: Vec<Dev> = [&body, &orelse]
                    .iter()
                    .filter_map(|v| v.names_device())
                    .collect();
                let gpuish = |d: &Dev| matches!(d, Dev::Gpu | Dev::Guarded | Dev::Auto);
                let any_gpu = devs.iter().any(gpuish);
                // `0 if torch.cuda.is_available() else -1`: an integer is a device index only
                // when a guard chooses between it and another value.
                let int_choice = body != orelse
                    && [&body, &orelse]
                        .iter()
                        .any(|v| matches!(v, Val::Int(n) if *n >= 0))
                    && guard_test(&x.test, &m.syms.imports).is_some();
                if int_choice {
                    Val::Dev(Dev::Guarded)
                } else if any_gpu {
                    if guard_test(&x.test, &m.syms.imports).is_some()
                        || self.avail(at, &x.test, depth)
                    {
                        Val::Dev(Dev::Guarded)
                    } else {
                        // A GPU on some path that no availability check protects.
                        Val::Dev(Dev::Gpu)
                    }
                } else if body == orelse {
                    body
                } else {
                    Val::Unknown
                }
            }
            Expr::BoolOp(b) => {
                // `os.environ.get("X") or "cuda"`: the last known alternative.
                b.values
                    .iter()
                    .rev()
                    .map(|v| self.ev(at, v, depth + 1))
                    .find(|v| *v != Val::Unknown)
                    .unwrap_or(Val::Unknown)
            }
            Expr::Call(c) => self.call(at, c, depth),
            Expr::FString(f) => {
                // f"cuda:{i}", f"{device}:{index}": the known pieces; a device in the first
                // field is the result. (Implicitly concatenated parts count as one string, as
                // in rustpython's tree, where the pieces of all parts were one list.)
                let mut out = String::new();
                let mut k = 0usize;
                for part in &f.value {
                    match part {
                        ast::FStringPart::Literal(l) => {
                            out.push_str(&l.value);
                            k += 1;
                        }
                        ast::FStringPart::FString(fs) => {
                            for piece in fs.elements.iter() {
                                match piece {
                                    ast::InterpolatedStringElement::Literal(l) => {
                                        out.push_str(&l.value)
                                    }
                                    ast::InterpolatedStringElement::Interpolation(i) => {
                                        match self.ev(at, &i.expression, depth + 1) {
                                            Val::Str(s) => out.push_str(&s),
                                            Val::Dev(d) if k == 0 => return Val::Dev(d),
                                            _ if k == 0 => return Val::Unknown,
                                            _ => {}
                                        }
                                    }
                                }
                                k += 1;
                            }
                        }
                    }
                }
                Val::Str(out)
            }
            Expr::BinOp(b) => {
                let l = self.ev(at, &b.left, depth + 1);
                let r = self.ev(at, &b.right, depth + 1);
                match (l, r, &b.op) {
                    (Val::Str(l), Val::Str(r), ast::Operator::Add) => Val::Str(l + &r),
                    (Val::Str(l), _, ast::Operator::Add) => Val::Str(l),
                    (Val::Seq(mut l), Val::Seq(r), ast::Operator::Add) => {
                        l.extend(r);
                        Val::Seq(l)
                    }
                    (Val::Int(l), Val::Int(r), op) => match op {
                        ast::Operator::Add => l.checked_add(r),
                        ast::Operator::Sub => l.checked_sub(r),
                        ast::Operator::Mult => l.checked_mul(r),
                        ast::Operator::FloorDiv if r != 0 => l.checked_div(r),
                        ast::Operator::Pow => u32::try_from(r).ok().and_then(|r| l.checked_pow(r)),
                        _ => None,
                    }
                    .map_or(Val::Unknown, Val::Int),
                    _ => Val::Unknown,
                }
            }
            Expr::UnaryOp(u) => match (&u.op, self.ev(at, &u.operand, depth + 1)) {
                (ast::UnaryOp::USub, Val::Int(n)) => n.checked_neg().map_or(Val::Unknown, Val::Int),
                _ => Val::Unknown,
            },
            Expr::Dict(d) => {
                let mut out = Vec::new();
                for item in &d.items {
                    let v = &item.value;
                    match &item.key {
                        Some(k) => {
                            if let Val::Str(k) = self.ev(at, k, depth + 1) {
                                out.push((k, self.ev(at, v, depth + 1)));
                            }
                        }
                        None => {
                            if let Val::Dict(more) = self.ev(at, v, depth + 1) {
                                out.extend(more);
                            }
                        }
                    }
                }
                Val::Dict(out)
            }
            Expr::Tuple(t) => Val::Seq(t.elts.iter().map(|x| self.ev(at, x, depth + 1)).collect()),
            Expr::List(t) => Val::Seq(t.elts.iter().map(|x| self.ev(at, x, depth + 1)).collect()),
            Expr::Subscript(s) => match (
                self.ev(at, &s.value, depth + 1),
                self.ev(at, &s.slice, depth + 1),
            ) {
                (Val::Dict(d), Val::Str(k)) => d
                    .into_iter()
                    .rev()
                    .find(|(key, _)| *key == k)
                    .map_or(Val::Unknown, |(_, v)| v),
                (Val::Seq(items), Val::Int(i)) => usize::try_from(i)
                    .ok()
                    .and_then(|i| items.into_iter().nth(i))
                    .unwrap_or(Val::Unknown),
                _ => Val::Unknown,
            },
            Expr::Named(n) => self.ev(at, &n.value, depth + 1),
            _ => Val::Unknown,
        }
    }

    /// Is this test expression a value that came from an availability check? At depth 0, an
    /// evaluation of its own.
    pub fn is_avail(&self, at: At, test: &'a Expr, depth: u32) -> bool {
        if depth == 0 {
            self.fresh();
        }
        self.avail(at, test, depth)
    }

    fn avail(&self, at: At, test: &'a Expr, depth: u32) -> bool {
        if depth > MAX_DEPTH || !self.step() {
            return false;
        }
        match test {
            // `has_gpu()` whose return comes from an availability check (here or in a module of
            // the function).
            Expr::Call(c) => match c.func.as_ref() {
                Expr::Name(n) => self.returns_check(at.module, n.id.as_str(), depth),
                _ => false,
            },
            Expr::UnaryOp(u) => self.avail(at, &u.operand, depth + 1),
            Expr::BoolOp(b) => b.values.iter().any(|v| self.avail(at, v, depth + 1)),
            Expr::Name(_) | Expr::Attribute(_) => {
                matches!(self.ev(at, test, depth + 1), Val::Avail | Val::Dev(_))
            }
            _ => false,
        }
    }

    /// The alternatives a process command can be (a command string, split on spaces, or an
    /// argument list), each with the words known and whether a device guard chose it: `cmd =
    /// [..."-hwaccel", "cuda"...] if has_gpu() else [...]` gives two, the first guarded.
    pub fn command_words(&self, at: At, e: &'a Expr) -> Vec<(Vec<String>, bool)> {
        let mut out = Vec::new();
        let mut budget = MAX_COMMAND_STEPS;
        self.fresh();
        self.command_alts(at, e, false, 0, &mut budget, &mut out);
        out
    }

    fn command_alts(
        &self,
        at: At,
        e: &'a Expr,
        guarded: bool,
        depth: u32,
        budget: &mut u32,
        out: &mut Vec<(Vec<String>, bool)>,
    ) {
        // Bounded in depth, alternatives and steps: `a = b` / `b = a` chains cannot fan out.
        if depth > MAX_DEPTH || out.len() >= MAX_BINDINGS || *budget == 0 {
            return;
        }
        *budget -= 1;
        let Some(m) = self.module(at.module) else {
            return;
        };
        match e {
            Expr::If(x) => {
                let g = guarded
                    || guard_test(&x.test, &m.syms.imports).is_some()
                    || self.avail(at, &x.test, depth);
                self.command_alts(at, &x.body, g, depth + 1, budget, out);
                self.command_alts(at, &x.orelse, g, depth + 1, budget, out);
            }
            Expr::Name(n) => {
                let mut scope = Some(at.scope);
                while let Some(sc) = scope.and_then(|s| m.syms.scopes.get(s)) {
                    if let Some(vals) = sc.vars.get(n.id.as_str()) {
                        for b in vals.iter().rev().take(MAX_BINDINGS) {
                            let at = At {
                                scope: b.scope,
                                ..at
                            };
                            self.command_alts(
                                at,
                                b.value,
                                guarded || b.guarded,
                                depth + 1,
                                budget,
                                out,
                            );
                        }
                        return;
                    }
                    if sc.params.contains(n.id.as_str()) {
                        return;
                    }
                    scope = sc.parent;
                }
            }
            _ => {
                let mut words = Vec::new();
                collect_words(&self.ev(at, e, depth + 1), &mut words);
                if !words.is_empty() {
                    out.push((words, guarded));
                }
            }
        }
    }

    /// Keyword arguments of a call as a dict (with `**spread` of known dicts).
    pub fn kwargs(&self, at: At, keywords: &'a [ast::Keyword]) -> Vec<(String, Val)> {
        self.fresh();
        self.kwargs_at(at, keywords, 0)
    }

    /// [`Eval::kwargs`] inside an evaluation: `x = dict(a=x)` goes deeper, not back to depth 0.
    fn kwargs_at(&self, at: At, keywords: &'a [ast::Keyword], depth: u32) -> Vec<(String, Val)> {
        let mut out = Vec::new();
        for k in keywords {
            match &k.arg {
                Some(name) => out.push((name.to_string(), self.ev(at, &k.value, depth))),
                None => {
                    if let Val::Dict(d) = self.ev(at, &k.value, depth) {
                        out.extend(d);
                    }
                }
            }
        }
        out
    }

    fn call(&self, at: At, c: &'a ast::ExprCall, depth: u32) -> Val {
        let Some(m) = self.module(at.module) else {
            return Val::Unknown;
        };
        let qual = qualname(&c.func, &m.syms.imports);
        let (args, keywords) = (&c.arguments.args, &c.arguments.keywords);
        let first = args.first();
        if let Some(q) = qual.as_deref() {
            let last = q.rsplit('.').next().unwrap_or(q);
            let root = q.split('.').next().unwrap_or(q);
            if matches!(q, "os.environ.get" | "os.getenv" | "os.environ.setdefault") {
                return args
                    .get(1)
                    .or_else(|| {
                        keywords
                            .iter()
                            .find(|k| k.arg.as_deref() == Some("default"))
                            .map(|k| &k.value)
                    })
                    .map_or(Val::Unknown, |d| self.ev(at, d, depth + 1));
            }
            if rules::lookup(rules::GPU_CAPABLE_FRAMEWORKS, root).is_some()
                || rules::lookup(rules::GPU_ONLY_LIBRARIES, q).is_some()
            {
                if rules::AVAILABILITY_CHECKS.contains(&last) {
                    return Val::Avail;
                }
                if last == "device" {
                    return first.map_or(Val::Unknown, |a| {
                        let v = self.ev(at, a, depth + 1);
                        match v {
                            Val::Int(_) => Val::Dev(Dev::Gpu),
                            v => v,
                        }
                    });
                }
                if q == "torch.cuda.current_device" {
                    return Val::Dev(Dev::Gpu);
                }
            }
        }
        if let Expr::Attribute(a) = c.func.as_ref() {
            if a.attr.as_str() == "format" {
                if let Val::Str(template) = self.ev(at, &a.value, depth + 1) {
                    let args: Vec<Val> = args.iter().map(|x| self.ev(at, x, depth + 1)).collect();
                    let kwargs: Vec<(String, Val)> = keywords
                        .iter()
                        .filter_map(|k| {
                            let name = k.arg.as_ref()?.to_string();
                            Some((name, self.ev(at, &k.value, depth + 1)))
                        })
                        .collect();
                    return format_str(&template, &args, &kwargs);
                }
                return Val::Unknown;
            }
        }
        match c.func.as_ref() {
            Expr::Name(n) => match n.id.as_str() {
                "str" | "int" => first.map_or(Val::Unknown, |a| self.ev(at, a, depth + 1)),
                "dict" if qual.is_none() => Val::Dict(self.kwargs_at(at, keywords, depth + 1)),
                name if qual.is_none() => self.returns(at, name, depth + 1),
                _ => Val::Unknown,
            },
            // `environ.get("X", default)` with `from os import environ`. (Not any `.get`: a
            // request's `.get("size", 1000)` is a run-time value, not its default.)
            Expr::Attribute(a)
                if a.attr.as_str() == "get"
                    && matches!(a.value.as_ref(), Expr::Name(n) if n.id.as_str() == "environ") =>
            {
                args.get(1)
                    .map_or(Val::Unknown, |d| self.ev(at, d, depth + 1))
            }
            _ => Val::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_EVAL_STEPS, STEPS_TAKEN};
    use crate::{classify, Limits, SourceFile, REQUIRED_STACK_BYTES};

    /// The evaluator's steps to classify `src` as a one-file function (on a thread with the
    /// classifier's stack, as the webhook runs it).
    fn steps(src: String) -> u64 {
        std::thread::Builder::new()
            .stack_size(REQUIRED_STACK_BYTES)
            .spawn(move || {
                STEPS_TAKEN.with(|t| t.set(0));
                classify(&[SourceFile::new("func.py", src)], &Limits::default())
                    .expect("a classification");
                STEPS_TAKEN.with(|t| t.get())
            })
            .expect("a thread")
            .join()
            .expect("no panic")
    }

    /// `k` assignments of `x` that each read `x` three times, then a use of `x` (the fuzzer's
    /// slow input, made small): every use of `x` fans out to all of them at every level.
    fn self_referring(k: usize) -> String {
        let mut src = String::from("import torch\n");
        for _ in 0..k {
            src.push_str("x = (x if x else x)\n");
        }
        src.push_str("y = torch.zeros(1).to(x)\nz = torch.ones(1).to(x)\n");
        src
    }

    #[test]
    fn self_referring_bindings_cost_steps_in_proportion_to_the_source() {
        // Without the step budget 2 assignments took 393,216 steps, 3 took 10 million, 4 did not
        // finish in two minutes; with it every evaluation stops at MAX_EVAL_STEPS, so the cost
        // grows with the number of lines, not exponentially with it.
        let mut last: Option<(usize, u64)> = None;
        for k in [2, 3, 4, 8, 16, 64] {
            let src = self_referring(k);
            let (bytes, lines) = (src.len(), src.lines().count());
            let n = steps(src);
            let bound = 2 * u64::from(MAX_EVAL_STEPS) * lines as u64;
            assert!(n <= bound, "{k} assignments: {n} steps, over {bound}");
            if let Some((b0, n0)) = last {
                // linear in the size, with room: not faster than 1.5 times the bytes' growth
                assert!(
                    n as f64 / n0 as f64 <= 1.5 * bytes as f64 / b0 as f64,
                    "{k} assignments: {n} steps after {n0} ({bytes} bytes after {b0})"
                );
            }
            last = Some((bytes, n));
        }
    }

    #[test]
    fn a_dict_of_itself_is_evaluated_to_a_bound_not_forever() {
        // `dict(a=x)` evaluated its keywords from depth 0 again: `x = dict(a=x)` recursed until
        // the stack overflowed, which aborts the webhook's whole process.
        let src = "import torch\nx = dict(a=x)\ny = dict(d=dict(**y))\nm = torch.nn.Linear(1, 1)\nm.to(x)\nm.to(**y)\n";
        assert!(steps(src.to_string()) <= 100 * src.len() as u64);
    }
}
