"""Review load (test harness): AdmissionReviews POSTed straight to a gaia-webhook at a fixed
rate, open loop (a late answer does not slow the sender down), each one the review an
apiserver sends for `kn service create NAME --annotation gaia.dev/execution-mode=auto` with
the function inline; a fraction ``--distinct`` carries new source (parsed and classified),
the rest one known source (the digest cache). Prints, and writes to ``--out``, a JSON summary:
sent, answered, errors (transport errors, non-200, or an answer that is not an allowed
AdmissionReview with the request's uid), p50/p90/p99/max in ms.

Usage (inside the cluster's network namespace when the webhook listens there):
    python3 -m tests.harness.review_load --url https://127.0.0.1:18454/mutate --rate 50 \
        --seconds 60 --distinct 0.1 --out load.json
"""
from __future__ import annotations

import argparse
import http.client
import json
import queue
import ssl
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from tests.harness.paths import REPO

SOURCE = (REPO / "webhook" / "tests" / "fixtures" / "inline_function.py").read_text()


def review(i: int, distinct: bool) -> tuple[str, bytes]:
    uid = str(uuid.uuid4())
    name = f"load-{i}"
    source = SOURCE + (f"\n# revision {uid}\n" if distinct else "")
    annotations = {"gaia.dev/execution-mode": "auto"}
    service = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "review-load",
                     "annotations": dict(annotations, **{"gaia.dev/source": source})},
        "spec": {"template": {"metadata": {"annotations": annotations},
                              "spec": {"containers": [{"image": f"dev.local/gaia/{name}", "resources": {}}]}}},
    }
    gvk = {"group": "serving.knative.dev", "version": "v1", "kind": "Service"}
    gvr = {"group": "serving.knative.dev", "version": "v1", "resource": "services"}
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": name, "namespace": "review-load", "operation": "CREATE",
        "userInfo": {"username": "review-load"}, "object": service, "oldObject": None,
        "dryRun": False}}
    return uid, json.dumps(body).encode()


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def summarize(r: dict) -> str:
    return (f"{r['answered']}/{r['sent']} reviews answered, {r['errors']} errors, "
            f"p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
            f"max {r['max_ms']:.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--rate", type=float, required=True, help="reviews per second")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--distinct", type=float, default=0.1, help="fraction with new source")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    url = urlparse(args.url)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the test's self-signed cert
    work: queue.Queue = queue.Queue()
    lat: list[float] = []
    errors: list[str] = []
    failed = [0]  # transport errors (no answer)
    lock = threading.Lock()

    def worker():
        conn = None
        while True:
            item = work.get()
            if item is None:
                return
            uid, body, due = item
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=10)
                conn.request("POST", url.path, body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                ms = (time.monotonic() - due) * 1000  # from when it was due: queueing counts
                answer = json.loads(data).get("response", {}) if resp.status == 200 else {}
                ok = resp.status == 200 and answer.get("uid") == uid and answer.get("allowed") is True
                with lock:
                    lat.append(ms)
                    if not ok:
                        errors.append(f"HTTP {resp.status}: {data[:200]!r}")
            except Exception as e:  # noqa: BLE001 - counted
                conn = None
                with lock:
                    errors.append(repr(e))
                    failed[0] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.workers)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    n = int(args.rate * args.seconds)
    every = int(round(1 / args.distinct)) if args.distinct > 0 else 0
    for i in range(n):
        due = t0 + i / args.rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        uid, body = review(i, bool(every) and i % every == 0)
        work.put((uid, body, due))
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join(timeout=30)
    ms = sorted(lat)
    unanswered = max(0, n - len(ms) - failed[0])  # still queued when the workers were given up
    result = {"sent": n, "answered": len(ms), "errors": len(errors) + unanswered,
              "rate": args.rate, "seconds": args.seconds, "distinct": args.distinct,
              "p50_ms": percentile(ms, 0.5), "p90_ms": percentile(ms, 0.9),
              "p99_ms": percentile(ms, 0.99), "max_ms": ms[-1] if ms else float("nan"),
              "first_errors": errors[:5]}
    print(json.dumps(result))
    print(summarize(result), file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
