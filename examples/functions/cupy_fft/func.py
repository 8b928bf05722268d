"""Spectrum of a signal with CuPy (NumPy on the GPU): needs an NVIDIA GPU."""

import cupy as cp


def handle(request: dict) -> dict:
    n = int(request.get("n", 1 << 20))
    signal = cp.random.standard_normal(n, dtype=cp.float32)
    spectrum = cp.abs(cp.fft.rfft(signal))
    peak = int(cp.argmax(spectrum).get())
    return {"n": n, "peak_bin": peak, "energy": float(cp.sum(spectrum**2).get())}
