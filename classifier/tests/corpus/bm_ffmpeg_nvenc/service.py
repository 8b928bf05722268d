import subprocess
import tempfile
from pathlib import Path

import bentoml


@bentoml.service
class Transcode:
    @bentoml.api
    def transcode(self, video: Path) -> Path:
        out = Path(tempfile.mkdtemp()) / "out.mp4"
        subprocess.run(
            ["ffmpeg", "-y", "-i", str(video), "-c:v", "h264_nvenc", "-preset", "p4", str(out)],
            check=True,
        )
        return out
