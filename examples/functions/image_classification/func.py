"""Image classification with ResNet-18, the paper's second workload.

Loads a ResNet-18 once per instance and classifies one 224x224 RGB image per request (sent as
base64-encoded JPEG/PNG bytes, or a synthetic image when none is sent). Uses a GPU when present.
"""

import base64
import io
import os
import time

import torch
from torchvision import models, transforms

device = "cuda" if torch.cuda.is_available() else "cpu"

_preprocess = transforms.Compose(
    [
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ]
)


def _load_model():
    # GAIA_RANDOM_WEIGHTS builds the same architecture without downloading weights: the same
    # compute, used for calibration on machines with no access to a model hub.
    if os.environ.get("GAIA_RANDOM_WEIGHTS"):
        net = models.resnet18(weights=None)
    else:
        net = models.resnet18(weights=models.ResNet18_Weights.DEFAULT)
    return net.eval().to(device)


model = _load_model()


def _image_tensor(request: dict) -> torch.Tensor:
    encoded = request.get("image")
    if encoded:
        from PIL import Image

        image = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
        return _preprocess(image).unsqueeze(0)
    return torch.rand(1, 3, 224, 224)


def handle(request: dict) -> dict:
    started = time.perf_counter()
    batch = _image_tensor(request).to(device)
    with torch.inference_mode():
        logits = model(batch)
    probabilities = torch.softmax(logits[0], dim=0)
    top = torch.topk(probabilities, 5)
    return {
        "device": device,
        "top5": [
            {"class": int(i), "p": float(p)} for p, i in zip(top.values, top.indices)
        ],
        "seconds": time.perf_counter() - started,
    }
