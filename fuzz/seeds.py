"""Seed corpora for the fuzz targets that read structured input, from the project's own code.

python3 fuzz/seeds.py OUT_DIR writes:

- OUT_DIR/admission_review/: the AdmissionReviews an apiserver sends for `kn service create`
  and `kn service update` of Services whose inline source is each example function and fixture
  (execution modes auto, gpu, cpu, an unknown one; an earlier verdict; DELETE; a Route; an
  excluded namespace; no object);
- OUT_DIR/image_layer/: those functions as image layers (plain tar, gzip, zstd when the zstd
  program is there), alone and as stacks of two or three layers with whiteouts and opaque
  directories, in the raw input format of fuzz/fuzz_targets/image_layer.rs.

Run by hack/fuzz.sh; nothing here is checked in.
"""

import gzip
import io
import json
import pathlib
import shutil
import subprocess
import sys
import tarfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEPARATOR = b"\n--gaia-layer--\n"


def functions():
    """(name, {relative path: text}) for each example function and fixture."""
    out = []
    for d in sorted((ROOT / "examples" / "functions").iterdir()):
        files = {p.name: p.read_text() for p in sorted(d.glob("*.py"))}
        if files:
            out.append((d.name, files))
    fixture = ROOT / "webhook" / "tests" / "fixtures" / "inline_function.py"
    out.append(("inline-fixture", {"func.py": fixture.read_text()}))
    return out


def service(name, mode, source, annotations=None):
    meta = dict(annotations or {})
    if mode is not None:
        meta["gaia.dev/execution-mode"] = mode
    meta["gaia.dev/source"] = source
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "demo", "annotations": meta},
        "spec": {
            "template": {
                "metadata": {"annotations": {"client.knative.dev/user-image": f"dev.local/{name}"}},
                "spec": {
                    "containers": [
                        {
                            "image": f"dev.local/{name}",
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "TARGET", "value": "gaia"}],
                            "resources": {},
                        }
                    ]
                },
            },
            "traffic": [{"latestRevision": True, "percent": 100}],
        },
    }


def review(uid, operation, obj, old=None, namespace="demo", kind="Service"):
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "serving.knative.dev", "version": "v1", "kind": kind},
            "resource": {"group": "serving.knative.dev", "version": "v1", "resource": "services"},
            "name": (obj or old or {}).get("metadata", {}).get("name", "f"),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def admission_seeds(out):
    n = 0

    def put(r):
        nonlocal n
        (out / f"{n:03}.json").write_text(json.dumps(r))
        n += 1

    for i, (name, files) in enumerate(functions()):
        source = files.get("func.py") or next(iter(files.values()))
        mode = ["auto", "gpu", "cpu", "gpu_preferred", "cpu_preferred"][i % 5]
        svc = service(name, mode, source)
        put(review(f"uid-{i}-create", "CREATE", svc))
        put(review(f"uid-{i}-update", "UPDATE", svc, old=svc))
    svc = service("f", "auto", "import torch\nx = torch.zeros(1).cuda()\n")
    put(review("uid-fast", "CREATE", service("f", "fast", "def handle(r):\n    return 1\n")))
    put(review("uid-delete", "DELETE", None, old=svc))
    put(review("uid-route", "CREATE", svc, kind="Route"))
    put(review("uid-excluded", "CREATE", svc, namespace="kube-system"))
    put(review("uid-no-object", "CREATE", None))
    prior = service(
        "f",
        "auto",
        "def handle(r):\n    return 1\n",
        {
            "gaia.dev/mode": "cpu",
            "gaia.dev/mode-source": "classifier",
            "gaia.dev/rationale": "pure Python",
            "gaia.dev/source-digest": "sha256:0",
            "gaia.dev/desired-placement": "gpu",
        },
    )
    put(review("uid-prior", "UPDATE", prior, old=prior))
    return n


def tar_layer(entries, form=tarfile.GNU_FORMAT):
    """entries: (path, bytes or None for a directory, symlink target or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=form) as t:
        for path, data, link in entries:
            info = tarfile.TarInfo(path)
            info.mtime = 1
            if link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                t.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compressed(kind, blob):
    if kind == 1:
        return gzip.compress(blob, mtime=0)
    if kind == 2:
        return subprocess.run(["zstd", "-q", "-c"], input=blob, capture_output=True, check=True).stdout
    return blob


def layer_seeds(out):
    kinds = [0, 1, 2] if shutil.which("zstd") else [0, 1]
    n = 0

    def put(layers):
        nonlocal n
        selector = (n % 4) << 6  # the limits preset
        blobs = []
        for i, (kind, blob) in enumerate(layers[:3]):
            selector |= kind << (2 * i)
            blobs.append(compressed(kind, blob))
        (out / f"{n:03}.bin").write_bytes(bytes([selector]) + SEPARATOR.join(blobs))
        n += 1

    for i, (name, files) in enumerate(functions()):
        code = [("app", None, None)] + [
            (f"app/{p}", t.encode(), None) for p, t in files.items()
        ]
        put([(kinds[i % len(kinds)], tar_layer(code))])
        # A stack: the code on top of a dependency layer, then a layer that deletes a file and
        # empties a directory of the one below, and links a module.
        deps = tar_layer(
            [
                ("usr/lib/python3.12/site-packages/torch/__init__.py", b"", None),
                ("app/lib/old.py", b"import cupy\n", None),
                ("app/legacy.py", b"import jax\n", None),
            ]
        )
        top = tar_layer(
            [
                ("app/.wh.legacy.py", b"", None),
                ("app/lib/.wh..wh..opq", b"", None),
                ("app/lib/helper.py", b"import numpy\n", None),
                ("app/alias.py", None, "func.py"),
            ]
        )
        k = kinds[(i + 1) % len(kinds)]
        put([(k, top), (kinds[i % len(kinds)], tar_layer(code)), (0, deps)])
    # PAX headers (a non-ASCII name, a long one).
    pax = [
        ("app/módulo.py", b"import torch\n", None),
        ("app/" + "d" * 120 + "/func.py", b"def handle(r):\n    return 1\n", None),
    ]
    put([(0, tar_layer(pax, tarfile.PAX_FORMAT))])
    return n


def main():
    out = pathlib.Path(sys.argv[1])
    for name, make in [("admission_review", admission_seeds), ("image_layer", layer_seeds)]:
        d = out / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        print(f"{name}: {make(d)} seed inputs")


if __name__ == "__main__":
    main()
