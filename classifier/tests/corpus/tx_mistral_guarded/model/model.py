import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

CHECKPOINT = "mistralai/Mistral-7B-v0.1"


class Model:
    def __init__(self, **kwargs):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def load(self):
        self.tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT)
        self.model = AutoModelForCausalLM.from_pretrained(CHECKPOINT, torch_dtype=torch.float16).to(self.device)

    def predict(self, request):
        inputs = self.tokenizer(request["prompt"], return_tensors="pt").to(self.device)
        out = self.model.generate(**inputs, max_new_tokens=request.get("max_new_tokens", 128))
        return {"completion": self.tokenizer.decode(out[0], skip_special_tokens=True)}
