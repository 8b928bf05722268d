from transformers import AutoModelForCausalLM, AutoTokenizer

from .quant import quantization


class Model:
    def load(self):
        self.tok = AutoTokenizer.from_pretrained("/app/data/model")
        self.model = AutoModelForCausalLM.from_pretrained(
            "/app/data/model", quantization_config=quantization(), device_map="balanced"
        )

    def predict(self, request):
        ids = self.tok(request["prompt"], return_tensors="pt").to(self.model.device)
        return {"text": self.tok.decode(self.model.generate(**ids)[0])}
