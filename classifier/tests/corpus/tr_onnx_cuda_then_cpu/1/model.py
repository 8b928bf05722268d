import json

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.model_config = json.loads(args["model_config"])
        self.session = ort.InferenceSession(
            "/models/encoder/1/encoder.onnx",
            providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
        )

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            y = self.session.run(None, {"input": x.astype(np.float32)})[0]
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", y)]))
        return responses
