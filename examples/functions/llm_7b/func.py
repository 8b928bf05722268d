"""Chat with Mistral-7B-Instruct: large-model inference, placed by accelerate (device_map="auto").

device_map="auto" puts the model on the GPU when there is one and falls back to the CPU (slowly)
when there is none: GPU-preferred.
"""

import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

MODEL_ID = os.environ.get("MODEL_ID", "mistralai/Mistral-7B-Instruct-v0.2")

tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
model = AutoModelForCausalLM.from_pretrained(
    MODEL_ID, torch_dtype=torch.bfloat16, device_map="auto"
)


def handle(request: dict) -> dict:
    messages = [{"role": "user", "content": str(request.get("prompt", "Hello!"))}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    ids = ids.to(model.device)
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=int(request.get("max_new_tokens", 128)))
    return {"text": tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)}
