"""Matrix multiplication, the paper's first workload.

Each request names a size n; the function creates two random n x n matrices and multiplies
them. The device is chosen at import time: a GPU when one is present, else the CPU. The code is
device-agnostic, so how heavy it is depends entirely on the sizes callers send.
"""

import time

import torch

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def handle(request: dict) -> dict:
    n = int(request.get("size", 1000))
    if n < 0 or n > 40_000:
        return {"error": f"size must be between 0 and 40000, got {n}"}
    started = time.perf_counter()
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    c = torch.matmul(a, b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {
        "size": n,
        "device": device.type,
        "trace": float(c.diagonal().sum()) if n else 0.0,
        "seconds": time.perf_counter() - started,
    }
