//! Imports: what each local name refers to (`import torch as t`, `from torch import cuda`,
//! `from .model import load`), whether an import is guarded by an `ImportError` fallback, and
//! what kind of library it is.

use std::collections::HashMap;

use ruff_python_ast::{self as ast, Stmt};

use super::rules;
use gaia_contract::FindingKind;

/// What a local name bound by an import refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A third-party or standard module, or something in it: dotted path (`torch.cuda`).
    External(String),
    /// A module of the function's own project (index into the project), and optionally a name
    /// defined in it.
    Local { module: usize, attr: Option<String> },
}

/// One import statement's binding.
#[derive(Clone, Debug)]
pub struct Import {
    /// The name bound in the importing module.
    pub local: String,
    pub target: Target,
    /// The dotted module imported (`torch.nn.functional`; for `from x import y`, `x.y`).
    pub module: String,
    pub line: u32,
    /// Inside `try:` with an `except ImportError` (or broader) handler, or under a device guard.
    pub guarded: bool,
    /// The scope the import statement sits in (a lazy import inside a function).
    pub scope: usize,
}

/// Resolves a module name of the function's own project.
pub trait Resolver {
    /// `level` dots (0 for an absolute import), then `module` (may be empty), seen from the
    /// module named `from`. `is_package` tells whether `from` is a package (`__init__.py`).
    fn resolve(&self, from: &str, is_package: bool, level: u32, module: &str) -> Option<usize>;
}

/// The import table of one module.
#[derive(Debug, Default)]
pub struct ImportTable {
    pub imports: Vec<Import>,
    by_name: HashMap<String, usize>,
}

impl ImportTable {
    pub fn get(&self, local: &str) -> Option<&Import> {
        self.by_name.get(local).and_then(|&i| self.imports.get(i))
    }

    /// Removes a name that the module itself defines (a local `def cuda():` shadows nothing
    /// imported, and is no GPU call).
    pub fn shadow(&mut self, local: &str) {
        self.by_name.remove(local);
    }

    fn add(&mut self, import: Import) {
        self.by_name
            .insert(import.local.clone(), self.imports.len());
        self.imports.push(import);
    }

    /// Records the bindings of an import statement.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        stmt: &Stmt,
        line: u32,
        guarded: bool,
        scope: usize,
        this: &str,
        is_package: bool,
        resolver: &dyn Resolver,
    ) {
        match stmt {
            Stmt::Import(ast::StmtImport { names, .. }) => {
                for alias in names {
                    let full = alias.name.as_str();
                    let local_module = resolver.resolve(this, is_package, 0, full);
                    let (local, target) = match &alias.asname {
                        Some(as_name) => (
                            as_name.to_string(),
                            match local_module {
                                Some(module) => Target::Local { module, attr: None },
                                None => Target::External(full.to_owned()),
                            },
                        ),
                        None => {
                            // `import a.b.c` binds `a`.
                            let root = full.split('.').next().unwrap_or(full);
                            let target = match resolver.resolve(this, is_package, 0, root) {
                                Some(module) => Target::Local { module, attr: None },
                                None => Target::External(root.to_owned()),
                            };
                            (root.to_owned(), target)
                        }
                    };
                    self.add(Import {
                        local,
                        target,
                        module: full.to_owned(),
                        line,
                        guarded,
                        scope,
                    });
                }
            }
            Stmt::ImportFrom(ast::StmtImportFrom {
                module,
                names,
                level,
                ..
            }) => {
                let level = *level;
                let base = module.as_ref().map_or("", |m| m.as_str());
                let base_module = resolver.resolve(this, is_package, level, base);
                for alias in names {
                    let name = alias.name.as_str();
                    if name == "*" {
                        continue;
                    }
                    let local = alias.asname.as_ref().map_or(name, |a| a.as_str());
                    let sub = if base.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{base}.{name}")
                    };
                    let target = if level > 0 || base_module.is_some() {
                        match resolver.resolve(this, is_package, level, &sub) {
                            Some(module) => Target::Local { module, attr: None },
                            None => match base_module {
                                Some(module) => Target::Local {
                                    module,
                                    attr: Some(name.to_owned()),
                                },
                                // A relative import of something not in the project.
                                None => Target::External(format!(".{sub}")),
                            },
                        }
                    } else {
                        Target::External(sub.clone())
                    };
                    let dotted = if level > 0 {
                        format!("{}{sub}", ".".repeat(level as usize))
                    } else {
                        sub
                    };
                    self.add(Import {
                        local: local.to_owned(),
                        target,
                        module: dotted,
                        line,
                        guarded,
                        scope,
                    });
                }
            }
            _ => {}
        }
    }
}

/// What kind of library a dotted module is, for findings: a GPU-only library, a GPU-capable
/// framework, a CPU library, or nothing of interest.
pub fn library_kind(module: &str) -> Option<(FindingKind, &'static str)> {
    if module.starts_with('.') {
        return None;
    }
    if let Some(lib) = rules::lookup(rules::GPU_ONLY_LIBRARIES, module) {
        return Some((FindingKind::GpuLibrary, lib));
    }
    let root = module.split('.').next().unwrap_or(module);
    if let Some(fw) = rules::lookup(rules::GPU_CAPABLE_FRAMEWORKS, root) {
        return Some((FindingKind::FrameworkImport, fw));
    }
    if let Some(lib) = rules::lookup(rules::CPU_LIBRARIES, root) {
        return Some((FindingKind::CpuLibraryImport, lib));
    }
    None
}

/// Does an `except` clause catch a failed import (`ImportError`, `ModuleNotFoundError`,
/// `Exception`, `BaseException`, or everything)?
pub fn catches_import_error(handler: &ast::ExceptHandler) -> bool {
    let ast::ExceptHandler::ExceptHandler(h) = handler;
    let Some(ty) = &h.type_ else { return true };
    let catches = |e: &ast::Expr| {
        let name = match e {
            ast::Expr::Name(n) => n.id.as_str(),
            ast::Expr::Attribute(a) => a.attr.as_str(),
            _ => return false,
        };
        matches!(
            name,
            "ImportError" | "ModuleNotFoundError" | "Exception" | "BaseException" | "OSError"
        )
    };
    match ty.as_ref() {
        ast::Expr::Tuple(t) => t.elts.iter().any(catches),
        e => catches(e),
    }
}

/// The dotted name an expression refers to through the imports (`t.cuda.synchronize` with
/// `import torch as t` is `torch.cuda.synchronize`), or `None` for anything local or computed.
pub fn qualname(expr: &ast::Expr, imports: &ImportTable) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let mut e = expr;
    loop {
        match e {
            ast::Expr::Attribute(a) => {
                parts.push(a.attr.as_str());
                if parts.len() > 32 {
                    return None;
                }
                e = &a.value;
            }
            ast::Expr::Name(n) => {
                let import = imports.get(n.id.as_str())?;
                let Target::External(base) = &import.target else {
                    return None;
                };
                let mut out = base.clone();
                for p in parts.iter().rev() {
                    out.push('.');
                    out.push_str(p);
                }
                return Some(out);
            }
            _ => return None,
        }
    }
}
