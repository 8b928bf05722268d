"""``ApiClient``: a keep-alive HTTPS client of the cluster's apiserver with the admin
kubeconfig's client certificate: for writers faster than a kubectl process per request (the
edit storm of tests/e2e/test_faults.py)."""
from __future__ import annotations

import base64
import http.client
import json
import ssl
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import yaml

from tests.harness.cluster_env import Cluster


class ApiError(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status


class ApiClient:
    def __init__(self, cluster: Cluster):
        config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
        user = config["users"][0]["user"]
        ca = config["clusters"][0]["cluster"]["certificate-authority-data"]
        self.dir = Path(tempfile.mkdtemp(prefix="gaia-api-client-"))
        for name, data in (("ca.crt", ca), ("client.crt", user["client-certificate-data"]),
                           ("client.key", user["client-key-data"])):
            (self.dir / name).write_bytes(base64.b64decode(data))
            (self.dir / name).chmod(0o600)
        self.ctx = ssl.create_default_context(cafile=str(self.dir / "ca.crt"))
        self.ctx.load_cert_chain(str(self.dir / "client.crt"), str(self.dir / "client.key"))
        url = urlparse(config["clusters"][0]["cluster"]["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.conn: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, body: dict | None = None,
                content_type: str = "application/json") -> dict:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
            try:
                self.conn.request(method, path, None if body is None else json.dumps(body),
                                  {"Content-Type": content_type, "Accept": "application/json"})
                resp = self.conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt:
                    raise
                continue
            if resp.status >= 300:
                raise ApiError(resp.status, data)
            return json.loads(data)
        raise AssertionError("unreachable")

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body, "application/merge-patch+json")
