from diffusers import StableDiffusionPipeline

pipe = StableDiffusionPipeline.from_pretrained("runwayml/stable-diffusion-v1-5")


def handle(req):
    image = pipe(req["prompt"], num_inference_steps=20).images[0]
    path = "/tmp/out.png"
    image.save(path)
    return {"path": path}
