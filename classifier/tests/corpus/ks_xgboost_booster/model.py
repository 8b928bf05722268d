import os

import numpy as np
import xgboost as xgb
from kserve import Model, ModelServer


class XGBoostModel(Model):
    def __init__(self, name):
        super().__init__(name)
        self.booster = None

    def load(self):
        self.booster = xgb.Booster()
        self.booster.load_model(os.path.join("/mnt/models", "model.bst"))
        self.ready = True

    def predict(self, payload, headers=None):
        dmatrix = xgb.DMatrix(np.asarray(payload["instances"], dtype=np.float32))
        return {"predictions": self.booster.predict(dmatrix).tolist()}


if __name__ == "__main__":
    m = XGBoostModel("xgb")
    m.load()
    ModelServer().start([m])
