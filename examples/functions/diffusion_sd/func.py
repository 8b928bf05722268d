"""Text-to-image with Stable Diffusion 1.5 (diffusers): heavy, uses a GPU when there is one."""

import base64
import io

import torch
from diffusers import StableDiffusionPipeline

MODEL_ID = "runwayml/stable-diffusion-v1-5"
device = "cuda" if torch.cuda.is_available() else "cpu"
dtype = torch.float16 if device == "cuda" else torch.float32

pipe = StableDiffusionPipeline.from_pretrained(MODEL_ID, torch_dtype=dtype)
pipe = pipe.to(device)


def handle(request: dict) -> dict:
    prompt = str(request.get("prompt", "a lighthouse at dawn, oil painting"))
    steps = min(int(request.get("steps", 25)), 50)
    image = pipe(prompt, num_inference_steps=steps).images[0]
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return {"png": base64.b64encode(buf.getvalue()).decode()}
