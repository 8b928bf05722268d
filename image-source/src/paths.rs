//! Paths inside an image: normalising tar entry names, and which files belong to a function.

/// A tar entry name as a path from the image root, without a leading `/` or `./`, with `.`
/// components dropped. `None` when `..` would leave the root.
pub fn normalise(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// `dir` joined with a link target or an import path, normalised; `None` when it leaves the root.
pub fn join(dir: &str, relative: &str) -> Option<String> {
    if relative.starts_with('/') {
        normalise(relative)
    } else {
        normalise(&format!("{dir}/{relative}"))
    }
}

/// The directory part of a path (`""` at the root).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, f)| f)
}

/// Whether `path` is `dir` or lies under it (`dir` empty: the root, everything is under it).
pub fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// Compares two paths component by component: the order in which a sorted directory walk (the
/// one image builders use) writes them. (`app/x` comes before `app.d`, unlike string order.)
pub fn walk_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Directories never part of a function: installed dependencies, virtual environments, caches,
/// tests and version control.
const EXCLUDED_DIRS: &[&str] = &[
    "site-packages",
    "dist-packages",
    "__pycache__",
    "venv",
    ".venv",
    "virtualenv",
    ".tox",
    ".nox",
    "node_modules",
    ".git",
    "tests",
    "test",
    ".pytest_cache",
    ".eggs",
    "build",
];

/// Why a Python file under the function's directories is not part of the function, if it is not.
pub fn excluded(relative: &str) -> Option<&'static str> {
    let mut parts: Vec<&str> = relative.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    for (i, dir) in parts.iter().enumerate() {
        if EXCLUDED_DIRS.contains(dir) {
            return Some(if dir.contains("packages") {
                "installed dependencies"
            } else if *dir == "tests" || *dir == "test" {
                "tests"
            } else {
                "a virtual environment, cache or build directory"
            });
        }
        // A virtual environment's own tree: lib/python3.X/...
        if *dir == "lib" && parts.get(i + 1).is_some_and(|p| p.starts_with("python")) {
            return Some("a virtual environment, cache or build directory");
        }
    }
    if name == "conftest.py"
        || name == "setup.py"
        || name.starts_with("test_")
        || name.ends_with("_test.py")
    {
        return Some("tests or packaging");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_escapes() {
        assert_eq!(normalise("./app/./func.py").as_deref(), Some("app/func.py"));
        assert_eq!(normalise("/app//lib/").as_deref(), Some("app/lib"));
        assert_eq!(normalise("app/../etc").as_deref(), Some("etc"));
        assert_eq!(normalise("../etc/passwd"), None);
        assert_eq!(join("app/lib", "../x.py").as_deref(), Some("app/x.py"));
        assert_eq!(join("app", "/etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(join("app", "../../x"), None);
    }

    #[test]
    fn under_and_walk_order() {
        assert!(is_under("app/func.py", "app"));
        assert!(is_under("app", "app"));
        assert!(!is_under("apple/x.py", "app"));
        assert!(is_under("anything", ""));
        use std::cmp::Ordering::*;
        assert_eq!(walk_order("app/x", "app.d"), Less);
        assert_eq!(walk_order("bin", "app/zzz"), Greater);
    }

    #[test]
    fn dependencies_venvs_and_tests_are_not_the_function() {
        assert_eq!(excluded("func.py"), None);
        assert_eq!(excluded("lib/model.py"), None);
        assert!(excluded("venv/lib/python3.11/site-packages/torch/__init__.py").is_some());
        assert!(excluded(".venv/bin/activate_this.py").is_some());
        assert!(excluded("env/lib/python3.12/os.py").is_some());
        assert!(excluded("tests/test_func.py").is_some());
        assert!(excluded("test_func.py").is_some());
        assert!(excluded("func_test.py").is_some());
        assert!(excluded("pkg/__pycache__/x.py").is_some());
    }
}
