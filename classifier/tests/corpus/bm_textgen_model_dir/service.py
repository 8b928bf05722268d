import os

import bentoml
from transformers import pipeline

MODEL_DIR = os.environ.get("MODEL_DIR", "/models/chat")


@bentoml.service(traffic={"timeout": 300})
class Generate:
    def __init__(self):
        self.pipe = pipeline("text-generation", model=MODEL_DIR, device_map="auto")

    @bentoml.api
    def generate(self, prompt: str, max_new_tokens: int = 128) -> str:
        return self.pipe(prompt, max_new_tokens=max_new_tokens)[0]["generated_text"]
