import json

import torch
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        kind = args["model_instance_kind"]
        device_id = args["model_instance_device_id"]
        self.device = "cuda:{}".format(device_id) if kind == "GPU" else "cpu"
        self.model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
        self.model.load_state_dict(torch.load("/models/mlp/1/weights.pt", map_location="cpu"))
        self.model.to(self.device).eval()
        self.config = json.loads(args["model_config"])

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            with torch.no_grad():
                y = self.model(torch.from_numpy(x).to(self.device)).cpu().numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", y)]))
        return responses
