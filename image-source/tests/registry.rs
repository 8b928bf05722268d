//! The image source against a real registry (Debian's `docker-registry`, CNCF distribution) on
//! loopback: layers, whiteouts, budgets, credentials, tags, a registry that goes away, and
//! hostile images. No mocks.

mod support;

use std::time::{Duration, Instant};

use gaia_image_source::{
    Command, Error, ImageFunction, ImageReader, PullSecret, ReadLimits, Registries, RegistryOptions,
};
use support::{base_layer, file, Entry, Image, Registry, GZIP, TAR, ZSTD};

fn reader(registry: &Registry, limits: ReadLimits) -> ImageReader {
    ImageReader {
        registries: Registries::new(RegistryOptions {
            plain_http: vec![registry.addr.clone()],
            ..RegistryOptions::default()
        })
        .expect("registries"),
        limits,
    }
}

async fn read(
    reader: &ImageReader,
    image: &str,
    secrets: &[PullSecret],
) -> Result<ImageFunction, Error> {
    let resolved = reader.registries.resolve(image, secrets).await?;
    reader.read(resolved, secrets, &Command::default()).await
}

fn paths(f: &ImageFunction) -> Vec<&str> {
    f.files.iter().map(|f| f.path.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_in_different_layers_is_followed_from_the_entry() {
    let reg = Registry::start(None);
    let image = Image::new("/app", &["python3", "-u", "func.py"])
        .layer(TAR, &base_layer())
        .layer(
            GZIP,
            &[
                Entry::Dir("app"),
                file("app/lib/__init__.py", ""),
                file(
                    "app/lib/model.py",
                    "import torch\nmodel = torch.nn.Linear(4, 4).cuda()\n",
                ),
                file("app/train.py", "import torch.distributed\n"),
                file("app/tests/test_func.py", "import func\n"),
                file(
                    "app/.venv/lib/python3.11/site-packages/x.py",
                    "import torch\n",
                ),
            ],
        )
        .layer(
            ZSTD,
            &[file(
                "app/func.py",
                "from lib.model import model\n\ndef handle(req):\n    return model(req)\n",
            )],
        );
    let digest = reg.push("fn/layers:v1", &image).await;
    let r = reader(&reg, ReadLimits::default());
    let f = read(&r, &reg.reference("fn/layers:v1"), &[])
        .await
        .expect("read");
    assert_eq!(f.digest, digest);
    assert_eq!(
        paths(&f),
        ["app/func.py", "app/lib/__init__.py", "app/lib/model.py"]
    );
    assert_eq!(f.entry.as_deref(), Some("app/func.py"));
    let c = gaia_classifier::classify(&f.files, &gaia_classifier::Limits::default())
        .expect("classified");
    assert_eq!(c.mode, gaia_contract::ExecutionMode::Gpu, "{}", c.rationale);
    assert!(
        c.findings.iter().any(|x| x.file == "app/lib/model.py"),
        "{:?}",
        c.findings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whiteouts_and_opaque_directories_remove_lower_files() {
    let reg = Registry::start(None);
    let image = Image::new("/app", &["python", "func.py"])
        .layer(
            GZIP,
            &[
                file("app/func.py", "import helper\nfrom pkg import old\n"),
                file("app/helper.py", "import torch\nx = torch.zeros(1).cuda()\n"),
                file("app/pkg/__init__.py", ""),
                file("app/pkg/old.py", "import tensorflow\n"),
            ],
        )
        .layer(
            GZIP,
            &[
                file("app/.wh.helper.py", ""),
                file("app/pkg/.wh..wh..opq", ""),
                file("app/pkg/__init__.py", "# new\n"),
            ],
        );
    reg.push("fn/wh:v1", &image).await;
    let f = read(
        &reader(&reg, ReadLimits::default()),
        &reg.reference("fn/wh:v1"),
        &[],
    )
    .await
    .expect("read");
    assert_eq!(paths(&f), ["app/func.py", "app/pkg/__init__.py"]);
    assert_eq!(f.files[1].bytes, b"# new\n", "the upper copy wins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_dependency_layer_is_left_unread() {
    let reg = Registry::start(None);
    // 256 MiB of incompressible "shared libraries" under site-packages, below the code.
    let mut deps = vec![Entry::Dir("usr/local/lib/python3.11/site-packages/torch")];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..32 {
        let mut blob = vec![0u8; 8 << 20];
        for chunk in blob.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
        let name = Box::leak(
            format!("usr/local/lib/python3.11/site-packages/torch/lib/libtorch_{i}.so")
                .into_boxed_str(),
        );
        deps.push(Entry::File(name, blob));
    }
    let image = Image::new("/app", &["python", "func.py"])
        .layer(TAR, &base_layer())
        .layer(TAR, &deps)
        .layer(GZIP, &[file("app/func.py", "import torch\n")]);
    reg.push("fn/big:v1", &image).await;
    drop(deps);
    let r = reader(&reg, ReadLimits::default());
    let started = Instant::now();
    let f = read(&r, &reg.reference("fn/big:v1"), &[])
        .await
        .expect("read");
    let took = started.elapsed();
    assert_eq!(paths(&f), ["app/func.py"]);
    assert_eq!(f.stats.layers, 3);
    assert!(f.stats.layers_skipped >= 1, "{:?}", f.stats);
    assert!(
        f.stats.downloaded_bytes < 64 << 20,
        "read {} bytes of a 256 MiB image",
        f.stats.downloaded_bytes
    );
    eprintln!("big image: {:?}, {took:?}", f.stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_behind_htpasswd_needs_the_pull_secret() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let image = Image::new("/app", &["python", "main.py"])
        .layer(GZIP, &[file("app/main.py", "import numpy\n")]);
    reg.push("private/fn:v1", &image).await;
    let r = reader(&reg, ReadLimits::default());
    let image_ref = reg.reference("private/fn:v1");
    let anonymous = read(&r, &image_ref, &[])
        .await
        .expect_err("anonymous is refused");
    assert!(anonymous.to_string().contains("refused"), "{anonymous}");
    let wrong = PullSecret {
        name: "ns/wrong".into(),
        data: reg.docker_config("alice", "guess"),
        legacy: false,
    };
    let err = read(&r, &image_ref, std::slice::from_ref(&wrong))
        .await
        .expect_err("wrong password");
    assert!(err.to_string().contains("ns/wrong"), "{err}");
    let right = PullSecret {
        name: "ns/regcred".into(),
        data: reg.docker_config("alice", "s3cret"),
        legacy: false,
    };
    // The ServiceAccount's secret after the Service's: a wrong one first does not block.
    let f = read(&r, &image_ref, &[wrong, right])
        .await
        .expect("read with the secret");
    assert_eq!(paths(&f), ["app/main.py"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_moved_tags_and_a_registry_that_goes_away() {
    let mut reg = Registry::start(None);
    let r = reader(&reg, ReadLimits::default());
    let missing = read(&r, &reg.reference("fn/nothing:v1"), &[])
        .await
        .expect_err("missing");
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");

    let v1 = Image::new("/app", &["python", "func.py"])
        .layer(GZIP, &[file("app/func.py", "import json\n")]);
    let v2 = Image::new("/app", &["python", "func.py"])
        .layer(GZIP, &[file("app/func.py", "import torch\n")]);
    let d1 = reg.push("fn/moving:latest", &v1).await;
    let first = r
        .registries
        .resolve(&reg.reference("fn/moving:latest"), &[])
        .await
        .expect("resolve");
    assert_eq!(first.digest, d1);
    let d2 = reg.push("fn/moving:latest", &v2).await;
    assert_ne!(d1, d2);
    let f = read(&r, &reg.reference("fn/moving:latest"), &[])
        .await
        .expect("read");
    assert_eq!(f.digest, d2, "the tag is resolved again");
    assert_eq!(f.files[0].bytes, b"import torch\n");
    // Pinned by digest: the old image is still readable.
    let pinned = format!("{}@{d1}", reg.reference("fn/moving"));
    assert_eq!(
        read(&r, &pinned, &[]).await.expect("pinned").files[0].bytes,
        b"import json\n"
    );

    reg.stop();
    let started = Instant::now();
    let down = read(&r, &reg.reference("fn/moving:latest"), &[])
        .await
        .expect_err("down");
    assert!(matches!(down, Error::Registry { .. }), "{down}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    reg.restart();
    assert!(
        read(&r, &reg.reference("fn/moving:latest"), &[])
            .await
            .is_ok(),
        "back again"
    );
}

// ---- hostile images: each a clear error ----

async fn hostile(image: Image, limits: ReadLimits) -> Error {
    let reg = Registry::start(None);
    reg.push("hostile/x:v1", &image).await;
    // Each caller checks the error's kind: a budget, a deadline or a refused path, which is
    // what stops the read early. No wall-clock bound: a debug build at load 17 took 19 s to
    // inflate the tar bomb up to its (default) unpacked budget.
    read(&reader(&reg, limits), &reg.reference("hostile/x:v1"), &[])
        .await
        .expect_err("a hostile image is refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tar_bomb_stops_at_the_unpacked_budget() {
    // Concatenated gzip members: a tar header, then 4 GiB of zeros as 4096 copies of one
    // compressed MiB (~4 MiB on the wire), under the function's directory.
    let mut h = tar::Header::new_gnu();
    h.set_path("app/func.py").expect("path");
    h.set_size(4 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let mut blob = support::gzip(h.as_bytes());
    let mib = support::gzip(&vec![0u8; 1 << 20]);
    for _ in 0..4096 {
        blob.extend_from_slice(&mib);
    }
    let image = Image::new("/app", &["python", "func.py"]).raw_layer(GZIP, blob);
    let err = hostile(image, ReadLimits::default()).await;
    assert!(
        matches!(
            err,
            Error::Budget {
                what: "unpacked layer bytes",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("decompression bomb"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_out_of_the_root_is_refused() {
    let image = Image::new("/app", &["python", "func.py"])
        .layer(GZIP, &[Entry::Symlink("app/func.py", "../../etc/shadow")]);
    let err = hostile(image, ReadLimits::default()).await;
    assert!(matches!(err, Error::LinkOutOfRoot { .. }), "{err}");
    let image = Image::new("/app", &["python", "func.py"]).layer(
        TAR,
        &[Entry::RawName("../../etc/cron.d/x.py", b"x".to_vec())],
    );
    let err = hostile(image, ReadLimits::default()).await;
    assert!(matches!(err, Error::PathEscapes { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_file_layer_hits_the_entry_budget() {
    let names: Vec<String> = (0..100_000)
        .map(|i| format!("app/data/{i:06}.json"))
        .collect();
    let entries: Vec<Entry<'_>> = names.iter().map(|n| Entry::File(n, Vec::new())).collect();
    let image = Image::new("/app", &["python", "func.py"])
        .layer(GZIP, &[file("app/func.py", "import json\n")])
        .layer(GZIP, &entries);
    let err = hostile(image, ReadLimits::default()).await;
    assert!(
        matches!(
            err,
            Error::Budget {
                what: "tar entries",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_gzip_stream_is_a_layer_error() {
    let mut blob = support::gzip(&support::tar(&[file(
        "app/func.py",
        &"x = 1\n".repeat(5000),
    )]));
    let mid = blob.len() / 2;
    for b in &mut blob[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let image = Image::new("/app", &["python", "func.py"]).raw_layer(GZIP, blob);
    let err = hostile(image, ReadLimits::default()).await;
    assert!(matches!(err, Error::Layer { .. }), "{err}");
}
