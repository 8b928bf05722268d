import io
import os

from PIL import Image
from ts.torch_handler.base_handler import BaseHandler
from ultralytics import YOLO


class YoloHandler(BaseHandler):
    def initialize(self, context):
        model_dir = context.system_properties.get("model_dir")
        model_pt_path = os.path.join(model_dir, context.manifest["model"]["serializedFile"])
        self.model = YOLO(model_pt_path)
        self.initialized = True

    def preprocess(self, data):
        return [Image.open(io.BytesIO(row.get("data") or row.get("body"))) for row in data]

    def inference(self, images):
        return self.model(images, conf=0.25)

    def postprocess(self, results):
        return [r.boxes.xyxy.tolist() for r in results]
