import torch
from kserve import Model, ModelServer
from transformers import AutoModelForCausalLM, AutoTokenizer

MODEL_ID = "meta-llama/Llama-2-7b-chat-hf"


class LlamaModel(Model):
    def __init__(self, name):
        super().__init__(name)
        self.load()

    def load(self):
        self.tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
        self.model = AutoModelForCausalLM.from_pretrained(MODEL_ID, torch_dtype=torch.float32)
        self.ready = True

    def predict(self, payload, headers=None):
        ids = self.tokenizer(payload["prompt"], return_tensors="pt")
        out = self.model.generate(**ids, max_new_tokens=64)
        return {"text": self.tokenizer.decode(out[0], skip_special_tokens=True)}


if __name__ == "__main__":
    ModelServer().start([LlamaModel("llama")])
