import base64
import io

import numpy as np
from kserve import Model, ModelServer
from PIL import Image


class ImageTransformer(Model):
    def __init__(self, name, predictor_host):
        super().__init__(name)
        self.predictor_host = predictor_host
        self.ready = True

    def preprocess(self, payload, headers=None):
        out = []
        for inst in payload["instances"]:
            img = Image.open(io.BytesIO(base64.b64decode(inst["image_bytes"]["b64"]))).resize((224, 224))
            out.append((np.asarray(img, dtype=np.float32) / 255.0).tolist())
        return {"instances": out}

    def postprocess(self, response, headers=None):
        return {"classes": [int(np.argmax(p)) for p in response["predictions"]]}


if __name__ == "__main__":
    ModelServer().start([ImageTransformer("transformer", predictor_host="predictor:8080")])
