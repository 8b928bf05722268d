import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from ts.torch_handler.base_handler import BaseHandler


class LlmHandler(BaseHandler):
    def initialize(self, ctx):
        model_dir = ctx.system_properties.get("model_dir")
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_compute_dtype=torch.float16,
            bnb_4bit_quant_type="nf4",
        )
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(
            model_dir, quantization_config=quant, device_map="auto"
        )
        self.initialized = True

    def preprocess(self, requests):
        prompts = [r.get("data") or r.get("body") for r in requests]
        return self.tokenizer(prompts, return_tensors="pt", padding=True)

    def inference(self, inputs):
        out = self.model.generate(**inputs.to(self.model.device), max_new_tokens=128)
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    def postprocess(self, outputs):
        return outputs
