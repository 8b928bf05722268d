//! Registry credentials from pull secrets (`kubernetes.io/dockerconfigjson` and the legacy
//! `kubernetes.io/dockercfg`), matched to an image the way the kubelet's keyring matches them:
//! the key's host (with `*` globs per label) and port must match, its path must be a prefix of
//! the repository; more specific keys first. Anonymous is tried after them all.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use tracing::warn;

/// A pull secret's data, as the Kubernetes API returns it (already base64-decoded).
#[derive(Debug, Clone)]
pub struct PullSecret {
    /// `namespace/name`, for messages.
    pub name: String,
    /// The `.dockerconfigjson` (or `.dockercfg`) value.
    pub data: Vec<u8>,
    /// `kubernetes.io/dockercfg`: the map of registries without the `auths` wrapper.
    pub legacy: bool,
}

/// One username and password (or identity token) for a registry.
#[derive(Clone)]
pub struct Credential {
    /// Where it came from (`namespace/secret`, key).
    pub origin: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({} as {})", self.origin, self.username)
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// A registry key split the way the kubelet compares it.
#[derive(Debug, PartialEq)]
struct Key {
    host: String,
    port: Option<String>,
    path: String,
}

fn parse_key(key: &str) -> Key {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (hostport, path) = k.split_once('/').unwrap_or((k, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p.to_string())),
        _ => (hostport, None),
    };
    let host = normalise_docker_hub(&host.to_ascii_lowercase());
    // `https://index.docker.io/v1/` is how Docker writes Docker Hub's key: no path.
    let path = if host == "docker.io" && path.starts_with("v1") {
        String::new()
    } else {
        path.trim_end_matches('/').to_string()
    };
    Key { host, port, path }
}

fn normalise_docker_hub(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        h => h.to_string(),
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(p, h)| *p == "*" || p == h || glob_label(p, h))
}

fn glob_label(pattern: &str, label: &str) -> bool {
    match pattern.split_once('*') {
        Some((pre, post)) => {
            label.len() >= pre.len() + post.len() && label.starts_with(pre) && label.ends_with(post)
        }
        None => pattern == label,
    }
}

/// Credentials for `registry` (`host[:port]`) and `repository`, most specific first, from the
/// secrets in the order given (the Service's imagePullSecrets, then its ServiceAccount's). An
/// unreadable secret is skipped with a warning, as the kubelet does.
pub fn credentials_for(
    secrets: &[PullSecret],
    registry: &str,
    repository: &str,
) -> Vec<Credential> {
    let image = parse_key(&format!("{registry}/{repository}"));
    let mut found: Vec<(usize, Credential)> = Vec::new();
    for secret in secrets {
        let auths: BTreeMap<String, Entry> = if secret.legacy {
            match serde_json::from_slice(&secret.data) {
                Ok(a) => a,
                Err(e) => {
                    warn!(secret = %secret.name, error = %e, "pull secret is not a dockercfg");
                    continue;
                }
            }
        } else {
            match serde_json::from_slice::<DockerConfig>(&secret.data) {
                Ok(c) => c.auths,
                Err(e) => {
                    warn!(secret = %secret.name, error = %e, "pull secret is not a dockerconfigjson");
                    continue;
                }
            }
        };
        for (key, entry) in auths {
            let k = parse_key(&key);
            let matches = host_matches(&k.host, &image.host)
                && k.port == image.port
                && (k.path.is_empty()
                    || image.path == k.path
                    || image.path.starts_with(&format!("{}/", k.path)));
            if !matches {
                continue;
            }
            let Some((username, password)) = user_and_password(&entry) else {
                warn!(secret = %secret.name, registry = %key, "pull secret entry has no usable auth");
                continue;
            };
            let specificity =
                k.host.len() + k.path.len() + usize::from(!k.host.contains('*')) * 1000;
            found.push((
                specificity,
                Credential {
                    origin: format!("{} ({key})", secret.name),
                    username,
                    password,
                },
            ));
        }
    }
    // Stable: equal keys keep the secrets' order.
    found.sort_by_key(|c| std::cmp::Reverse(c.0));
    found.into_iter().map(|(_, c)| c).collect()
}

fn user_and_password(e: &Entry) -> Option<(String, String)> {
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        if !u.is_empty() {
            return Some((u.clone(), p.clone()));
        }
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(e.auth.as_deref()?.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, json: &str) -> PullSecret {
        PullSecret {
            name: name.into(),
            data: json.as_bytes().to_vec(),
            legacy: false,
        }
    }

    #[test]
    fn matches_like_the_kubelet() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let s = secret(
            "ns/a",
            &format!(
                r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{auth}"}}, "https://index.docker.io/v1/": {{"username": "hub", "password": "p"}}, "*.corp.example": {{"username": "glob", "password": "p"}}, "reg.corp.example/team": {{"username": "team", "password": "p"}}}}}}"#
            ),
        );
        let c = credentials_for(std::slice::from_ref(&s), "127.0.0.1:5000", "fn/a");
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].username.as_str(), c[0].password.as_str()),
            ("alice", "s3cret")
        );
        assert!(credentials_for(std::slice::from_ref(&s), "127.0.0.1:5001", "fn/a").is_empty());
        let hub = credentials_for(std::slice::from_ref(&s), "docker.io", "library/python");
        assert_eq!(hub[0].username, "hub");
        let corp = credentials_for(std::slice::from_ref(&s), "reg.corp.example", "team/f");
        let users: Vec<&str> = corp.iter().map(|c| c.username.as_str()).collect();
        assert_eq!(users, ["team", "glob"], "the exact key first");
        let other = credentials_for(std::slice::from_ref(&s), "reg.corp.example", "other/f");
        assert_eq!(other.len(), 1);
    }

    #[test]
    fn bad_secrets_are_skipped_and_legacy_read() {
        let bad = secret("ns/bad", "{not json");
        let legacy = PullSecret {
            name: "ns/old".into(),
            data: br#"{"reg:5000": {"username": "u", "password": "p"}}"#.to_vec(),
            legacy: true,
        };
        let c = credentials_for(&[bad, legacy], "reg:5000", "x");
        assert_eq!(c.len(), 1);
        assert!(
            !format!("{:?}", c[0]).contains('p') || !format!("{:?}", c[0]).contains("password")
        );
    }
}
