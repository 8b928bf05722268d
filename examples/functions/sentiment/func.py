"""Sentiment of short texts with DistilBERT (66M parameters): light, GPU-capable."""

import torch
from transformers import pipeline

classifier = pipeline(
    "sentiment-analysis",
    model="distilbert-base-uncased-finetuned-sst-2-english",
    device=0 if torch.cuda.is_available() else -1,
)


def handle(request: dict) -> dict:
    texts = request.get("texts") or [str(request.get("text", "Serverless GPUs are great."))]
    return {"results": classifier([str(t) for t in texts][:32])}
