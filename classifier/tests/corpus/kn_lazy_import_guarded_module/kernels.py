import cupy as cp


def smooth_gpu(x):
    k = cp.ones(5, dtype=cp.float32) / 5
    return cp.asnumpy(cp.convolve(cp.asarray(x), k, mode="same"))
