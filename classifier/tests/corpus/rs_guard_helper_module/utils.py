import torch


def cuda_ok():
    return torch.cuda.is_available() and torch.cuda.device_count() > 0
