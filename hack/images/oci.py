#!/usr/bin/env python3
"""Build OCI images without a container engine, and push them to a registry.

Why a script of our own rather than umoci/skopeo/buildah: an image here is one or more
uncompressed tar layers we already have (mmdebstrap's rootfs tarball, or a few files such as a
static binary), plus a config and a manifest. Writing that is ~100 lines of Python, with no
extra packages, and every byte is under our control, so the same inputs give the same digests
(sorted entries, fixed mtimes, uid/gid 0, no compression). Pushing is the registry HTTP API v2
(monolithic blob upload, then the manifest), which docker-registry (CNCF distribution) serves.

  oci.py layer-dir OUT.tar ROOT [--mode PATH=0755 ...]    deterministic tar of a directory tree
  oci.py image OUT_DIR --layer A.tar [--layer B.tar ...] [--entrypoint JSON] [--cmd JSON]
         [--env K=V ...] [--user U] [--workdir W] [--label K=V ...] [--name REF]
                                                           OCI image layout in OUT_DIR
  oci.py push OUT_DIR REGISTRY REPO:TAG                    push (HTTP, e.g. 10.210.0.2:5000)
  oci.py digest OUT_DIR                                    manifest digest (sha256:...)
  oci.py unpack-wheels SITE_DIR WHEEL...                   install wheels as pip would (no
                                                           scripts, no compiling): SITE_DIR
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1764547200"))  # 2025-12-01T00:00:00Z
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def layer_dir(out: Path, root: Path, modes: dict[str, int]) -> None:
    """A tar of ROOT's tree: sorted, mtime EPOCH, owner 0:0, parent directories included."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            entries.append(Path(dirpath, name))
    entries.sort(key=lambda p: str(p.relative_to(root)))
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in entries:
            rel = str(path.relative_to(root))
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = EPOCH
            info.pax_headers = {}
            if rel in modes:
                info.mode = modes[rel]
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def unpack_wheels(site: Path, wheels: list[Path]) -> None:
    """Install wheels into SITE (a dist-packages directory) as pip does for pure and binary
    wheels with no scripts: the archive's files as they are, a ``NAME.data/purelib`` or
    ``platlib`` tree moved up into SITE, anything else under ``.data`` (scripts, headers)
    left out, and an INSTALLER file. A member that would land outside SITE is refused."""
    site.mkdir(parents=True, exist_ok=True)
    root = site.resolve()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for member in z.infolist():
                name = member.filename
                parts = name.split("/")
                if parts[0].endswith(".data"):
                    if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                        continue
                    name = "/".join(parts[2:])
                dest = (site / name).resolve()
                if root not in dest.parents and dest != root:
                    raise SystemExit(f"{wheel.name}: {member.filename} is outside the site directory")
                if member.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                # keep the executable bit of shared objects and the like
                mode = (member.external_attr >> 16) & 0o777
                os.chmod(dest, 0o755 if mode & 0o111 else 0o644)
            for info in z.namelist():
                if info.endswith(".dist-info/RECORD"):
                    (site / Path(info).parent / "INSTALLER").write_text("gaia-oci\n")


def write_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest.split(":")[1]).write_bytes(data)
    return digest, len(data)


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def image(args) -> None:
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    blobs = tmp / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers, diff_ids = [], []
    for layer in args.layer:
        digest = sha256_file(Path(layer))
        dest = blobs / digest.split(":")[1]
        if not dest.exists():
            try:
                os.link(layer, dest)  # same file system: no copy of a big rootfs
            except OSError:
                shutil.copyfile(layer, dest)
        layers.append({"mediaType": LAYER_TAR, "digest": digest, "size": dest.stat().st_size})
        diff_ids.append(digest)  # uncompressed: the diff ID is the blob digest
    cfg: dict = {}
    if args.entrypoint:
        cfg["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        cfg["Cmd"] = json.loads(args.cmd)
    cfg["Env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + args.env
    if args.user:
        cfg["User"] = args.user
    if args.workdir:
        cfg["WorkingDir"] = args.workdir
    if args.label:
        cfg["Labels"] = dict(kv.split("=", 1) for kv in args.label)
    created = "1970-01-01T00:00:00Z"
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": "hack/images/oci.py"} for _ in layers],
    }
    cdigest, csize = write_blob(blobs, canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": cdigest, "size": csize},
        "layers": layers,
    }
    mdigest, msize = write_blob(blobs, canonical(manifest))
    desc = {"mediaType": MANIFEST, "digest": mdigest, "size": msize}
    if args.name:
        desc["annotations"] = {"org.opencontainers.image.ref.name": args.name}
    (tmp / "index.json").write_bytes(canonical({"schemaVersion": 2, "manifests": [desc]}))
    (tmp / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(mdigest)


def manifest_desc(layout: Path) -> dict:
    return json.loads((layout / "index.json").read_text())["manifests"][0]


class Registry:
    def __init__(self, host: str):
        self.host = host

    def request(self, method: str, path: str, body=None, headers=None, length=None):
        conn = http.client.HTTPConnection(self.host, timeout=600)
        headers = dict(headers or {})
        if length is not None:
            headers["Content-Length"] = str(length)
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.headers, data

    def push_blob(self, repo: str, digest: str, path: Path) -> bool:
        status, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if status == 200:
            return False
        status, headers, data = self.request("POST", f"/v2/{repo}/blobs/uploads/", length=0)
        if status != 202:
            raise SystemExit(f"upload start for {repo}: HTTP {status} {data[:200]!r}")
        location = headers["Location"]
        if location.startswith("http"):
            location = "/" + location.split("/", 3)[3]
        sep = "&" if "?" in location else "?"
        size = path.stat().st_size
        with open(path, "rb") as f:
            status, _, data = self.request(
                "PUT", f"{location}{sep}digest={digest}", body=f, length=size,
                headers={"Content-Type": "application/octet-stream"})
        if status != 201:
            raise SystemExit(f"upload of {digest} to {repo}: HTTP {status} {data[:200]!r}")
        return True


def push(args) -> None:
    layout = Path(args.layout)
    repo, _, tag = args.ref.rpartition(":")
    reg = Registry(args.registry)
    desc = manifest_desc(layout)
    blobs = layout / "blobs" / "sha256"
    manifest_bytes = (blobs / desc["digest"].split(":")[1]).read_bytes()
    manifest = json.loads(manifest_bytes)
    sent = 0
    for d in [manifest["config"]] + manifest["layers"]:
        sent += reg.push_blob(repo, d["digest"], blobs / d["digest"].split(":")[1])
    status, _, data = reg.request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest_bytes,
                                  length=len(manifest_bytes), headers={"Content-Type": MANIFEST})
    if status != 201:
        raise SystemExit(f"manifest {repo}:{tag}: HTTP {status} {data[:300]!r}")
    print(f"{args.registry}/{repo}:{tag}@{desc['digest']} ({sent} new blobs)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("layer-dir")
    a.add_argument("out")
    a.add_argument("root")
    a.add_argument("--mode", action="append", default=[])
    b = sub.add_parser("image")
    b.add_argument("out")
    b.add_argument("--layer", action="append", required=True)
    b.add_argument("--entrypoint")
    b.add_argument("--cmd")
    b.add_argument("--env", action="append", default=[])
    b.add_argument("--user")
    b.add_argument("--workdir")
    b.add_argument("--label", action="append", default=[])
    b.add_argument("--name")
    c = sub.add_parser("push")
    c.add_argument("layout")
    c.add_argument("registry")
    c.add_argument("ref")
    d = sub.add_parser("digest")
    d.add_argument("layout")
    w = sub.add_parser("unpack-wheels")
    w.add_argument("site")
    w.add_argument("wheels", nargs="+")
    args = p.parse_args()
    if args.command == "layer-dir":
        modes = {m.split("=")[0]: int(m.split("=")[1], 8) for m in args.mode}
        layer_dir(Path(args.out), Path(args.root), modes)
    elif args.command == "image":
        image(args)
    elif args.command == "push":
        push(args)
    elif args.command == "unpack-wheels":
        unpack_wheels(Path(args.site), [Path(w) for w in args.wheels])
    else:
        print(manifest_desc(Path(args.layout))["digest"])


if __name__ == "__main__":
    sys.exit(main())
