"""SAXPY as a hand-written CUDA kernel with Numba: needs an NVIDIA GPU."""

import math

import numpy as np
from numba import cuda


@cuda.jit
def saxpy(a, x, y, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a * x[i] + y[i]


def handle(request: dict) -> dict:
    n = int(request.get("n", 1_000_000))
    x = cuda.to_device(np.random.rand(n).astype(np.float32))
    y = cuda.to_device(np.random.rand(n).astype(np.float32))
    out = cuda.device_array(n, dtype=np.float32)
    threads = 256
    saxpy[math.ceil(n / threads), threads](np.float32(2.0), x, y, out)
    return {"n": n, "checksum": float(out.copy_to_host().sum())}
