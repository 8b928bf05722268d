//! A first pass over a module: its imports, and what every variable, `self.` attribute and
//! function return is assigned (with whether the assignment sits behind a device guard), so the
//! analysis can follow a value to where it is used (`device = torch.device(...)` ... `.to(device)`).

use std::collections::{HashMap, HashSet};

use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::Ranged;

use super::devices::guard_test;
use super::imports::{catches_import_error, ImportTable, Resolver};
use super::source::LineIndex;

/// Index of a scope in [`Symbols::scopes`]; 0 is the module.
pub type ScopeId = usize;
pub const MODULE_SCOPE: ScopeId = 0;

/// One assignment of a value to a name.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    pub value: &'a Expr,
    /// Assigned behind a device guard (an availability check, a `try`).
    pub guarded: bool,
    /// The scope the value expression is evaluated in.
    pub scope: ScopeId,
}

#[derive(Debug, Default)]
pub struct Scope<'a> {
    pub parent: Option<ScopeId>,
    pub vars: HashMap<&'a str, Vec<Binding<'a>>>,
    /// Parameters without a default: their value is unknown, and they hide outer names.
    pub params: HashSet<&'a str>,
    /// `return` values (for a function).
    pub returns: Vec<Binding<'a>>,
    /// A `return` gives the result of an availability check (`return
    /// torch.cuda.is_available()`): a call of this function is one.
    pub returns_check: bool,
}

#[derive(Debug, Default)]
pub struct ClassInfo<'a> {
    /// `self.x = ...` in any method.
    pub attrs: HashMap<&'a str, Vec<Binding<'a>>>,
    pub methods: HashSet<&'a str>,
    /// The scope of each method, by name.
    pub method_scopes: HashMap<&'a str, ScopeId>,
}

/// Everything the first pass learned about one module.
#[derive(Debug, Default)]
pub struct Symbols<'a> {
    pub imports: ImportTable,
    pub scopes: Vec<Scope<'a>>,
    /// Scope of each function definition, keyed by the address of its node.
    pub function_scopes: HashMap<usize, ScopeId>,
    pub classes: Vec<ClassInfo<'a>>,
    /// Class index of each class definition, keyed by the address of its node.
    pub class_ids: HashMap<usize, usize>,
    /// Module-level functions by name.
    pub functions: HashMap<&'a str, ScopeId>,
}

/// `if TYPE_CHECKING:` / `if typing.TYPE_CHECKING:`: a block only type checkers read.
pub fn is_type_checking(test: &Expr) -> bool {
    match test {
        Expr::Name(n) => n.id.as_str() == "TYPE_CHECKING",
        Expr::Attribute(a) => a.attr.as_str() == "TYPE_CHECKING",
        _ => false,
    }
}

pub fn node_key<T>(node: &T) -> usize {
    node as *const T as usize
}

struct Pass<'a, 'r> {
    syms: Symbols<'a>,
    lines: &'r LineIndex,
    this: &'r str,
    is_package: bool,
    resolver: &'r dyn Resolver,
    local_defs: HashSet<&'a str>,
}

/// Runs the first pass over a parsed module.
pub fn collect<'a>(
    suite: &'a [Stmt],
    lines: &LineIndex,
    this: &str,
    is_package: bool,
    resolver: &dyn Resolver,
) -> Symbols<'a> {
    let mut pass = Pass {
        syms: Symbols {
            scopes: vec![Scope::default()],
            ..Symbols::default()
        },
        lines,
        this,
        is_package,
        resolver,
        local_defs: HashSet::new(),
    };
    pass.block(suite, MODULE_SCOPE, None, false);
    let Pass {
        mut syms,
        local_defs,
        ..
    } = pass;
    for name in local_defs {
        syms.imports.shadow(name);
    }
    syms
}

impl<'a> Pass<'a, '_> {
    fn bind(&mut self, scope: ScopeId, class: Option<usize>, target: &'a Expr, b: Binding<'a>) {
        match target {
            Expr::Name(n) => {
                if let Some(s) = self.syms.scopes.get_mut(scope) {
                    s.vars.entry(n.id.as_str()).or_default().push(b);
                }
            }
            Expr::Attribute(a) => {
                let is_self = matches!(a.value.as_ref(), Expr::Name(n) if n.id.as_str() == "self");
                if let (true, Some(c)) = (is_self, class) {
                    if let Some(info) = self.syms.classes.get_mut(c) {
                        info.attrs.entry(a.attr.as_str()).or_default().push(b);
                    }
                }
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn function(
        &mut self,
        key: usize,
        name: &'a str,
        args: &'a ast::Parameters,
        body: &'a [Stmt],
        scope: ScopeId,
        class: Option<usize>,
        guarded: bool,
    ) {
        let id = self.syms.scopes.len();
        let mut s = Scope {
            parent: Some(scope),
            ..Scope::default()
        };
        for arg in args
            .posonlyargs
            .iter()
            .chain(&args.args)
            .chain(&args.kwonlyargs)
        {
            let pname = arg.parameter.name.as_str();
            match &arg.default {
                Some(d) => s.vars.entry(pname).or_default().push(Binding {
                    value: d,
                    guarded,
                    scope,
                }),
                None => {
                    s.params.insert(pname);
                }
            }
        }
        for extra in [&args.vararg, &args.kwarg].into_iter().flatten() {
            s.params.insert(extra.name.as_str());
        }
        self.syms.scopes.push(s);
        self.syms.function_scopes.insert(key, id);
        if scope == MODULE_SCOPE {
            self.syms.functions.insert(name, id);
            self.local_defs.insert(name);
        }
        if let Some(info) = class.and_then(|c| self.syms.classes.get_mut(c)) {
            info.methods.insert(name);
            info.method_scopes.entry(name).or_insert(id);
        }
        self.block(body, id, class, guarded);
    }

    fn block(&mut self, stmts: &'a [Stmt], scope: ScopeId, class: Option<usize>, guarded: bool) {
        let mut guarded = guarded;
        for stmt in stmts {
            self.stmt(stmt, scope, class, guarded);
            // `if not torch.cuda.is_available(): return ...`: what follows has a GPU.
            if let Stmt::If(i) = stmt {
                if i.elif_else_clauses.is_empty()
                    && super::walk::leaves(&i.body)
                    && guard_test(&i.test, &self.syms.imports).is_some()
                {
                    guarded = true;
                }
            }
        }
    }

    fn stmt(&mut self, stmt: &'a Stmt, scope: ScopeId, class: Option<usize>, guarded: bool) {
        match stmt {
            Stmt::Import(_) | Stmt::ImportFrom(_) => {
                let line = self.lines.line(stmt.start().to_u32());
                self.syms.imports.record(
                    stmt,
                    line,
                    guarded,
                    scope,
                    self.this,
                    self.is_package,
                    self.resolver,
                );
            }
            Stmt::FunctionDef(f) => self.function(
                node_key(f),
                f.name.as_str(),
                &f.parameters,
                &f.body,
                scope,
                class,
                guarded,
            ),
            Stmt::ClassDef(c) => {
                let id = self.syms.classes.len();
                self.syms.classes.push(ClassInfo::default());
                self.syms.class_ids.insert(node_key(c), id);
                if scope == MODULE_SCOPE {
                    self.local_defs.insert(c.name.as_str());
                }
                self.block(&c.body, scope, Some(id), guarded);
            }
            Stmt::Assign(a) => {
                for t in &a.targets {
                    self.bind(
                        scope,
                        class,
                        t,
                        Binding {
                            value: &a.value,
                            guarded,
                            scope,
                        },
                    );
                }
            }
            Stmt::AnnAssign(a) => {
                if let Some(v) = &a.value {
                    self.bind(
                        scope,
                        class,
                        &a.target,
                        Binding {
                            value: v,
                            guarded,
                            scope,
                        },
                    );
                }
            }
            Stmt::Return(r) => {
                let check = r
                    .value
                    .as_deref()
                    .is_some_and(|v| super::devices::is_check_expr(v, &self.syms.imports, 0));
                if let (Some(v), Some(s)) = (&r.value, self.syms.scopes.get_mut(scope)) {
                    s.returns_check |= check;
                    s.returns.push(Binding {
                        value: v,
                        guarded,
                        scope,
                    });
                }
            }
            Stmt::If(i) => self.if_chain(
                &i.test,
                &i.body,
                &i.elif_else_clauses,
                scope,
                class,
                guarded,
            ),
            Stmt::Try(t) => self.try_stmt(
                &t.body,
                &t.handlers,
                &t.orelse,
                &t.finalbody,
                scope,
                class,
                guarded,
            ),
            Stmt::For(f) => {
                self.block(&f.body, scope, class, guarded);
                self.block(&f.orelse, scope, class, guarded);
            }
            Stmt::While(w) => {
                self.block(&w.body, scope, class, guarded);
                self.block(&w.orelse, scope, class, guarded);
            }
            Stmt::With(w) => self.block(&w.body, scope, class, guarded),
            Stmt::Match(m) => {
                for case in &m.cases {
                    self.block(&case.body, scope, class, guarded);
                }
            }
            _ => {}
        }
    }

    /// An `if` with its `elif`s and `else`, as rustpython's tree had it (each `elif` an `if` in
    /// the `else` of the one before). Imports for type checkers only never run.
    #[allow(clippy::too_many_arguments)]
    fn if_chain(
        &mut self,
        test: &'a Expr,
        body: &'a [Stmt],
        rest: &'a [ast::ElifElseClause],
        scope: ScopeId,
        class: Option<usize>,
        guarded: bool,
    ) {
        let g = if is_type_checking(test) {
            guarded
        } else {
            let g = guarded || guard_test(test, &self.syms.imports).is_some();
            self.block(body, scope, class, g);
            g
        };
        match rest.split_first() {
            None => {}
            Some((c, more)) => match &c.test {
                Some(t) => self.if_chain(t, &c.body, more, scope, class, g),
                None => self.block(&c.body, scope, class, g),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn try_stmt(
        &mut self,
        body: &'a [Stmt],
        handlers: &'a [ast::ExceptHandler],
        orelse: &'a [Stmt],
        finalbody: &'a [Stmt],
        scope: ScopeId,
        class: Option<usize>,
        guarded: bool,
    ) {
        let caught = handlers.iter().any(catches_import_error);
        self.block(body, scope, class, guarded || caught);
        for h in handlers {
            let ast::ExceptHandler::ExceptHandler(h) = h;
            self.block(&h.body, scope, class, guarded || caught);
        }
        self.block(orelse, scope, class, guarded);
        self.block(finalbody, scope, class, guarded);
    }
}
