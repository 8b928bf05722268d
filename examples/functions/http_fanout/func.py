"""Fans a request out to several downstream services and merges their answers.

Pure Python: threads waiting on HTTP. Slow when the services are slow; a GPU cannot help.
(The word "cuda" below is only in a string, and the local function named `device` is not a GPU
call.)
"""

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

SERVICES = ["http://inventory/api", "http://pricing/api", "http://reviews/api"]
NOTE = "this function never uses cuda or a gpu"


def device(name: str) -> str:
    return name.split("/")[2]


def fetch(url: str, timeout: float) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return {"service": device(url), "ok": True, "body": json.loads(resp.read() or b"{}")}
    except Exception as exc:  # noqa: BLE001 - a failed service is reported, not raised
        return {"service": device(url), "ok": False, "error": str(exc)}


def handle(request: dict) -> dict:
    urls = request.get("urls") or SERVICES
    timeout = float(request.get("timeout", 2.0))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda u: fetch(u, timeout), urls))
    return {"results": results, "note": NOTE}
