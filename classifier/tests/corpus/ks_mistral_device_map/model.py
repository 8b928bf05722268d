import torch
from kserve import Model, ModelServer
from transformers import AutoModelForCausalLM, AutoTokenizer


class Chat(Model):
    def load(self):
        name = "mistralai/Mistral-7B-Instruct-v0.2"
        self.tok = AutoTokenizer.from_pretrained(name)
        self.lm = AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.bfloat16, device_map="auto")
        self.ready = True

    async def predict(self, payload, headers=None):
        ids = self.tok.apply_chat_template(payload["messages"], return_tensors="pt").to(self.lm.device)
        out = self.lm.generate(ids, max_new_tokens=256)
        return {"reply": self.tok.decode(out[0][ids.shape[1]:], skip_special_tokens=True)}


if __name__ == "__main__":
    m = Chat("chat")
    m.load()
    ModelServer().start([m])
