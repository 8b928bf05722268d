import torch
from ray import serve
from torchvision.models import ResNet50_Weights, resnet50


@serve.deployment(ray_actor_options={"num_gpus": 1})
class ImageModel:
    def __init__(self):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = resnet50(weights=ResNet50_Weights.DEFAULT).eval().to(self.device)
        self.preprocess = ResNet50_Weights.DEFAULT.transforms()

    async def __call__(self, request):
        batch = torch.rand(16, 3, 224, 224, device=self.device)
        with torch.inference_mode():
            return {"classes": self.model(batch).argmax(1).tolist()}


app = ImageModel.bind()
