import shutil
import subprocess

import modal

app = modal.App("thumbnails")


def gpu_present() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


@app.function(timeout=600)
def thumbnail(src: str, dst: str):
    if gpu_present():
        cmd = ["ffmpeg", "-hwaccel", "cuda", "-i", src, "-vf", "thumbnail", "-frames:v", "1", dst]
    else:
        cmd = ["ffmpeg", "-i", src, "-vf", "thumbnail", "-frames:v", "1", dst]
    subprocess.run(cmd, check=True)
    return dst
