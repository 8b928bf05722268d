import argparse

import joblib
import numpy as np
from kserve import Model, ModelServer, model_server


class IrisModel(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.ready = False

    def load(self):
        self.model = joblib.load(f"{self.model_dir}/model.joblib")
        self.ready = True

    def predict(self, payload, headers=None):
        x = np.asarray(payload["instances"])
        return {"predictions": self.model.predict(x).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", default="/mnt/models")
    args, _ = parser.parse_known_args()
    model = IrisModel(args.model_name, args.model_dir)
    model.load()
    ModelServer().start([model])
