"""``wait_until``: poll until a condition holds; and the tests' default time limits."""
from __future__ import annotations

import os
import time
from typing import Any, Callable

# Default time limits (seconds); generous for a loaded 2-core machine.
READY_TIMEOUT = float(os.environ.get("GAIA_E2E_READY_TIMEOUT", "120"))
DELETE_TIMEOUT = float(os.environ.get("GAIA_E2E_DELETE_TIMEOUT", "90"))


def wait_until(fn: Callable[[], Any], timeout: float = READY_TIMEOUT, desc: str = "condition",
               interval: float = 1.0) -> Any:
    """Poll fn() until it returns a truthy value, which is returned.

    Exceptions raised by fn count as 'not yet'; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    last_val: Any = None
    while True:
        try:
            last_val = fn()
            if last_val:
                return last_val
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_exc}" if last_exc else f"; last value: {last_val!r}"
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {desc}{detail}")
        time.sleep(interval)
