"""Embeds text with a small transformer encoder, written for a GPU box only.

The model is moved to the GPU with `.cuda()` and inputs with `.to("cuda")`, with no availability
check: on a CPU-only node it fails at import time. The classifier must call it `gpu`.
"""

import torch
from torch import nn

encoder = nn.TransformerEncoder(
    nn.TransformerEncoderLayer(d_model=256, nhead=8, batch_first=True), num_layers=4
).cuda()
encoder.eval()
embedding = nn.Embedding(30000, 256).cuda()


def handle(request: dict) -> dict:
    ids = [hash(word) % 30000 for word in str(request.get("text", "hello world")).split()]
    tokens = torch.tensor([ids or [0]], dtype=torch.long).to("cuda")
    with torch.inference_mode():
        vector = encoder(embedding(tokens)).mean(dim=1)[0]
    torch.cuda.synchronize()
    return {"embedding": vector.cpu().tolist()[:8]}
