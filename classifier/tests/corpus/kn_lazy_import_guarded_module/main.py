import numpy as np

from gpu_check import gpu_available


def handle(req):
    x = np.asarray(req["x"], dtype=np.float32)
    if gpu_available():
        from kernels import smooth_gpu

        return {"y": smooth_gpu(x).tolist()}
    return {"y": np.convolve(x, np.ones(5) / 5, mode="same").tolist()}
