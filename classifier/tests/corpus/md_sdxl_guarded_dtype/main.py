import modal

app = modal.App("sdxl")


@app.cls(gpu="A10G")
class SDXL:
    @modal.enter()
    def load(self):
        import torch
        from diffusers import StableDiffusionXLPipeline

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.pipe = StableDiffusionXLPipeline.from_pretrained(
            "stabilityai/stable-diffusion-xl-base-1.0", torch_dtype=torch.float16
        ).to(self.device)

    @modal.method()
    def generate(self, prompt: str):
        return self.pipe(prompt, num_inference_steps=25).images[0]
