import bentoml
import torch
import torchvision
from PIL.Image import Image
from torchvision import transforms


@bentoml.service
class Classifier:
    def __init__(self):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = torchvision.models.resnet18(weights="IMAGENET1K_V1").eval().to(self.device)
        self.tf = transforms.Compose([transforms.Resize(224), transforms.ToTensor()])

    @bentoml.api
    def classify(self, image: Image) -> int:
        with torch.no_grad():
            return int(self.model(self.tf(image).unsqueeze(0).to(self.device)).argmax())
