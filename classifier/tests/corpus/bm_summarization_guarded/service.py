import bentoml
import torch
from transformers import pipeline

EXAMPLE = "Breaking news: ..."


@bentoml.service(resources={"cpu": "2"}, traffic={"timeout": 30})
class Summarization:
    def __init__(self) -> None:
        device = 0 if torch.cuda.is_available() else -1
        self.pipeline = pipeline("summarization", model="sshleifer/distilbart-cnn-12-6", device=device)

    @bentoml.api
    def summarize(self, text: str = EXAMPLE) -> str:
        return self.pipeline(text)[0]["summary_text"]
