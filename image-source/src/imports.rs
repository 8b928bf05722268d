//! Which candidate files the function's entry reaches: a line-level scan of `import` statements
//! (enough to follow a function's own modules; the classifier parses the files properly later),
//! resolved the way Python's search path would resolve them inside the image.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::entry::Plan;
use crate::paths;

/// One import statement: `level` leading dots, the dotted module, and the names of a
/// `from ... import a, b` (which may be submodules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub level: usize,
    pub module: String,
    pub names: Vec<String>,
}

/// The imports of one Python source: `import a.b as c, d`, `from .m import (x, y)`, and
/// `importlib.import_module("m")` / `__import__("m")` with a literal name.
pub fn scan(source: &str) -> Vec<Import> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut depth = 0i32;
    for line in source.lines() {
        let code = strip_comment(line);
        for literal in dynamic_imports(code) {
            out.push(Import {
                level: 0,
                module: literal,
                names: Vec::new(),
            });
        }
        logical.push_str(code.trim_end_matches('\\'));
        logical.push(' ');
        depth += code.matches('(').count() as i32 - code.matches(')').count() as i32;
        if depth > 0 || code.trim_end().ends_with('\\') {
            continue;
        }
        depth = 0;
        let statement = std::mem::take(&mut logical);
        for part in statement.split(';') {
            if let Some(i) = parse_statement(part.trim()) {
                out.extend(i);
            }
        }
    }
    out
}

fn strip_comment(line: &str) -> &str {
    // A `#` inside a string is rare on import lines; dynamic imports are matched before this
    // matters only when the string itself holds a `#`.
    line.split_once('#').map_or(line, |(c, _)| c)
}

fn dynamic_imports(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for call in ["import_module(", "__import__("] {
        let mut rest = code;
        while let Some(i) = rest.find(call) {
            rest = &rest[i + call.len()..];
            let t = rest.trim_start();
            let Some(q) = t.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            if let Some(end) = t[1..].find(q) {
                let name = &t[1..1 + end];
                if !name.is_empty() && name.split('.').all(is_identifier) {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_alphabetic() || f == '_')
        && c.all(|x| x.is_alphanumeric() || x == '_')
}

fn parse_statement(s: &str) -> Option<Vec<Import>> {
    if let Some(rest) = s.strip_prefix("import ") {
        let imports = rest
            .split(',')
            .filter_map(|item| {
                let module = item.split_whitespace().next()?;
                module.split('.').all(is_identifier).then(|| Import {
                    level: 0,
                    module: module.to_string(),
                    names: Vec::new(),
                })
            })
            .collect();
        return Some(imports);
    }
    let rest = s.strip_prefix("from ")?;
    let (from, names) = rest.split_once(" import ")?;
    let from = from.trim();
    let level = from.chars().take_while(|c| *c == '.').count();
    let module = from[level..].trim().to_string();
    if !module.is_empty() && !module.split('.').all(is_identifier) {
        return None;
    }
    let names = names
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .filter_map(|n| n.split_whitespace().next())
        .filter(|n| is_identifier(n))
        .map(str::to_string)
        .collect();
    Some(vec![Import {
        level,
        module,
        names,
    }])
}

/// The files `import` of dotted `module` may load from directory `dir`: the module itself
/// (`m.py` or `m/__init__.py`) and the packages on the way (`a/__init__.py` for `a.b`).
fn module_files(dir: &str, module: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = module.split('.').filter(|p| !p.is_empty()).collect();
    let base = |n: usize| {
        let sub = parts[..n].join("/");
        match (dir.is_empty(), sub.is_empty()) {
            (_, true) => dir.to_string(),
            (true, false) => sub,
            (false, false) => format!("{dir}/{sub}"),
        }
    };
    for n in 1..parts.len() {
        out.push(format!("{}/__init__.py", base(n)));
    }
    if parts.is_empty() {
        out.push(format!("{dir}/__init__.py"));
    } else {
        let b = base(parts.len());
        out.push(format!("{b}.py"));
        out.push(format!("{b}/__init__.py"));
    }
    out
}

/// The candidate files reachable from the entries through imports, by image path. `entries`
/// are image paths of entry files; `entry_module` a dotted module searched on the plan's path.
pub fn reachable(
    files: &BTreeMap<String, Vec<u8>>,
    plan: &Plan,
    entries: &[String],
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    for e in entries {
        if files.contains_key(e) && seen.insert(e.clone()) {
            queue.push_back(e.clone());
        }
    }
    if let Some(m) = &plan.entry_module {
        for dir in &plan.search {
            for f in module_files(dir, m) {
                if files.contains_key(&f) && seen.insert(f.clone()) {
                    queue.push_back(f);
                }
            }
        }
    }
    while let Some(file) = queue.pop_front() {
        let Some(bytes) = files.get(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(bytes);
        let dir = paths::parent(&file).to_string();
        // Absolute imports: the entry's directory (the file's own for scripts), then the plan's
        // search path.
        let mut search: Vec<&str> = vec![dir.as_str()];
        search.extend(plan.search.iter().map(String::as_str));
        for import in scan(&text) {
            let mut targets = Vec::new();
            let bases: Vec<String> = if import.level > 0 {
                let mut d = dir.clone();
                for _ in 1..import.level {
                    d = paths::parent(&d).to_string();
                }
                vec![d]
            } else {
                search.iter().map(|s| s.to_string()).collect()
            };
            for base in &bases {
                targets.extend(module_files(base, &import.module));
                for name in &import.names {
                    let sub = if import.module.is_empty() {
                        name.clone()
                    } else {
                        format!("{}.{name}", import.module)
                    };
                    targets.extend(module_files(base, &sub));
                }
            }
            for t in targets {
                if files.contains_key(&t) && seen.insert(t.clone()) {
                    queue.push_back(t);
                }
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_the_import_forms() {
        let src = "import os, torch.nn as nn\nfrom .model import (\n  load,\n  Net,\n)\nfrom . import util  # helpers\nx = importlib.import_module('plugins.gpu')\nfrom __future__ import annotations; import lib.a\n";
        let got = scan(src);
        let modules: Vec<(usize, &str)> =
            got.iter().map(|i| (i.level, i.module.as_str())).collect();
        assert_eq!(
            modules,
            [
                (0, "os"),
                (0, "torch.nn"),
                (1, "model"),
                (1, ""),
                (0, "plugins.gpu"),
                (0, "__future__"),
                (0, "lib.a")
            ]
        );
        assert_eq!(got[2].names, ["load", "Net"]);
        assert_eq!(got[3].names, ["util"]);
    }

    #[test]
    fn follows_local_modules_only() {
        let files: BTreeMap<String, Vec<u8>> = [
            (
                "app/main.py",
                "import torch\nfrom lib import model\nfrom .cfg import x\n",
            ),
            ("app/lib/__init__.py", ""),
            ("app/lib/model.py", "from . import layers\n"),
            ("app/lib/layers.py", "import numpy\n"),
            ("app/cfg.py", ""),
            ("app/train.py", "import torch.distributed\n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
        let plan = Plan {
            roots: vec!["app".into()],
            entry_file: Some("app/main.py".into()),
            entry_module: None,
            search: vec!["app".into()],
        };
        let got = reachable(&files, &plan, &["app/main.py".to_string()]);
        assert!(got.contains("app/lib/layers.py"), "{got:?}");
        assert!(got.contains("app/cfg.py"));
        assert!(!got.contains("app/train.py"));
        assert_eq!(got.len(), 5);
    }
}
