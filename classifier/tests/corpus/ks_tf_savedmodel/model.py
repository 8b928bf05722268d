import numpy as np
import tensorflow as tf
from kserve import Model, ModelServer


class TFModel(Model):
    def load(self):
        self.model = tf.saved_model.load("/mnt/models/saved_model")
        self.infer = self.model.signatures["serving_default"]
        self.ready = True

    def predict(self, payload, headers=None):
        x = tf.constant(np.asarray(payload["instances"], dtype=np.float32))
        return {"predictions": self.infer(x)["output_0"].numpy().tolist()}


if __name__ == "__main__":
    m = TFModel("tf")
    m.load()
    ModelServer().start([m])
