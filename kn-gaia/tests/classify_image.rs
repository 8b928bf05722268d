//! `kn gaia classify IMAGE_REF` against a real registry (Debian's `docker-registry` on
//! loopback), anonymous and behind htpasswd.

#[path = "../../image-source/tests/support/mod.rs"]
mod registry;

use std::process::Command;

use registry::{base_layer, file, Image, Registry, GZIP, TAR, ZSTD};

fn image() -> Image {
    Image::new("/workspace", &[])
        .layer(TAR, &base_layer())
        .layer(GZIP, &[file("workspace/model.py", "import torch\nm = torch.hub.load('x', 'y').to('cuda' if torch.cuda.is_available() else 'cpu')\n")])
        .layer(ZSTD, &[file("workspace/func.py", "from model import m\n\ndef handle(r):\n    return m(r)\n")])
}

fn kn_gaia(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kn-gaia"))
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("DOCKER_CONFIG")
        .output()
        .expect("kn-gaia runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn classifies_an_image_from_its_registry() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let reg = Registry::start(None);
    let digest = rt.block_on(reg.push("fn/buildpack:v1", &image()));
    let reference = reg.reference("fn/buildpack:v1");
    let (code, out, err) = kn_gaia(&[
        "classify",
        "--plain-http",
        &reg.addr,
        &reference,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("json line");
    assert_eq!(line["path"], reference.as_str());
    assert_eq!(line["mode"], "cpu_preferred", "{line}");
    assert!(
        line["findings"].to_string().contains("workspace/model.py"),
        "{line}"
    );
    let (code, out, err) = kn_gaia(&["classify", "--plain-http", &reg.addr, &reference]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("{reference}: cpu_preferred")),
        "{out}"
    );
    assert!(err.contains(&digest), "{err}");
    let (code, _, err) = kn_gaia(&[
        "classify",
        "--plain-http",
        &reg.addr,
        &reg.reference("fn/none:v1"),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn reads_credentials_from_a_docker_config() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let reg = Registry::start(Some(("bob", "pw")));
    rt.block_on(reg.push("private/f:v1", &image()));
    let reference = reg.reference("private/f:v1");
    let (code, _, err) = kn_gaia(&["classify", "--plain-http", &reg.addr, &reference]);
    assert_eq!(code, 1);
    assert!(err.contains("refused"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.json");
    std::fs::write(&config, reg.docker_config("bob", "pw")).expect("config");
    let config = config.display().to_string();
    let (code, out, err) = kn_gaia(&[
        "classify",
        "--plain-http",
        &reg.addr,
        "--registry-config",
        &config,
        &reference,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cpu_preferred"), "{out}");
}
