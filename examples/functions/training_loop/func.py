"""Fine-tunes a small classifier head on the batch each request sends (online learning).

A training loop: forward, loss, backward, optimizer step, for a few epochs per request. It uses
a GPU when there is one and works on the CPU otherwise, but backpropagation is the heavy kind of
tensor work that a GPU speeds up most.
"""

import time

import torch
from torch import nn

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

model = nn.Sequential(
    nn.Linear(512, 1024),
    nn.ReLU(),
    nn.Linear(1024, 1024),
    nn.ReLU(),
    nn.Linear(1024, 10),
).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()


def handle(request: dict) -> dict:
    batch = int(request.get("batch", 256))
    epochs = int(request.get("epochs", 5))
    started = time.perf_counter()
    x = torch.randn(batch, 512, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    model.train()
    for _ in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    return {"loss": float(loss), "seconds": time.perf_counter() - started}
