#!/usr/bin/env python3
"""CPython's own ast.parse over the same files the classifier benchmark reads: the baseline.

Usage: python3 webhook/benches/ast_parse_baseline.py [STDLIB_DIR] [EXAMPLES_DIR]
Prints one line `ast.parse: X.X MB/s over N files, B bytes (best of 3, one core)` and, with
EXAMPLES_DIR, p50/p99 of ast.parse per example function (all its .py files).
Files under site-packages/dist-packages are skipped, as in the Rust benchmark.
"""

import ast
import os
import sys
import sysconfig
import time
import warnings


def python_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "dist-packages"))
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def read_all(paths):
    out = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                out.append(f.read())
        except OSError:
            pass
    return out


def parse_all(sources):
    for src in sources:
        try:
            ast.parse(src)
        except (SyntaxError, ValueError):
            pass


def main():
    warnings.simplefilter("ignore")
    root = sys.argv[1] if len(sys.argv) > 1 else sysconfig.get_paths()["stdlib"]
    sources = read_all(python_files(root))
    total = sum(len(s) for s in sources)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        parse_all(sources)
        best = min(best, time.perf_counter() - started)
    print(f"ast.parse: {total / best / 1e6:.1f} MB/s over {len(sources)} files, {total} bytes "
          f"(best of 3, one core)")
    if len(sys.argv) > 2:
        examples = sys.argv[2]
        for name in sorted(os.listdir(examples)):
            d = os.path.join(examples, name)
            if not os.path.isdir(d):
                continue
            srcs = read_all(python_files(d))
            times = []
            for _ in range(2000):
                started = time.perf_counter()
                parse_all(srcs)
                times.append(time.perf_counter() - started)
            times.sort()
            p50 = times[len(times) // 2] * 1e6
            p99 = times[int(len(times) * 0.99)] * 1e6
            print(f"ast.parse {name}: p50 {p50:.1f} us, p99 {p99:.1f} us")


if __name__ == "__main__":
    main()
