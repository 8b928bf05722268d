import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.labels = json.loads(args["model_config"])["parameters"]["labels"]["string_value"].split(",")

    def execute(self, requests):
        out = []
        for request in requests:
            logits = pb_utils.get_input_tensor_by_name(request, "LOGITS").as_numpy()
            probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
            top = np.array([self.labels[i].encode() for i in probs.argmax(-1)], dtype=object)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("LABEL", top)]))
        return out
