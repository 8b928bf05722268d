"""Formats a report with Python 3.12 f-strings (PEP 701: the same quotes inside the braces).

The classifier's parser reads these (it read Python only up to 3.11 before, and this file went
to the token-level scan); it sees the torch import and the guarded device choice.
"""

import torch

device = "cuda" if torch.cuda.is_available() else "cpu"


def handle(request: dict) -> dict:
    values = torch.tensor(request.get("values", [1.0, 2.0, 3.0]), device=device)
    stats = {"mean": float(values.mean()), "max": float(values.max())}
    return {"report": f"{", ".join(f"{k}={v:.2f}" for k, v in stats.items())} on {device}"}
