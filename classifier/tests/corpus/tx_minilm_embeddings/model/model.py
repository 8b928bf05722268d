from sentence_transformers import SentenceTransformer


class Model:
    def __init__(self, **kwargs):
        self._secrets = kwargs.get("secrets")
        self._model = None

    def load(self):
        self._model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")

    def predict(self, model_input):
        vectors = self._model.encode(model_input["sentences"], normalize_embeddings=True)
        return {"embeddings": vectors.tolist()}
