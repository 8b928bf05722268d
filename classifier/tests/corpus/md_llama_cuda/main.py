import modal

app = modal.App("llama-chat")
image = modal.Image.debian_slim().pip_install("torch", "transformers", "accelerate")


@app.cls(gpu="A100", image=image)
class Llama:
    @modal.enter()
    def load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        name = "meta-llama/Meta-Llama-3-8B-Instruct"
        self.tok = AutoTokenizer.from_pretrained(name)
        self.model = AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.bfloat16).to("cuda")

    @modal.method()
    def chat(self, prompt: str) -> str:
        ids = self.tok(prompt, return_tensors="pt").to("cuda")
        return self.tok.decode(self.model.generate(**ids, max_new_tokens=200)[0])
