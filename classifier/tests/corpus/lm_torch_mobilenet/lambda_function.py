import base64
import io
import json

import torch
from PIL import Image
from torchvision import models, transforms

model = models.mobilenet_v3_small(weights="DEFAULT").eval()
prep = transforms.Compose([transforms.Resize(224), transforms.ToTensor()])


def lambda_handler(event, context):
    img = Image.open(io.BytesIO(base64.b64decode(event["body"]))).convert("RGB")
    with torch.no_grad():
        cls = int(model(prep(img).unsqueeze(0)).argmax())
    return {"statusCode": 200, "body": json.dumps({"class": cls})}
