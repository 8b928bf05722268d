import pickle
from pathlib import Path

import pandas as pd


class Model:
    def __init__(self, **kwargs):
        self._data_dir = kwargs["data_dir"]

    def load(self):
        with open(Path(self._data_dir) / "pipeline.pkl", "rb") as f:
            self._pipeline = pickle.load(f)

    def predict(self, model_input):
        frame = pd.DataFrame(model_input["rows"])
        return {"scores": self._pipeline.predict_proba(frame)[:, 1].tolist()}
