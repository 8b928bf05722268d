import modal

app = modal.App("whisper-tiny")
image = modal.Image.debian_slim().apt_install("ffmpeg").pip_install("openai-whisper")


@app.cls(image=image)
class Transcriber:
    @modal.enter()
    def setup(self):
        import whisper

        self.model = whisper.load_model("tiny.en")

    @modal.method()
    def transcribe(self, path: str) -> str:
        return self.model.transcribe(path)["text"]
