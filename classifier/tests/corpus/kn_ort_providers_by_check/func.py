import numpy as np
import onnxruntime as ort

providers = (
    ["CUDAExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers()
    else ["CPUExecutionProvider"]
)
session = ort.InferenceSession("model.onnx", providers=providers)


def handle(req):
    x = np.asarray(req["x"], dtype=np.float32)
    return {"y": session.run(None, {"x": x})[0].tolist()}
