import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

PROVIDERS = [("CUDAExecutionProvider", {"device_id": 0})]


class TritonPythonModel:
    def initialize(self, args):
        self.session = ort.InferenceSession("/models/ranker/1/ranker.onnx", providers=PROVIDERS)

    def execute(self, requests):
        out = []
        for request in requests:
            q = pb_utils.get_input_tensor_by_name(request, "QUERY").as_numpy()
            scores = self.session.run(None, {"q": q.astype(np.int64)})[0]
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("SCORES", scores)]))
        return out
