//! A guard at the call site, carried into the callee: `if has_gpu(): run_gpu(x) else:
//! run_cpu(x)` gives `run_gpu`'s CUDA use a CPU path. A function of the project whose every
//! reference (call, or the name passed on) sits under a device guard, or inside a function that
//! is itself reached only that way, runs only when there is a GPU; so does a module of the
//! function (not the entry) that is imported only there. Device use, CUDA calls and GPU-library
//! imports inside them are guarded. A function never referred to (a handler the framework calls)
//! carries nothing.
//!
//! One lookup pass over the references the walk recorded, iterated to a fixed point (bounded):
//! no second walk over the tree.

use std::collections::{HashMap, HashSet};

use super::imports::Target;
use super::symbols::ScopeId;
use super::values::Eval;
use super::walk::{Analysis, FunctionId, FunctionRef, RefTarget};
use gaia_contract::{Finding, FindingKind};

/// Rounds of propagation from a guard into callees (a chain of helpers this deep).
const MAX_ROUNDS: usize = 8;
/// Rounds of removing candidates reached without a guard; not settled by then, nothing is
/// carried.
const MAX_SHRINK_ROUNDS: usize = 64;

/// Is `at` (a scope of a module), or a scope around it, a function reached only under guards?
fn inside(eval: &Eval<'_, '_>, guarded: &HashSet<FunctionId>, at: FunctionId) -> bool {
    let (module, mut scope) = at;
    let Some(m) = eval.modules.get(module).and_then(Option::as_ref) else {
        return false;
    };
    for _ in 0..64 {
        if guarded.contains(&(module, scope)) {
            return true;
        }
        match m.syms.scopes.get(scope).and_then(|s| s.parent) {
            Some(p) => scope = p,
            None => return false,
        }
    }
    false
}

/// The function of the project a reference names, if any.
fn resolve(eval: &Eval<'_, '_>, r: &FunctionRef<'_>) -> Option<FunctionId> {
    let (module, _) = r.from;
    let m = eval.modules.get(module).and_then(Option::as_ref)?;
    let function_of = |module: usize, name: &str| {
        let m = eval.modules.get(module).and_then(Option::as_ref)?;
        m.syms.functions.get(name).map(|&s| (module, s))
    };
    match r.target {
        RefTarget::Name(id) => {
            function_of(module, id).or_else(|| match &m.syms.imports.get(id)?.target {
                Target::Local {
                    module: other,
                    attr: Some(attr),
                } => function_of(*other, attr),
                _ => None,
            })
        }
        RefTarget::Attr("self", attr) => {
            let class = m.syms.classes.get(r.class?)?;
            class.method_scopes.get(attr).map(|&s| (module, s))
        }
        RefTarget::Attr(base, attr) => match &m.syms.imports.get(base)?.target {
            Target::Local {
                module: other,
                attr: None,
            } => function_of(*other, attr),
            _ => None,
        },
    }
}

/// The findings of the walked modules, with guards carried into callees.
pub fn carry_guards(
    eval: &Eval<'_, '_>,
    entry: Option<usize>,
    walked: Vec<(usize, Analysis<'_>)>,
) -> Vec<(usize, Vec<Finding>)> {
    let needs_carrying = walked.iter().any(|(_, a)| {
        a.findings.iter().any(|f| {
            !f.guarded
                && matches!(
                    f.kind,
                    FindingKind::DeviceUse | FindingKind::CudaCall | FindingKind::GpuLibrary
                )
        })
    });
    if !needs_carrying || walked.iter().any(|(_, a)| !a.refs_complete) {
        return walked.into_iter().map(|(i, a)| (i, a.findings)).collect();
    }
    let mut refs: HashMap<FunctionId, Vec<(FunctionId, bool)>> = HashMap::new();
    for (_, a) in &walked {
        for r in &a.refs {
            if let Some(callee) = resolve(eval, r) {
                refs.entry(callee).or_default().push((r.from, r.guarded));
            }
        }
    }
    // Import sites of each module of the function: (importing scope, guarded).
    let mut imported_at: HashMap<usize, Vec<(FunctionId, bool)>> = HashMap::new();
    for (i, m) in eval.modules.iter().enumerate() {
        let Some(m) = m else { continue };
        for imp in &m.syms.imports.imports {
            if let Target::Local { module, .. } = imp.target {
                if module != i {
                    imported_at
                        .entry(module)
                        .or_default()
                        .push(((i, imp.scope as ScopeId), imp.guarded));
                }
            }
        }
    }
    // Candidates: what a guarded reference (or import) reaches, directly or through the
    // references made inside it. Then the greatest fixed point: a candidate leaves the set when
    // some reference (import) outside a guard comes from code that is not itself in the set (the
    // module level, a handler the framework calls, ...). A recursive handler or a cycle of
    // helpers that no guard reaches is never a candidate.
    let mut guarded: HashSet<FunctionId> = HashSet::new();
    let mut guarded_modules: HashSet<usize> = HashSet::new();
    for (callee, sites) in &refs {
        if sites.iter().any(|(_, g)| *g) {
            guarded.insert(*callee);
        }
    }
    for (module, sites) in &imported_at {
        if Some(*module) != entry && sites.iter().any(|(_, g)| *g) {
            guarded_modules.insert(*module);
        }
    }
    let within = |gf: &HashSet<FunctionId>, gm: &HashSet<usize>, from: FunctionId| {
        gm.contains(&from.0) || inside(eval, gf, from)
    };
    for _ in 0..MAX_ROUNDS {
        let before = guarded.len() + guarded_modules.len();
        for (callee, sites) in &refs {
            if !guarded.contains(callee)
                && sites
                    .iter()
                    .any(|(from, _)| within(&guarded, &guarded_modules, *from))
            {
                guarded.insert(*callee);
            }
        }
        for (module, sites) in &imported_at {
            if Some(*module) != entry
                && !guarded_modules.contains(module)
                && sites
                    .iter()
                    .any(|(from, _)| within(&guarded, &guarded_modules, *from))
            {
                guarded_modules.insert(*module);
            }
        }
        if guarded.len() + guarded_modules.len() == before {
            break;
        }
    }
    let mut converged = false;
    for _ in 0..MAX_SHRINK_ROUNDS {
        let before = guarded.len() + guarded_modules.len();
        let drop_f: Vec<FunctionId> = refs
            .iter()
            .filter(|(callee, sites)| {
                guarded.contains(callee)
                    && sites
                        .iter()
                        .any(|(from, g)| !*g && !within(&guarded, &guarded_modules, *from))
            })
            .map(|(c, _)| *c)
            .collect();
        for c in drop_f {
            guarded.remove(&c);
        }
        let drop_m: Vec<usize> = imported_at
            .iter()
            .filter(|(m, sites)| {
                guarded_modules.contains(m)
                    && sites
                        .iter()
                        .any(|(from, g)| !*g && !within(&guarded, &guarded_modules, *from))
            })
            .map(|(m, _)| *m)
            .collect();
        for m in drop_m {
            guarded_modules.remove(&m);
        }
        if guarded.len() + guarded_modules.len() == before {
            converged = true;
            break;
        }
    }
    if !converged {
        guarded.clear();
        guarded_modules.clear();
    }
    let mut out = Vec::new();
    for (module, a) in walked {
        let carried_module = guarded_modules.contains(&module);
        let mut findings = Vec::with_capacity(a.findings.len());
        for (f, scope) in a.findings.into_iter().zip(a.scopes) {
            let device = matches!(
                f.kind,
                FindingKind::DeviceUse | FindingKind::CudaCall | FindingKind::GpuLibrary
            );
            if device && !f.guarded && (carried_module || inside(eval, &guarded, (module, scope))) {
                findings.push(f.guarded(true));
            } else {
                findings.push(f);
            }
        }
        out.push((module, findings));
    }
    out
}
