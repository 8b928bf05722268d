import torch
from ray import serve
from torchvision.models import resnet152


@serve.deployment
class Classifier:
    def __init__(self):
        self.model = resnet152(weights="IMAGENET1K_V2").eval()

    async def __call__(self, request):
        batch = torch.rand(4, 3, 224, 224)
        with torch.no_grad():
            return {"top1": self.model(batch).argmax(1).tolist()}


app = Classifier.bind()
