"""Idle wait, the paper's fourth workload: slow, but not because it computes.

Each request waits (2 seconds by default), standing in for a function that calls a slow
downstream service. A GPU cannot make it faster.
"""

import time


def handle(request: dict) -> dict:
    seconds = float(request.get("seconds", 2.0))
    seconds = min(max(seconds, 0.0), 30.0)
    started = time.monotonic()
    time.sleep(seconds)
    return {"waited": time.monotonic() - started}
