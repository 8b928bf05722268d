import torch
from ts.torch_handler.base_handler import BaseHandler


class MnistHandler(BaseHandler):
    def initialize(self, context):
        props = context.system_properties
        gpu_id = int(props.get("gpu_id", 0))
        if gpu_id < 0:
            raise ValueError("gpu_id must be a non-negative index")
        self.device = torch.device(f"cuda:{gpu_id}" if torch.cuda.is_available() else "cpu")
        self.model = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        ).to(self.device)
        self.model.load_state_dict(torch.load(props.get("model_dir") + "/mnist.pt", map_location=self.device))

    def inference(self, data):
        x = torch.tensor(data, dtype=torch.float32, device=self.device)
        return self.model(x).argmax(1).tolist()
