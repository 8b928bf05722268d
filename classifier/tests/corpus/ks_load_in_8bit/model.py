from kserve import Model, ModelServer
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer


class T5(Model):
    def load(self):
        self.tok = AutoTokenizer.from_pretrained("google/flan-t5-xl")
        self.model = AutoModelForSeq2SeqLM.from_pretrained(
            "google/flan-t5-xl", load_in_8bit=True, device_map="auto"
        )
        self.ready = True

    def predict(self, payload, headers=None):
        ids = self.tok(payload["text"], return_tensors="pt").input_ids.to(self.model.device)
        return {"out": self.tok.decode(self.model.generate(ids)[0], skip_special_tokens=True)}


if __name__ == "__main__":
    ModelServer().start([T5("t5")])
