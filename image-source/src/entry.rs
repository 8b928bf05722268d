//! What the image config says about the function: its working directory, the Python entry file
//! or module the container starts (from Entrypoint and Cmd), and the directories to look in.

use serde::Deserialize;

use crate::paths;

/// The fields of an OCI image config Gaia reads (`config.WorkingDir`, `Entrypoint`, `Cmd`,
/// `Env`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub config: Option<RuntimeConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
}

/// Directories where function builders put the code, looked in when the config names none: Knative `func` and Cloud Native
/// Buildpacks (`/workspace`), plain Dockerfiles (`/app`, `/usr/src/app`, `/code`), OpenShift
/// S2I (`/opt/app-root/src`), Gaia's own runtime image (`/opt/gaia/function`).
pub const CONVENTIONAL_DIRS: &[&str] = &[
    "workspace",
    "app",
    "function",
    "code",
    "usr/src/app",
    "opt/app-root/src",
    "opt/gaia/function",
];

/// Where to look for the function in the layers, and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Directories (image paths, no leading `/`) whose Python files may be the function.
    pub roots: Vec<String>,
    /// The entry file the container runs (an image path), when Entrypoint/Cmd name one.
    pub entry_file: Option<String>,
    /// The entry module (`python -m pkg.main`, `uvicorn main:app`), when named that way.
    pub entry_module: Option<String>,
    /// Directories on the module search path, first first: the entry's directory, the working
    /// directory, `PYTHONPATH` entries.
    pub search: Vec<String>,
}

impl Plan {
    /// The plan for an image config; the command line Knative would run (a container's
    /// `command`/`args` in the Service override the image's, as Kubernetes does).
    pub fn new(config: &ImageConfig, command: Option<&[String]>, args: Option<&[String]>) -> Plan {
        let rc = config.config.clone().unwrap_or_default();
        let workdir = rc
            .working_dir
            .as_deref()
            .and_then(paths::normalise)
            .unwrap_or_default();
        // Kubernetes: `command` replaces Entrypoint (and drops Cmd); `args` replaces Cmd.
        let entrypoint = command
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| rc.entrypoint.clone().unwrap_or_default());
        let cmd = match (command, args) {
            (_, Some(a)) => a.to_vec(),
            (Some(_), None) => Vec::new(),
            (None, None) => rc.cmd.clone().unwrap_or_default(),
        };
        let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
        let env: Vec<(String, String)> = rc
            .env
            .unwrap_or_default()
            .iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let started = entry_of(&argv, 0);
        let entry_file = match &started {
            Some(Started::File(f)) => paths::join(&workdir, f),
            _ => None,
        };
        let entry_module = match started {
            Some(Started::Module(m)) => Some(m),
            _ => None,
        };
        let mut search = Vec::new();
        let push = |v: &mut Vec<String>, d: String| {
            if !v.contains(&d) {
                v.push(d);
            }
        };
        if let Some(f) = &entry_file {
            push(&mut search, paths::parent(f).to_string());
        }
        if !workdir.is_empty() {
            push(&mut search, workdir.clone());
        }
        for (k, v) in &env {
            if k == "PYTHONPATH" {
                for dir in v.split(':').filter_map(|d| paths::join(&workdir, d)) {
                    if !dir.is_empty() && paths::excluded(&format!("{dir}/x.py")).is_none() {
                        push(&mut search, dir);
                    }
                }
            }
        }
        let mut roots = Vec::new();
        for d in &search {
            if !d.is_empty() && !is_system_dir(d) {
                push(&mut roots, d.clone());
            }
        }
        // Nothing in the config points at the code (a server script in /usr, a buildpack
        // launcher, no working directory): where builders put it.
        let conventional = roots.is_empty();
        for (k, v) in &env {
            if k == "GAIA_FUNCTION_DIR" {
                if let Some(d) = paths::join(&workdir, v).filter(|d| !d.is_empty()) {
                    push(&mut roots, d.clone());
                    push(&mut search, d);
                }
            }
        }
        if conventional {
            for d in CONVENTIONAL_DIRS {
                push(&mut roots, (*d).to_string());
                push(&mut search, (*d).to_string());
            }
        }
        // A root inside another root is already covered.
        let all = roots.clone();
        roots.retain(|r| !all.iter().any(|o| o != r && paths::is_under(r, o)));
        Plan {
            roots,
            entry_file,
            entry_module,
            search,
        }
    }

    /// The root a path lies under, if any.
    pub fn root_of(&self, path: &str) -> Option<&str> {
        self.roots
            .iter()
            .find(|r| paths::is_under(path, r))
            .map(String::as_str)
    }
}

/// Directories that hold the system, not a function: an entry file there (a server script in
/// `/usr/local/bin`) does not make the whole directory the function.
fn is_system_dir(dir: &str) -> bool {
    let first = dir.split('/').next().unwrap_or_default();
    (first == "usr" && !paths::is_under(dir, "usr/src"))
        || matches!(
            first,
            "bin" | "sbin" | "etc" | "cnb" | "lib" | "lib64" | "lib32"
        )
}

enum Started {
    File(String),
    Module(String),
}

/// Servers that take `module:attribute` (`uvicorn main:app`).
const MODULE_SERVERS: &[&str] = &[
    "uvicorn",
    "gunicorn",
    "hypercorn",
    "daphne",
    "waitress-serve",
    "granian",
];

/// Python options that take a value.
const PYTHON_VALUE_OPTIONS: &[&str] = &["-X", "-W", "-Q"];

fn entry_of(argv: &[String], depth: usize) -> Option<Started> {
    let first = argv.first()?;
    let program = paths::file_name(first);
    // `sh -c "python main.py"`: look inside the script once.
    if depth == 0 && matches!(program, "sh" | "bash" | "dash") {
        if let Some(i) = argv.iter().position(|a| a == "-c") {
            let words: Vec<String> = argv
                .get(i + 1)?
                .split(|c: char| c.is_whitespace() || c == ';' || c == '&')
                .filter(|w| !w.is_empty() && *w != "exec")
                .map(str::to_string)
                .collect();
            return entry_of(&words, 1);
        }
    }
    if program.starts_with("python") {
        let mut it = argv.iter().skip(1);
        while let Some(a) = it.next() {
            if a == "-m" {
                return it.next().map(|m| Started::Module(m.clone()));
            }
            if a == "-c" {
                return None;
            }
            if PYTHON_VALUE_OPTIONS.contains(&a.as_str()) {
                it.next();
                continue;
            }
            if a.starts_with('-') {
                continue;
            }
            return Some(Started::File(a.clone()));
        }
        return None;
    }
    if MODULE_SERVERS.contains(&program) {
        return argv.iter().skip(1).find_map(|a| {
            let (m, attr) = a.split_once(':')?;
            let ok = !a.starts_with('-')
                && !m.is_empty()
                && !attr.is_empty()
                && m.split('.').all(is_identifier);
            ok.then(|| Started::Module(m.to_string()))
        });
    }
    // A script run directly (`/app/main.py` with a shebang), or the first `.py` argument of a
    // wrapper (`opentelemetry-instrument python main.py` is caught by the recursion below).
    if first.ends_with(".py") {
        return Some(Started::File(first.clone()));
    }
    if depth == 0 {
        if let Some(i) = argv
            .iter()
            .position(|a| paths::file_name(a).starts_with("python"))
            .filter(|&i| i > 0)
        {
            return entry_of(&argv[i..], 1);
        }
    }
    argv.iter()
        .skip(1)
        .find(|a| a.ends_with(".py") && !a.starts_with('-'))
        .map(|a| Started::File(a.clone()))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        workdir: Option<&str>,
        entrypoint: &[&str],
        cmd: &[&str],
        env: &[&str],
    ) -> ImageConfig {
        let v = |a: &[&str]| Some(a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        ImageConfig {
            config: Some(RuntimeConfig {
                working_dir: workdir.map(str::to_string),
                entrypoint: v(entrypoint).filter(|e| !e.is_empty()),
                cmd: v(cmd).filter(|e| !e.is_empty()),
                env: v(env),
            }),
        }
    }

    #[test]
    fn dockerfile_python_main() {
        let p = Plan::new(
            &config(Some("/app"), &[], &["python", "-u", "main.py"], &[]),
            None,
            None,
        );
        assert_eq!(p.entry_file.as_deref(), Some("app/main.py"));
        assert_eq!(p.roots[0], "app");
        assert_eq!(p.search[0], "app");
    }

    #[test]
    fn modules_servers_and_shell_forms() {
        let p = Plan::new(
            &config(
                Some("/srv"),
                &["uvicorn"],
                &["api.main:app", "--port", "8080"],
                &[],
            ),
            None,
            None,
        );
        assert_eq!(p.entry_module.as_deref(), Some("api.main"));
        assert_eq!(p.roots[0], "srv");
        let p = Plan::new(
            &config(Some("/w"), &["python3", "-m", "svc"], &[], &[]),
            None,
            None,
        );
        assert_eq!(p.entry_module.as_deref(), Some("svc"));
        let p = Plan::new(
            &config(
                None,
                &["/bin/sh", "-c", "exec python3 /opt/f/handler.py"],
                &[],
                &[],
            ),
            None,
            None,
        );
        assert_eq!(p.entry_file.as_deref(), Some("opt/f/handler.py"));
        assert_eq!(p.roots[0], "opt/f");
    }

    #[test]
    fn the_service_command_overrides_the_image() {
        let c = config(Some("/app"), &["python"], &["a.py"], &[]);
        let args = vec!["b.py".to_string()];
        assert_eq!(
            Plan::new(&c, None, Some(&args)).entry_file.as_deref(),
            Some("app/b.py")
        );
        let cmd = vec!["python3".to_string(), "/x/c.py".to_string()];
        assert_eq!(
            Plan::new(&c, Some(&cmd), None).entry_file.as_deref(),
            Some("x/c.py")
        );
    }

    #[test]
    fn buildpacks_and_server_scripts_fall_back_to_conventional_dirs() {
        let p = Plan::new(
            &config(Some("/workspace"), &["/cnb/process/web"], &[], &[]),
            None,
            None,
        );
        assert_eq!(p.entry_file, None);
        assert_eq!(p.roots[0], "workspace");
        let p = Plan::new(
            &config(
                None,
                &["python3", "/usr/local/lib/gaia/function_server.py"],
                &[],
                &["GAIA_FUNCTION_DIR=/srv/fn"],
            ),
            None,
            None,
        );
        assert!(
            !p.roots.iter().any(|r| r.starts_with("usr/local")),
            "{:?}",
            p.roots
        );
        assert!(p.roots.contains(&"srv/fn".to_string()));
        assert!(p.roots.contains(&"opt/gaia/function".to_string()));
        assert_eq!(p.search[0], "usr/local/lib/gaia");
    }
}
