import numpy as np
from ray import serve
from starlette.requests import Request


def has_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def fft_gpu(signal):
    import cupy as cp

    return cp.asnumpy(cp.abs(cp.fft.rfft(cp.asarray(signal))))


def fft_cpu(signal):
    return np.abs(np.fft.rfft(signal))


@serve.deployment
class Spectrum:
    def __init__(self):
        self.gpu = has_gpu()

    async def __call__(self, request: Request):
        signal = np.asarray((await request.json())["signal"], dtype=np.float32)
        if has_gpu():
            spectrum = fft_gpu(signal)
        else:
            spectrum = fft_cpu(signal)
        return {"spectrum": spectrum.tolist()}


app = Spectrum.bind()
