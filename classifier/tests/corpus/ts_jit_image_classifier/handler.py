import io
import os

import torch
from PIL import Image
from torchvision import transforms
from ts.torch_handler.base_handler import BaseHandler


class ImageClassifier(BaseHandler):
    def initialize(self, context):
        properties = context.system_properties
        model_dir = properties.get("model_dir")
        gpu_id = properties.get("gpu_id")
        self.device = torch.device(
            "cuda:" + str(gpu_id) if torch.cuda.is_available() and gpu_id is not None else "cpu"
        )
        serialized_file = context.manifest["model"]["serializedFile"]
        model_pt_path = os.path.join(model_dir, serialized_file)
        self.model = torch.jit.load(model_pt_path, map_location=self.device)
        self.model.eval()
        self.transform = transforms.Compose([transforms.Resize(256), transforms.ToTensor()])
        self.initialized = True

    def preprocess(self, data):
        images = []
        for row in data:
            image = row.get("data") or row.get("body")
            images.append(self.transform(Image.open(io.BytesIO(image)).convert("RGB")))
        return torch.stack(images).to(self.device)

    def inference(self, data, *args, **kwargs):
        with torch.no_grad():
            return self.model(data)

    def postprocess(self, data):
        return data.argmax(dim=1).tolist()
