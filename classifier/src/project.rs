//! Multi-file functions: module names of the files, the entry module, resolution of imports of
//! the project's own modules (absolute and relative), and which files the entry reaches.
//!
//! The entry is `func.py` (the Knative Functions Python template; the shallowest one), else
//! `main.py`, `app.py`, `handler.py`, `__main__.py`; with a single file, that file. Files the
//! entry never imports (directly or through other local modules) are not counted: a training
//! script or a test beside the function does not make it a GPU function. With no entry, every
//! file counts.

use std::collections::{HashMap, VecDeque};

use super::fallback::TokenImport;
use super::imports::Resolver;

/// Entry file names, by preference: the Knative template, then what serving frameworks load
/// (`main.py`, `app.py`; TorchServe and Lambda handlers; BentoML `service.py`).
pub const ENTRY_NAMES: &[&str] = &[
    "func.py",
    "main.py",
    "app.py",
    "handler.py",
    "lambda_function.py",
    "service.py",
    "__main__.py",
];

/// Entry names that are also common helper-module names (Triton and Truss load `model.py`,
/// Vertex/SageMaker-style servers `predictor.py`): an entry only when no other file of the
/// function imports it.
pub const WEAK_ENTRY_NAMES: &[&str] = &["predictor.py", "model.py", "inference.py", "serve.py"];

/// Functions a framework calls, and methods of the classes it loads (TorchServe
/// `initialize`/`handle`, Triton `initialize`/`execute`, KServe and Truss `load`/`predict`,
/// Lambda `lambda_handler`): with no entry file by name, the file defining one is the entry.
pub const ENTRY_FUNCTIONS: &[&str] = &[
    "handle",
    "handler",
    "lambda_handler",
    "predict",
    "initialize",
    "execute",
    "load",
    "inference",
];

/// The module layout of one function.
#[derive(Debug, Default)]
pub struct Layout {
    /// Dotted module name of each file (`pkg/model.py` is `pkg.model`, `pkg/__init__.py` is `pkg`).
    pub modules: Vec<String>,
    pub is_package: Vec<bool>,
    by_module: HashMap<String, usize>,
    /// Module prefix of the entry's directory (`function.` for `function/func.py`), tried for
    /// absolute imports since Python puts the entry's directory on `sys.path`.
    entry_prefix: String,
    pub entry: Option<usize>,
}

/// `./a\b.py` -> `a/b.py`.
pub fn normalise_path(path: &str) -> String {
    let p = path.replace('\\', "/");
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn module_of(path: &str) -> (String, bool) {
    let p = normalise_path(path);
    let stem = p.strip_suffix(".py").unwrap_or(&p);
    match stem
        .strip_suffix("/__init__")
        .or(if stem == "__init__" { Some("") } else { None })
    {
        Some(pkg) => (pkg.replace('/', "."), true),
        None => (stem.replace('/', "."), false),
    }
}

impl Layout {
    pub fn new(paths: &[&str]) -> Layout {
        let mut layout = Layout::default();
        for (i, p) in paths.iter().enumerate() {
            let (module, pkg) = module_of(p);
            layout.by_module.entry(module.clone()).or_insert(i);
            layout.modules.push(module);
            layout.is_package.push(pkg);
        }
        layout.entry = if paths.len() == 1 {
            Some(0)
        } else {
            ENTRY_NAMES.iter().find_map(|name| {
                paths
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        let n = normalise_path(p);
                        n == *name || n.ends_with(&format!("/{name}"))
                    })
                    .min_by_key(|(_, p)| normalise_path(p).matches('/').count())
                    .map(|(i, _)| i)
            })
        };
        if let Some(e) = layout.entry {
            let module = layout.modules.get(e).cloned().unwrap_or_default();
            if let Some((dir, _)) = module.rsplit_once('.') {
                layout.entry_prefix = format!("{dir}.");
            }
        }
        layout
    }

    /// With no entry by name: a file with a weak entry name, else one defining an entry function
    /// (`defines_entry`), that no other file imports; the shallowest. With none, no entry (every
    /// file counts).
    pub fn choose_entry(
        &mut self,
        paths: &[&str],
        imports: &[Vec<TokenImport>],
        defines_entry: impl Fn(usize) -> bool,
    ) {
        if self.entry.is_some() || paths.len() < 2 {
            return;
        }
        let mut imported = vec![false; paths.len()];
        for (i, imps) in imports.iter().enumerate() {
            let from = self.modules.get(i).map_or("", String::as_str);
            let pkg = self.is_package.get(i).copied().unwrap_or(false);
            for imp in imps {
                let subs = imp.names.iter().map(|n| {
                    if imp.module.is_empty() {
                        n.clone()
                    } else {
                        format!("{}.{n}", imp.module)
                    }
                });
                for m in std::iter::once(imp.module.clone()).chain(subs) {
                    if let Some(j) = self.resolve(from, pkg, imp.level, &m) {
                        if j != i {
                            if let Some(slot) = imported.get_mut(j) {
                                *slot = true;
                            }
                        }
                    }
                }
            }
        }
        let candidate = |i: usize| {
            !imported.get(i).copied().unwrap_or(true)
                && !self.is_package.get(i).copied().unwrap_or(false)
        };
        let depth = |i: &usize| {
            paths
                .get(*i)
                .map_or(0, |p| normalise_path(p).matches('/').count())
        };
        let by_name = WEAK_ENTRY_NAMES.iter().find_map(|name| {
            (0..paths.len())
                .filter(|&i| {
                    let n = paths.get(i).map(|p| normalise_path(p)).unwrap_or_default();
                    candidate(i) && (n == *name || n.ends_with(&format!("/{name}")))
                })
                .min_by_key(depth)
        });
        self.entry = by_name.or_else(|| {
            (0..paths.len())
                .filter(|&i| candidate(i) && defines_entry(i))
                .min_by_key(depth)
        });
        if let Some(e) = self.entry {
            let module = self.modules.get(e).cloned().unwrap_or_default();
            if let Some((dir, _)) = module.rsplit_once('.') {
                self.entry_prefix = format!("{dir}.");
            }
        }
    }

    /// The files the entry reaches through imports (all files when there is no entry).
    pub fn reachable(&self, imports: &[Vec<TokenImport>]) -> Vec<bool> {
        let n = self.modules.len();
        let Some(entry) = self.entry else {
            return vec![true; n];
        };
        let mut seen = vec![false; n];
        let mut queue = VecDeque::from([entry]);
        while let Some(i) = queue.pop_front() {
            let Some(slot) = seen.get_mut(i) else {
                continue;
            };
            if *slot {
                continue;
            }
            *slot = true;
            let from = self.modules.get(i).map_or("", String::as_str);
            let pkg = self.is_package.get(i).copied().unwrap_or(false);
            // Importing a module runs its packages' __init__ files.
            let mut parent = from;
            while let Some((p, _)) = parent.rsplit_once('.') {
                if let Some(&j) = self.by_module.get(p) {
                    queue.push_back(j);
                }
                parent = p;
            }
            for imp in imports.get(i).map_or(&[][..], Vec::as_slice) {
                if let Some(j) = self.resolve(from, pkg, imp.level, &imp.module) {
                    queue.push_back(j);
                }
                for name in &imp.names {
                    let sub = if imp.module.is_empty() {
                        name.clone()
                    } else {
                        format!("{}.{name}", imp.module)
                    };
                    if let Some(j) = self.resolve(from, pkg, imp.level, &sub) {
                        queue.push_back(j);
                    }
                }
                if !imp.from {
                    // `import a.b.c` also runs a and a.b.
                    let mut m = imp.module.as_str();
                    while let Some((p, _)) = m.rsplit_once('.') {
                        if let Some(j) = self.resolve(from, pkg, 0, p) {
                            queue.push_back(j);
                        }
                        m = p;
                    }
                }
            }
        }
        seen
    }
}

impl Resolver for Layout {
    fn resolve(&self, from: &str, is_package: bool, level: u32, module: &str) -> Option<usize> {
        if level == 0 {
            if module.is_empty() {
                return None;
            }
            return self.by_module.get(module).copied().or_else(|| {
                self.by_module
                    .get(&format!("{}{module}", self.entry_prefix))
                    .copied()
            });
        }
        let mut package: &str = if is_package {
            from
        } else {
            from.rsplit_once('.').map_or("", |(p, _)| p)
        };
        for _ in 1..level {
            package = package.rsplit_once('.').map_or("", |(p, _)| p);
        }
        let target = match (package.is_empty(), module.is_empty()) {
            (_, true) => package.to_owned(),
            (true, false) => module.to_owned(),
            (false, false) => format!("{package}.{module}"),
        };
        self.by_module.get(&target).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_and_relative_imports_resolve() {
        let l = Layout::new(&["func.py", "model.py", "pkg/__init__.py", "pkg/util.py"]);
        assert_eq!(l.entry, Some(0));
        assert_eq!(l.resolve("func", false, 1, "model"), Some(1));
        assert_eq!(l.resolve("func", false, 0, "model"), Some(1));
        assert_eq!(l.resolve("pkg.util", false, 1, ""), Some(2));
        assert_eq!(l.resolve("pkg", true, 1, "util"), Some(3));
        assert_eq!(l.resolve("pkg.util", false, 2, "model"), Some(1));
        assert_eq!(l.resolve("func", false, 0, "torch"), None);
    }

    #[test]
    fn the_entry_directory_is_on_the_path() {
        let l = Layout::new(&["function/func.py", "function/helper.py", "train.py"]);
        assert_eq!(l.entry, Some(0));
        assert_eq!(l.resolve("function.func", false, 0, "helper"), Some(1));
    }
}
