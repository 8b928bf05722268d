import json
import logging
import os

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from ts.torch_handler.base_handler import BaseHandler

logger = logging.getLogger(__name__)


class TransformersSeqClassifierHandler(BaseHandler):
    def __init__(self):
        super().__init__()
        self.initialized = False

    def initialize(self, ctx):
        self.manifest = ctx.manifest
        properties = ctx.system_properties
        model_dir = properties.get("model_dir")
        self.device = torch.device(
            "cuda:" + str(properties.get("gpu_id"))
            if torch.cuda.is_available() and properties.get("gpu_id") is not None
            else "cpu"
        )
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir)
        self.model.to(self.device)
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        mapping = os.path.join(model_dir, "index_to_name.json")
        with open(mapping) as f:
            self.mapping = json.load(f)
        self.initialized = True

    def preprocess(self, requests):
        texts = [r.get("data") or r.get("body") for r in requests]
        texts = [t.decode("utf-8") if isinstance(t, (bytes, bytearray)) else t for t in texts]
        return self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)

    def inference(self, inputs):
        with torch.no_grad():
            logits = self.model(**inputs).logits
        return [self.mapping[str(i)] for i in logits.argmax(-1).tolist()]

    def postprocess(self, outputs):
        return outputs
