//! The walk over one parsed module: tracks guard context and scopes, hands every call to
//! [`devices`] and [`intensity`], and turns what they report into findings.

use std::collections::HashSet;

use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::Ranged;

use super::commands;
use super::devices::{self, guard_test};
use super::imports::{library_kind, qualname, ImportTable, Target};
use super::intensity;
use super::rules;
use super::symbols::{is_type_checking, node_key, ClassInfo, ScopeId, MODULE_SCOPE};
use super::values::{At, Eval, ModuleCtx};
use gaia_contract::{Finding, FindingKind};

/// Most findings reported per file (a generated file can hold thousands of `.to(device)`).
pub const MAX_FINDINGS_PER_FILE: usize = 64;

/// What a check found at a call, before it gets a place.
#[derive(Clone, Debug)]
pub struct Hit {
    pub kind: FindingKind,
    pub detail: String,
    pub guarded: bool,
    pub heavy: bool,
    /// For a model load: its parameters, when known (the GPU memory estimate's input).
    pub params: Option<f64>,
}

impl Hit {
    pub fn new(kind: FindingKind, detail: impl Into<String>) -> Hit {
        Hit {
            kind,
            detail: detail.into(),
            guarded: false,
            heavy: false,
            params: None,
        }
    }

    pub fn params(mut self, p: Option<f64>) -> Hit {
        self.params = p;
        self
    }

    pub fn guarded(mut self, g: bool) -> Hit {
        self.guarded = g;
        self
    }

    pub fn heavy(mut self, h: bool) -> Hit {
        self.heavy = h;
        self
    }
}

/// A call being checked, with what the checks need to know about its surroundings.
pub struct CallSite<'w, 'a> {
    pub eval: &'w Eval<'w, 'a>,
    pub at: At,
    pub call: &'a ast::ExprCall,
    /// The callee's dotted name through the imports (`torch.cuda.synchronize`).
    pub qual: Option<String>,
    pub src: &'a str,
    pub imports: &'w ImportTable,
    /// The module imports a GPU-capable framework or GPU library.
    pub framework: bool,
    class: Option<&'w ClassInfo<'a>>,
    roots: &'w HashSet<String>,
}

impl CallSite<'_, '_> {
    /// `self.cuda()` in a class that defines its own `cuda` method is no device call.
    pub fn self_defines(&self, method: &str, receiver: &Expr) -> bool {
        matches!(receiver, Expr::Name(n) if n.id.as_str() == "self")
            && self.class.is_some_and(|c| c.methods.contains(method))
    }

    /// Does the module import one of these top-level modules?
    pub fn has_root(&self, roots: &[&str]) -> bool {
        roots.iter().any(|r| self.roots.contains(*r))
    }
}

/// Most references recorded per file; past it, the file's `refs_complete` is false and no guard
/// is carried for the function (a missed unguarded reference could hide a GPU-only path).
const MAX_REFS_PER_FILE: usize = 1 << 16;

/// A function of the project: (module, scope).
pub type FunctionId = (usize, ScopeId);

/// What a reference names: `f` (a function of this module, or one imported from another module
/// of the function), or `base.attr` (`self.method`, `module.function`).
#[derive(Clone, Copy, Debug)]
pub enum RefTarget<'a> {
    Name(&'a str),
    Attr(&'a str, &'a str),
}

/// A reference that may be to one of the function's own functions (a call, or the name passed
/// on): where, and whether a device guard encloses it. A function referred to only under guards
/// runs only when there is a GPU, so its GPU use has a CPU path ([`super::carry`]).
#[derive(Clone, Copy, Debug)]
pub struct FunctionRef<'a> {
    pub target: RefTarget<'a>,
    pub from: FunctionId,
    /// The class around the reference (for `self.method`).
    pub class: Option<usize>,
    pub guarded: bool,
}

/// What the walk of one module found.
#[derive(Debug, Default)]
pub struct Analysis<'a> {
    pub findings: Vec<Finding>,
    /// The scope each finding sits in (parallel to `findings`).
    pub scopes: Vec<ScopeId>,
    pub refs: Vec<FunctionRef<'a>>,
    /// Every reference was recorded (under [`MAX_REFS_PER_FILE`]).
    pub refs_complete: bool,
    /// The module runs a model (see [`rules::RUNS_MODEL_METHODS`]).
    pub runs_model: bool,
    /// The parameters of the largest model it loads whose size is known.
    pub model_params: Option<f64>,
}

struct Walker<'w, 'a> {
    eval: &'w Eval<'w, 'a>,
    m: &'w ModuleCtx<'a>,
    module: usize,
    scope: ScopeId,
    class: Option<usize>,
    /// Number of enclosing device guards.
    guard: u32,
    framework: bool,
    roots: HashSet<String>,
    findings: Vec<Finding>,
    scopes: Vec<ScopeId>,
    refs: Vec<FunctionRef<'a>>,
    runs_model: bool,
    model_params: Option<f64>,
    seen: HashSet<(FindingKind, u32, String)>,
    seen_ops: HashSet<String>,
    gpu_libs: HashSet<&'static str>,
}

/// Findings of one parsed module (index `module` of the evaluator's modules).
pub fn analyze<'a>(eval: &Eval<'_, 'a>, module: usize) -> Analysis<'a> {
    let Some(Some(m)) = eval.modules.get(module) else {
        return Analysis::default();
    };
    let mut w = Walker {
        eval,
        m,
        module,
        scope: MODULE_SCOPE,
        class: None,
        guard: 0,
        framework: false,
        roots: HashSet::new(),
        findings: Vec::new(),
        scopes: Vec::new(),
        refs: Vec::new(),
        runs_model: false,
        model_params: None,
        seen: HashSet::new(),
        seen_ops: HashSet::new(),
        gpu_libs: HashSet::new(),
    };
    w.imports();
    w.block(m.suite);
    Analysis {
        findings: w.findings,
        scopes: w.scopes,
        refs_complete: w.refs.len() < MAX_REFS_PER_FILE,
        refs: w.refs,
        runs_model: w.runs_model,
        model_params: w.model_params,
    }
}

/// `if gpu_id < 0: raise ValueError(...)`, `if device is None: raise`: a GPU-named value checked
/// against a number or None is input validation, not "fails without a GPU".
fn is_validation(test: &Expr) -> bool {
    let Expr::Compare(c) = test else {
        return false;
    };
    let is_literal = |e: &Expr| match e {
        Expr::NumberLiteral(k) => matches!(k.value, ast::Number::Int(_)),
        Expr::NoneLiteral(_) => true,
        Expr::UnaryOp(u) => is_constant(&u.operand),
        _ => false,
    };
    let has_call = |e: &Expr| matches!(e, Expr::Call(_));
    std::iter::once(c.left.as_ref())
        .chain(c.comparators.iter())
        .any(is_literal)
        && !std::iter::once(c.left.as_ref())
            .chain(c.comparators.iter())
            .any(has_call)
}

/// A literal (rustpython's `Constant`: a string, bytes, number, bool, None or `...`).
pub fn is_constant(e: &Expr) -> bool {
    matches!(
        e,
        Expr::StringLiteral(_)
            | Expr::BytesLiteral(_)
            | Expr::NumberLiteral(_)
            | Expr::BooleanLiteral(_)
            | Expr::NoneLiteral(_)
            | Expr::EllipsisLiteral(_)
    )
}

fn is_main_guard(test: &Expr) -> bool {
    let Expr::Compare(c) = test else { return false };
    let is_name = |e: &Expr| matches!(e, Expr::Name(n) if n.id.as_str() == "__name__");
    let is_main = |e: &Expr| matches!(e, Expr::StringLiteral(s) if s.value.to_str() == "__main__");
    c.comparators.len() == 1
        && c.comparators
            .first()
            .is_some_and(|r| (is_name(&c.left) && is_main(r)) || (is_main(&c.left) && is_name(r)))
}

/// Does this block end by leaving (return / continue / break)?
pub fn leaves(body: &[Stmt]) -> bool {
    matches!(
        body.last(),
        Some(Stmt::Return(_) | Stmt::Continue(_) | Stmt::Break(_))
    )
}

/// Does this block end by failing (raise / sys.exit / exit / quit / os._exit)?
fn fails(body: &[Stmt]) -> bool {
    match body.last() {
        Some(Stmt::Raise(_)) => true,
        Some(Stmt::Expr(e)) => match e.value.as_ref() {
            Expr::Call(c) => match c.func.as_ref() {
                Expr::Name(n) => matches!(n.id.as_str(), "exit" | "quit"),
                Expr::Attribute(a) => matches!(a.attr.as_str(), "exit" | "_exit"),
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

impl<'w, 'a> Walker<'w, 'a> {
    fn at(&self) -> At {
        At {
            module: self.module,
            scope: self.scope,
            class: self.class,
        }
    }

    fn line(&self, node: &impl Ranged) -> u32 {
        self.m.lines.line(node.start().to_u32())
    }

    fn push(&mut self, line: u32, hit: Hit) {
        let device_kind = matches!(
            hit.kind,
            FindingKind::DeviceUse | FindingKind::CudaCall | FindingKind::GpuLibrary
        );
        let guarded = hit.guarded || (device_kind && self.guard > 0);
        if hit.kind == FindingKind::ModelLoad {
            if let Some(p) = hit.params.filter(|p| p.is_finite() && *p > 0.0) {
                self.model_params = Some(self.model_params.map_or(p, |m| m.max(p)));
            }
        }
        if hit.kind == FindingKind::TensorOp && !self.seen_ops.insert(hit.detail.clone()) {
            return;
        }
        if !self.seen.insert((hit.kind, line, hit.detail.clone())) {
            return;
        }
        if self.findings.len() >= MAX_FINDINGS_PER_FILE {
            return;
        }
        self.findings.push(
            Finding::new(hit.kind, self.m.file, line, hit.detail)
                .guarded(guarded)
                .heavy(hit.heavy),
        );
        self.scopes.push(self.scope);
    }

    /// `pipe(prompt)`: a call of a variable (a model object), not of a function, class or import.
    fn is_variable(&self, id: &str) -> bool {
        let syms = &self.m.syms;
        if syms.functions.contains_key(id) || syms.imports.get(id).is_some() {
            return false;
        }
        let mut scope = Some(self.scope);
        while let Some(sc) = scope.and_then(|s| syms.scopes.get(s)) {
            if sc.vars.contains_key(id) {
                return true;
            }
            scope = sc.parent;
        }
        false
    }

    /// `self.model(x)`: a call of an attribute the class assigns, not of one of its methods.
    fn calls_value(&self, a: &ast::ExprAttribute) -> bool {
        matches!(a.value.as_ref(), Expr::Name(n) if n.id.as_str() == "self")
            && self
                .class
                .and_then(|c| self.m.syms.classes.get(c))
                .is_some_and(|c| {
                    c.attrs.contains_key(a.attr.as_str()) && !c.methods.contains(a.attr.as_str())
                })
    }

    /// Records a reference that may be to one of the project's functions; it is resolved only
    /// when some GPU use needs a guard carried ([`super::carry`]), so the walk pays a push.
    fn reference(&mut self, target: RefTarget<'a>) {
        if self.refs.len() < MAX_REFS_PER_FILE {
            self.refs.push(FunctionRef {
                target,
                from: (self.module, self.scope),
                class: self.class,
                guarded: self.guard > 0,
            });
        }
    }

    fn imports(&mut self) {
        let mut seen: HashSet<&str> = HashSet::new();
        for imp in &self.m.syms.imports.imports {
            let Target::External(_) = imp.target else {
                continue;
            };
            if let Some(root) = imp.module.split('.').next() {
                self.roots.insert(root.to_owned());
            }
            let Some((kind, lib)) = library_kind(&imp.module) else {
                continue;
            };
            if kind != FindingKind::CpuLibraryImport {
                self.framework = true;
            }
            if kind == FindingKind::GpuLibrary {
                self.gpu_libs.insert(lib);
            }
            let detail = match kind {
                FindingKind::CpuLibraryImport => lib,
                _ => imp.module.as_str(),
            };
            if !seen.insert(detail) {
                continue;
            }
            let mut f = Finding::new(kind, self.m.file, imp.line, detail).guarded(imp.guarded);
            if kind == FindingKind::GpuLibrary && !imp.guarded {
                f.detail = format!("import {}", imp.module);
            }
            if self.findings.len() < MAX_FINDINGS_PER_FILE {
                self.findings.push(f);
                self.scopes.push(imp.scope);
            }
        }
    }

    fn block(&mut self, stmts: &'a [Stmt]) {
        let saved = self.guard;
        for s in stmts {
            self.stmt(s);
            // `if not torch.cuda.is_available(): return ...`: what follows has a GPU.
            if let Stmt::If(i) = s {
                if leaves(&i.body) && i.elif_else_clauses.is_empty() && self.is_guard(&i.test) {
                    self.guard += 1;
                }
            }
        }
        self.guard = saved;
    }

    fn is_guard(&self, test: &'a Expr) -> bool {
        guard_test(test, &self.m.syms.imports).is_some() || self.eval.is_avail(self.at(), test, 0)
    }

    fn function(&mut self, key: usize, body: &'a [Stmt]) {
        let Some(&scope) = self.m.syms.function_scopes.get(&key) else {
            return;
        };
        let saved = self.scope;
        self.scope = scope;
        self.block(body);
        self.scope = saved;
    }

    fn stmt(&mut self, s: &'a Stmt) {
        match s {
            Stmt::FunctionDef(f) => {
                for d in &f.decorator_list {
                    self.expr(&d.expression);
                }
                self.defaults(&f.parameters);
                self.function(node_key(f), &f.body);
            }
            Stmt::ClassDef(c) => {
                for d in &c.decorator_list {
                    self.expr(&d.expression);
                }
                if let Some(args) = &c.arguments {
                    self.exprs(&args.args);
                }
                let saved = self.class;
                self.class = self.m.syms.class_ids.get(&node_key(c)).copied();
                self.block(&c.body);
                self.class = saved;
            }
            Stmt::Return(r) => {
                if let Some(v) = &r.value {
                    self.expr(v);
                }
            }
            Stmt::Delete(d) => self.exprs(&d.targets),
            Stmt::Assign(a) => {
                self.exprs(&a.targets);
                self.expr(&a.value);
            }
            Stmt::AugAssign(a) => self.expr(&a.value),
            Stmt::AnnAssign(a) => {
                if let Some(v) = &a.value {
                    self.expr(v);
                }
            }
            Stmt::For(f) => {
                self.expr(&f.iter);
                self.block(&f.body);
                self.block(&f.orelse);
            }
            Stmt::While(w) => {
                self.expr(&w.test);
                self.block(&w.body);
                self.block(&w.orelse);
            }
            Stmt::If(i) => self.if_chain(s.start(), &i.test, &i.body, &i.elif_else_clauses),
            Stmt::With(w) => {
                for item in &w.items {
                    self.expr(&item.context_expr);
                }
                self.block(&w.body);
            }
            Stmt::Match(m) => {
                self.expr(&m.subject);
                for case in &m.cases {
                    if let Some(g) = &case.guard {
                        self.expr(g);
                    }
                    self.block(&case.body);
                }
            }
            Stmt::Raise(r) => {
                if let Some(e) = &r.exc {
                    self.expr(e);
                }
            }
            Stmt::Try(t) => self.try_stmt(&t.body, &t.handlers, &t.orelse, &t.finalbody),
            Stmt::Assert(a) => {
                if let Expr::Call(c) = a.test.as_ref() {
                    if let Some(check) = devices::availability_check(c, &self.m.syms.imports) {
                        let line = self.line(s);
                        self.push(
                            line,
                            Hit::new(FindingKind::GpuRequired, format!("assert {check}")),
                        );
                    }
                }
                self.expr(&a.test);
            }
            Stmt::Expr(e) => self.expr(&e.value),
            _ => {}
        }
    }

    fn try_stmt(
        &mut self,
        body: &'a [Stmt],
        handlers: &'a [ast::ExceptHandler],
        orelse: &'a [Stmt],
        finalbody: &'a [Stmt],
    ) {
        let guard = u32::from(!handlers.is_empty());
        self.guard += guard;
        self.block(body);
        self.guard -= guard;
        for h in handlers {
            let ast::ExceptHandler::ExceptHandler(h) = h;
            self.block(&h.body);
        }
        self.block(orelse);
        self.block(finalbody);
    }

    fn defaults(&mut self, args: &'a ast::Parameters) {
        for a in args
            .posonlyargs
            .iter()
            .chain(&args.args)
            .chain(&args.kwonlyargs)
        {
            if let Some(d) = &a.default {
                self.expr(d);
            }
        }
    }

    fn exprs(&mut self, es: &'a [Expr]) {
        for e in es {
            self.expr(e);
        }
    }

    fn comprehensions(&mut self, gens: &'a [ast::Comprehension]) {
        for g in gens {
            self.expr(&g.iter);
            self.exprs(&g.ifs);
        }
    }

    fn call(&mut self, c: &'a ast::ExprCall) {
        let qual = qualname(&c.func, &self.m.syms.imports);
        // Only a module that imports something GPU-capable runs a model this cares about.
        if !self.runs_model && self.framework {
            self.runs_model = match (c.func.as_ref(), qual.as_deref()) {
                (_, Some(q)) => rules::RUNS_MODEL_CALLS.contains(&q),
                (Expr::Attribute(a), None) => {
                    rules::RUNS_MODEL_METHODS.contains(&a.attr.as_str()) || self.calls_value(a)
                }
                (Expr::Name(n), None) => self.is_variable(n.id.as_str()),
                _ => false,
            };
        }
        let class = self.class.and_then(|i| self.m.syms.classes.get(i));
        let site = CallSite {
            eval: self.eval,
            at: self.at(),
            call: c,
            qual,
            src: self.m.src,
            imports: &self.m.syms.imports,
            framework: self.framework,
            class,
            roots: &self.roots,
        };
        let mut hits = devices::check_call(&site);
        hits.extend(intensity::check_call(&site));
        hits.extend(commands::check_call(&site));
        let line = self.line(c);
        for h in hits {
            self.push(line, h);
        }
    }

    /// `numba.cuda.jit`, `cupy.asarray`: use of a GPU-only library not imported as one.
    fn attribute_chain(&mut self, e: &'a Expr) {
        if let Expr::Attribute(a) = e {
            if let Expr::Name(base) = a.value.as_ref() {
                self.reference(RefTarget::Attr(base.id.as_str(), a.attr.as_str()));
            }
        }
        if let Some(q) = qualname(e, &self.m.syms.imports) {
            if let Some(lib) = rules::lookup(rules::GPU_ONLY_LIBRARIES, &q) {
                if self.gpu_libs.insert(lib) {
                    let line = self.line(e);
                    self.framework = true;
                    self.push(line, Hit::new(FindingKind::GpuLibrary, q));
                }
            }
        }
        // Walk down to the base without re-resolving every prefix of the chain.
        let mut base = e;
        while let Expr::Attribute(a) = base {
            base = &a.value;
        }
        if !matches!(base, Expr::Name(_)) {
            self.expr(base);
        }
    }

    fn expr(&mut self, e: &'a Expr) {
        match e {
            Expr::Call(c) => {
                self.call(c);
                self.expr(&c.func);
                self.exprs(&c.arguments.args);
                for k in &c.arguments.keywords {
                    self.expr(&k.value);
                }
            }
            Expr::Attribute(_) => self.attribute_chain(e),
            Expr::BinOp(b) => {
                if b.op == ast::Operator::MatMult && self.framework {
                    let line = self.line(b);
                    self.push(line, intensity::matmul_operator(self.m.src, b));
                }
                self.expr(&b.left);
                self.expr(&b.right);
            }
            Expr::If(x) => {
                self.expr(&x.test);
                let guard = u32::from(self.is_guard(&x.test));
                self.guard += guard;
                self.expr(&x.body);
                self.expr(&x.orelse);
                self.guard -= guard;
            }
            Expr::BoolOp(b) => self.exprs(&b.values),
            Expr::Named(n) => self.expr(&n.value),
            Expr::UnaryOp(u) => self.expr(&u.operand),
            Expr::Lambda(l) => {
                if let Some(p) = &l.parameters {
                    self.defaults(p);
                }
                self.expr(&l.body);
            }
            Expr::Dict(d) => {
                // Keys first, then values: the order of rustpython's walk.
                for k in d.items.iter().filter_map(|i| i.key.as_ref()) {
                    self.expr(k);
                }
                for i in &d.items {
                    self.expr(&i.value);
                }
            }
            Expr::Set(s) => self.exprs(&s.elts),
            Expr::ListComp(c) => {
                self.expr(&c.elt);
                self.comprehensions(&c.generators);
            }
            Expr::SetComp(c) => {
                self.expr(&c.elt);
                self.comprehensions(&c.generators);
            }
            Expr::Generator(c) => {
                self.expr(&c.elt);
                self.comprehensions(&c.generators);
            }
            Expr::DictComp(c) => {
                if let Some(k) = &c.key {
                    self.expr(k);
                }
                self.expr(&c.value);
                self.comprehensions(&c.generators);
            }
            Expr::Await(a) => self.expr(&a.value),
            Expr::Yield(y) => {
                if let Some(v) = &y.value {
                    self.expr(v);
                }
            }
            Expr::YieldFrom(y) => self.expr(&y.value),
            Expr::Compare(c) => {
                self.expr(&c.left);
                self.exprs(&c.comparators);
            }
            Expr::FString(f) => {
                for part in &f.value {
                    if let ast::FStringPart::FString(fs) = part {
                        self.interpolated(&fs.elements);
                    }
                }
            }
            Expr::TString(t) => {
                for ts in &t.value {
                    self.interpolated(&ts.elements);
                }
            }
            Expr::Subscript(s) => {
                self.expr(&s.value);
                self.expr(&s.slice);
            }
            Expr::Starred(s) => self.expr(&s.value),
            Expr::List(l) => self.exprs(&l.elts),
            Expr::Tuple(t) => self.exprs(&t.elts),
            Expr::Slice(s) => {
                for part in [&s.lower, &s.upper, &s.step].into_iter().flatten() {
                    self.expr(part);
                }
            }
            Expr::Name(n) if n.id.as_str() != "self" => {
                self.reference(RefTarget::Name(n.id.as_str()))
            }
            Expr::Name(_) => {}
            Expr::StringLiteral(_)
            | Expr::BytesLiteral(_)
            | Expr::NumberLiteral(_)
            | Expr::BooleanLiteral(_)
            | Expr::NoneLiteral(_)
            | Expr::EllipsisLiteral(_)
            | Expr::IpyEscapeCommand(_) => {}
        }
    }

    /// The expressions of an f-string's (or t-string's) fields, with their format specs.
    fn interpolated(&mut self, elements: &'a ast::InterpolatedStringElements) {
        for el in elements.iter() {
            if let ast::InterpolatedStringElement::Interpolation(i) = el {
                self.expr(&i.expression);
                if let Some(spec) = &i.format_spec {
                    self.interpolated(&spec.elements);
                }
            }
        }
    }

    /// An `if` with its `elif`s and `else`, as rustpython's tree had it: each `elif` an `if` in
    /// the `else` of the one before (`start`: where this `if` or `elif` begins).
    fn if_chain(
        &mut self,
        start: ruff_text_size::TextSize,
        test: &'a Expr,
        body: &'a [Stmt],
        rest: &'a [ast::ElifElseClause],
    ) {
        if is_main_guard(test) {
            return;
        }
        if is_type_checking(test) {
            self.orelse(rest);
            return;
        }
        self.expr(test);
        let guard = self.is_guard(test);
        if guard && fails(body) && !is_validation(test) {
            let line = self.m.lines.line(start.to_u32());
            let detail = format!(
                "if {}: fails without a GPU",
                super::source::excerpt(self.m.src, test)
            );
            self.push(line, Hit::new(FindingKind::GpuRequired, detail));
        }
        if guard {
            self.guard += 1;
        }
        self.block(body);
        self.orelse(rest);
        if guard {
            self.guard -= 1;
        }
    }

    /// What follows an `if`'s body: the next `elif` (as a nested `if`), or the `else` block.
    fn orelse(&mut self, rest: &'a [ast::ElifElseClause]) {
        match rest.split_first() {
            None => {}
            Some((c, more)) => match &c.test {
                Some(t) => self.if_chain(c.start(), t, &c.body, more),
                None => self.block(&c.body),
            },
        }
    }
}
