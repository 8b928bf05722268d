import importlib.util


def gpu_available():
    if importlib.util.find_spec("cupy") is None:
        return False
    import cupy

    return cupy.cuda.runtime.getDeviceCount() > 0
