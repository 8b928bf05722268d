import subprocess


def gpu_metrics():
    try:
        out = subprocess.check_output(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader"], text=True
        )
        return [int(v) for v in out.split()]
    except (OSError, subprocess.CalledProcessError):
        return []


def handle(req):
    words = req.get("text", "").split()
    return {"count": len(words), "gpu": gpu_metrics()}
