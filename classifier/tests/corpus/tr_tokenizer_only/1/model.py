import numpy as np
import triton_python_backend_utils as pb_utils
from transformers import AutoTokenizer


class TritonPythonModel:
    def initialize(self, args):
        self.tokenizer = AutoTokenizer.from_pretrained("/models/tokenizer/1/vocab")

    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            enc = self.tokenizer([t.decode() for t in text.reshape(-1)], padding=True, return_tensors="np")
            ids = pb_utils.Tensor("INPUT_IDS", enc["input_ids"].astype(np.int64))
            responses.append(pb_utils.InferenceResponse([ids]))
        return responses
