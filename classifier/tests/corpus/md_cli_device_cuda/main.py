import os
import subprocess

import modal

app = modal.App("upscale")


@app.function(gpu="T4", timeout=900)
def upscale(path: str) -> str:
    out = path.replace(".png", "_x4.png")
    subprocess.check_call(
        ["realesrgan-ncnn", "-i", path, "-o", out, "--device", "cuda", "--scale", "4"]
    )
    os.chmod(out, 0o644)
    return out
