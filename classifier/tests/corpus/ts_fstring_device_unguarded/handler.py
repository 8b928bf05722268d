import torch
from ts.torch_handler.base_handler import BaseHandler


class Handler(BaseHandler):
    def initialize(self, context):
        gpu_id = context.system_properties.get("gpu_id")
        self.device = torch.device(f"cuda:{gpu_id}")
        self.model = torch.jit.load("model.pt", map_location=self.device)

    def inference(self, data):
        x = torch.as_tensor(data, device=self.device)
        return self.model(x).tolist()
