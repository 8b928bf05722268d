import easyocr
import torch

reader = easyocr.Reader(["en"], gpu=torch.cuda.is_available())


def handle(req):
    return {"lines": [text for _, text, _ in reader.readtext(req["image_path"])]}
