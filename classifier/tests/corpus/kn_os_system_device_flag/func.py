import os

USE_GPU = os.environ.get("USE_GPU", "0") == "1"


def handle(req):
    src, dst = req["src"], req["dst"]
    if USE_GPU:
        os.system(f"denoise --device cuda --in {src} --out {dst}")
    else:
        os.system(f"denoise --device cpu --in {src} --out {dst}")
    return {"out": dst}
