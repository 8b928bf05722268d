import torch
from ray import serve


def to_gpu(t):
    return t.cuda()


@serve.deployment
class Model:
    def __init__(self):
        self.w = torch.rand(64, 64)

    def warmup(self):
        return to_gpu(self.w)

    def __call__(self, request):
        if torch.cuda.is_available():
            return {"v": float(to_gpu(self.w).sum())}
        return {"v": float(self.w.sum())}


app = Model.bind()
