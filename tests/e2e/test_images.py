"""Gaia's two images as hack/build.sh gaia-images builds them (hack/images/oci.py, no container
engine) describe the same image as the root Dockerfile: user, entrypoint, binary path, GAIA_BIN.

Needs no cluster; skipped until `hack/build.sh gaia-images` has built the OCI layouts (found
through hack/lib.sh's GAIA_IMAGES_DIR, honouring GAIA_CACHE).
"""
from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.harness.paths import REPO


BINS = ("gaia-webhook", "gaia-autoscaler")


def images_dir() -> Path:
    out = subprocess.run(["bash", "-c", '. hack/lib.sh && echo "$GAIA_IMAGES_DIR"'], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def dockerfile_final_stage() -> dict:
    """USER, ENTRYPOINT, ENV and the COPY destination of the Dockerfile's last stage."""
    text = (REPO / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]
    out: dict = {"env": {}}
    for line in final.splitlines():
        if line.startswith("USER "):
            out["user"] = line.split(None, 1)[1].strip()
        elif line.startswith("ENTRYPOINT "):
            out["entrypoint"] = json.loads(line.split(None, 1)[1])
        elif line.startswith("ENV "):
            k, v = line.split(None, 1)[1].split("=", 1)
            out["env"][k] = v
        elif line.startswith("COPY "):
            out["copy_dest"] = line.split()[-1]
    return out


def layout(bin_name: str) -> Path:
    d = images_dir()
    dirs = sorted(d.glob(f"gaia_{bin_name}_*")) if d.is_dir() else []
    dirs = [x for x in dirs if (x / "index.json").is_file()]
    if not dirs:
        pytest.skip(f"no OCI layout of {bin_name} in {d} (hack/build.sh gaia-images)")
    return dirs[-1]


def blob(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.split(":", 1)[1]


@pytest.mark.parametrize("bin_name", BINS)
def test_oci_image_matches_dockerfile(bin_name: str):
    root = layout(bin_name)
    index = json.loads((root / "index.json").read_text())
    manifest = json.loads(blob(root, index["manifests"][0]["digest"]).read_text())
    config = json.loads(blob(root, manifest["config"]["digest"]).read_text())["config"]
    want = dockerfile_final_stage()
    binary = want["copy_dest"].replace("${BIN}", bin_name)
    assert config["User"] == want["user"] == "65532:65532"
    assert config["Entrypoint"] == want["entrypoint"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["GAIA_BIN"] == want["env"]["GAIA_BIN"].replace("${BIN}", bin_name) == binary
    # the binary is in the last layer, executable, at the Dockerfile's path
    with tarfile.open(blob(root, manifest["layers"][-1]["digest"])) as tar:
        member = tar.getmember(binary.lstrip("/"))
        assert member.isfile() and member.mode & 0o111
    # the base layer has the shell the entrypoint runs and CA certificates
    with tarfile.open(blob(root, manifest["layers"][0]["digest"])) as tar:
        names = set(tar.getnames())
    assert {"./bin/sh", "./usr/bin/sh"} & names or any(re.fullmatch(r"\.?/?bin/sh", n) for n in names)
    assert any(n.endswith("etc/ssl/certs/ca-certificates.crt") for n in names)
