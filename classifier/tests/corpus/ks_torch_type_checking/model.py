from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from kserve import Model, ModelServer

if TYPE_CHECKING:
    import torch


class Scaler(Model):
    def load(self):
        self.mean = np.load("/mnt/models/mean.npy")
        self.std = np.load("/mnt/models/std.npy")
        self.ready = True

    def predict(self, payload, headers=None) -> dict:
        x = np.asarray(payload["instances"], dtype=np.float32)
        return {"predictions": ((x - self.mean) / self.std).tolist()}

    def as_tensor(self, x: "torch.Tensor") -> "torch.Tensor":
        return x


if __name__ == "__main__":
    ModelServer().start([Scaler("scaler")])
