"""Gaia's one duration syntax, read the way the Rust side reads it (contract's
``parse_duration``): a non-negative decimal number and one unit, ``us`` or ``µs``, ``ms``,
``s``, ``m``, ``h`` -- ``250us``, ``500ms``, ``1.5s``, ``5m``, ``6h`` -- from 0 up to 30 days.
A bare number is rejected, and so are exponents (``1e3s``) and compound forms (``1m30s``)."""
from __future__ import annotations

import re

UNIT_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_SECONDS = 30 * 86_400.0
_SYNTAX = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)\s*(us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """The duration in seconds; ValueError for anything outside the syntax."""
    m = _SYNTAX.fullmatch(text.strip())
    if not m:
        raise ValueError(f"cannot read duration {text!r} (a number and one unit of us, ms, s, m "
                         "or h, e.g. 500ms, 1.5s, 5m)")
    seconds = float(m.group(1)) * UNIT_SECONDS[m.group(2)]
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {text!r} is out of range (0 to 30 days)")
    return seconds
