import base64
from io import BytesIO

import torch
from diffusers import DiffusionPipeline


class Model:
    def __init__(self, **kwargs):
        self._pipe = None

    def load(self):
        self._pipe = DiffusionPipeline.from_pretrained(
            "stabilityai/stable-diffusion-xl-base-1.0",
            torch_dtype=torch.float16,
            variant="fp16",
            use_safetensors=True,
        )
        self._pipe.to("cuda")

    def predict(self, model_input):
        image = self._pipe(prompt=model_input["prompt"], num_inference_steps=30).images[0]
        buf = BytesIO()
        image.save(buf, format="PNG")
        return {"image": base64.b64encode(buf.getvalue()).decode()}
