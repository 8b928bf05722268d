#!/usr/bin/env python3
"""Gaia's function server: runs one Python function as a Knative Service's user container.

Knative's runtime contract: listen on $PORT (default 8080), answer HTTP/1.1, exit on SIGTERM.
The function is ``func.py`` with ``handle(request: dict) -> dict`` (examples/functions/*), found
in $GAIA_FUNCTION_DIR (default /app, where a ConfigMap is mounted: ``kn service create ...
--mount /app=cm:NAME``), or else in /opt/gaia/function (code baked into an image).

The module is imported *before* the port is opened: importing torch and loading a model takes
seconds, and Knative's default readiness check (queue-proxy's TCP probe of $PORT) must not pass
before the function can answer. Requests:

  POST /            JSON body -> handle(body) -> 200 JSON (500 {"error": ...} if it raises)
  GET  /            the same with an empty request ({})
  GET  /healthz     200 {"ok": true, "function": ...} (liveness/readiness if one is configured)

GPU STAND-IN mode (the test harness's, for the GPU-pool worker of the local cluster, which has
no GPU): when the container was given ``GAIA_GPU_STANDIN=PROFILE`` -- by the stand-in device
plugin (hack/standins/gpu-device-plugin) when the pod was allocated an ``nvidia.com/gpu`` -- the
function is still imported (its cold start is real), but a request is answered after the
latency the calibrated profile (``$GAIA_PROFILES_DIR/PROFILE.json``, gaia-calibration/1,
measured on a real GPU: docs/calibration.md) gives the workload on a GPU, without computing:
``{"standin": "gpu", "profile", "workload", "seconds", ...}`` with the header
``X-Gaia-Standin: gpu``. The workload is ``$GAIA_STANDIN_WORKLOAD``, else the Knative Service's
name (``$K_SERVICE``) with ``-`` read as ``_``, as the emulator reads it.

Only the standard library (and, in stand-in mode, tests/harness/gpu_profile.py, which the
image carries next to this file): it runs on any image with python3.
"""
from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SEARCH = [os.environ.get("GAIA_FUNCTION_DIR", "/app"), "/opt/gaia/function"]


def load_function():
    """func.py's handle. A directory with an ``__init__.py`` is a package (examples/functions/
    text_generation: ``from .model import load``): it is imported as the package ``function``
    and func.py as ``function.func``, so relative imports work; otherwise func.py is a plain
    module with its directory on sys.path."""
    for d in SEARCH:
        path = Path(d) / "func.py"
        if not path.is_file():
            continue
        init = path.parent / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(
                "function", init, submodule_search_locations=[str(path.parent)])
            package = importlib.util.module_from_spec(spec)
            sys.modules["function"] = package
            spec.loader.exec_module(package)
            module = importlib.import_module("function.func")
        else:
            sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location("func", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        return module.handle, str(path)
    raise SystemExit(f"function server: no func.py in {SEARCH}")


HANDLE, SOURCE = None, None
STARTED = time.time()
STANDIN = None


class GpuStandin:
    """Answers like the calibrated GPU would: the profile's latency, no computation."""

    def __init__(self, profile: str):
        try:
            from gpu_profile import Profiles  # shipped next to this file in the image
        except ImportError as exc:
            raise SystemExit(f"function server: GPU stand-in {profile!r} requested, but "
                             f"gpu_profile.py is not importable: {exc}")
        path = Path(os.environ.get("GAIA_PROFILES_DIR", "/usr/local/share/gaia/profiles")) / f"{profile}.json"
        if not path.is_file():
            raise SystemExit(f"function server: GPU stand-in profile {path} not found")
        self.profile = profile
        self.profiles = Profiles(path)
        self.workload = os.environ.get("GAIA_STANDIN_WORKLOAD") or \
            os.environ.get("K_SERVICE", "").replace("-", "_")
        self.rng = random.Random()
        self.lock = threading.Lock()
        if self.workload not in self.profiles.workloads:
            raise SystemExit(f"function server: GPU stand-in: profile {profile!r} has no workload "
                             f"{self.workload!r} (set GAIA_STANDIN_WORKLOAD to one of "
                             f"{sorted(self.profiles.workloads)})")

    def answer(self, request: dict) -> dict:
        with self.lock:  # random.Random is not meant to be shared between threads unguarded
            latency, _busy = self.profiles.sample(self.workload, "gpu", request, self.rng)
        time.sleep(latency)
        return {"standin": "gpu", "profile": self.profile, "workload": self.workload,
                "device": "cuda (stand-in)", "seconds": latency}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gaia-function-server/1"

    def log_message(self, fmt, *args):  # one line per request would flood the pod log
        pass

    def _send(self, status: int, obj) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if STANDIN is not None:
            self.send_header("X-Gaia-Standin", "gpu")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _invoke(self, request) -> None:
        if not isinstance(request, dict):
            self._send(400, {"error": "the request body must be a JSON object"})
            return
        try:
            self._send(200, STANDIN.answer(request) if STANDIN is not None else HANDLE(request))
        except Exception as exc:  # the function's failure is the caller's answer
            traceback.print_exc()
            self._send(500, {"error": f"{type(exc).__name__}: {exc}"})

    def do_GET(self):
        if self.path.startswith("/healthz"):
            self._send(200, {"ok": True, "function": SOURCE, "uptime_s": time.time() - STARTED,
                             "standin": STANDIN.profile if STANDIN is not None else None})
        else:
            self._invoke({})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            request = json.loads(raw or b"{}")
        except ValueError as exc:
            self._send(400, {"error": f"invalid JSON: {exc}"})
            return
        self._invoke(request)


def main() -> None:
    global HANDLE, SOURCE, STANDIN
    t0 = time.time()
    HANDLE, SOURCE = load_function()
    if os.environ.get("GAIA_GPU_STANDIN"):
        STANDIN = GpuStandin(os.environ["GAIA_GPU_STANDIN"])
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("", port), Handler)
    server.daemon_threads = True
    mode = (f"GPU STAND-IN: answers with profile {STANDIN.profile}'s GPU latency for workload "
            f"{STANDIN.workload}" if STANDIN is not None else "computes on this node")
    print(f"function server: {SOURCE} loaded in {time.time() - t0:.2f}s, listening on :{port} ({mode})",
          flush=True)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
