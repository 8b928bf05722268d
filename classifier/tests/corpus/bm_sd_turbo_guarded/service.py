import bentoml
import torch
from diffusers import AutoPipelineForText2Image
from PIL.Image import Image

MODEL_ID = "stabilityai/sd-turbo"


@bentoml.service(resources={"gpu": 1})
class SDTurbo:
    def __init__(self) -> None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float16 if device == "cuda" else torch.float32
        self.pipe = AutoPipelineForText2Image.from_pretrained(MODEL_ID, torch_dtype=dtype)
        self.pipe.to(device=device)

    @bentoml.api
    def txt2img(self, prompt: str, steps: int = 1) -> Image:
        return self.pipe(prompt=prompt, num_inference_steps=steps, guidance_scale=0.0).images[0]
