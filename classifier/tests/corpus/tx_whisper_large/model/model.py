import base64
import tempfile

import whisper


class Model:
    def __init__(self, **kwargs):
        self._model = None

    def load(self):
        self._model = whisper.load_model("large-v3")

    def predict(self, request):
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            f.write(base64.b64decode(request["audio"]))
            f.flush()
            result = self._model.transcribe(f.name)
        return {"text": result["text"], "language": result["language"]}
