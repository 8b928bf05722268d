import cupy as cp
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.mean = cp.asarray([0.485, 0.456, 0.406], dtype=cp.float32)

    def execute(self, requests):
        responses = []
        for request in requests:
            img = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            x = (cp.asarray(img, dtype=cp.float32) / 255.0 - self.mean).transpose(2, 0, 1)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", cp.asnumpy(x))]))
        return responses
