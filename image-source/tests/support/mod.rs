//! A real CNCF distribution registry (Debian's `docker-registry`) on loopback, and images
//! pushed to it with `oci-client`, for the image source's tests.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A registry process; killed on drop.
pub struct Registry {
    pub addr: String,
    child: Option<Child>,
    _dir: tempfile::TempDir,
    config: PathBuf,
    pub user: Option<(String, String)>,
}

impl Registry {
    pub fn start(user: Option<(&str, &str)>) -> Registry {
        assert!(
            std::path::Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} missing: hack/build.sh node-deps installs docker-registry"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        if let Some((u, p)) = user {
            let hash = bcrypt::hash(p, 5).expect("bcrypt");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, format!("{u}:{hash}\n")).expect("htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: gaia-test\n    path: {}\n",
                file.display()
            );
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .expect("config");
        let mut r = Registry {
            addr,
            child: None,
            _dir: dir,
            config,
            user: user.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        r.restart();
        r
    }

    /// Starts (again) on the same address and storage.
    pub fn restart(&mut self) {
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&self.addr).is_err() {
            assert!(
                Instant::now() < until,
                "registry did not start on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// A `.dockerconfigjson` for this registry with the given password.
    pub fn docker_config(&self, user: &str, password: &str) -> Vec<u8> {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, self.addr).into_bytes()
    }

    fn auth(&self) -> RegistryAuth {
        match &self.user {
            Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// Pushes an image; returns its manifest digest.
    pub async fn push(&self, repo_tag: &str, image: &Image) -> String {
        gaia_image_source::registry::ensure_crypto_provider();
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..ClientConfig::default()
        });
        let reference: Reference = self.reference(repo_tag).parse().expect("reference");
        let config = Config::new(
            serde_json::to_vec(&image.config_json()).expect("config"),
            "application/vnd.oci.image.config.v1+json".into(),
            None,
        );
        let layers: Vec<ImageLayer> = image
            .layers
            .iter()
            .map(|(data, media)| ImageLayer::new(data.clone(), media.to_string(), None))
            .collect();
        let r = client
            .push(&reference, &layers, config, &self.auth(), None)
            .await
            .expect("push");
        let digest = client
            .fetch_manifest_digest(&reference, &self.auth())
            .await
            .expect("digest");
        assert!(r.manifest_url.contains(&self.addr));
        digest
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One tar entry of a layer.
pub enum Entry<'a> {
    File(&'a str, Vec<u8>),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    /// A raw name written into the header as is (`../x`).
    RawName(&'a str, Vec<u8>),
}

/// A layer's tar, uncompressed.
pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_764_547_200);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::File(p, data) => {
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, p, &data[..]).expect("file");
            }
            Entry::Dir(p) => {
                h.set_mode(0o755);
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, p, std::io::empty()).expect("dir");
            }
            Entry::Symlink(p, target) => {
                h.set_mode(0o777);
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, p, target).expect("link");
            }
            Entry::RawName(name, data) => {
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                let gnu = h.as_gnu_mut().expect("gnu header");
                gnu.name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, &data[..]).expect("raw");
            }
        }
    }
    b.into_inner().expect("tar")
}

pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// An image: layers bottom first, and the config's runtime part.
#[derive(Default)]
pub struct Image {
    pub layers: Vec<(Vec<u8>, &'static str)>,
    pub workdir: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
}

impl Image {
    pub fn new(workdir: &str, cmd: &[&str]) -> Image {
        Image {
            workdir: Some(workdir.to_string()),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Image::default()
        }
    }

    pub fn layer(mut self, media: &'static str, entries: &[Entry<'_>]) -> Image {
        let t = tar(entries);
        let data = match media {
            GZIP => gzip(&t),
            ZSTD => zstd(&t),
            _ => t,
        };
        self.layers.push((data, media));
        self
    }

    pub fn raw_layer(mut self, media: &'static str, data: Vec<u8>) -> Image {
        self.layers.push((data, media));
        self
    }

    pub fn config_json(&self) -> serde_json::Value {
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|_| format!("sha256:{}", "0".repeat(64)))
            .collect();
        serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"WorkingDir": self.workdir, "Entrypoint": self.entrypoint, "Cmd": self.cmd,
                       "Env": self.env},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
    }
}

/// A small base layer: what a Debian image has at the top level, and a Python install.
pub fn base_layer() -> Vec<Entry<'static>> {
    vec![
        Entry::Dir("bin"),
        Entry::File("bin/sh", b"#!ELF".to_vec()),
        Entry::Dir("etc"),
        Entry::File("etc/os-release", b"ID=debian\n".to_vec()),
        Entry::File("usr/lib/python3.11/os.py", b"import sys\n".to_vec()),
        Entry::File(
            "usr/local/lib/python3.11/site-packages/torch/__init__.py",
            b"import torch.cuda\n".to_vec(),
        ),
    ]
}

pub fn file(path: &str, text: &str) -> Entry<'static> {
    Entry::File(
        Box::leak(path.to_string().into_boxed_str()),
        text.as_bytes().to_vec(),
    )
}
