import torch
from transformers import BitsAndBytesConfig


def quantization():
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)
