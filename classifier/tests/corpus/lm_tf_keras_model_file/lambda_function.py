import json

import numpy as np
import tensorflow as tf

model = tf.keras.models.load_model("/opt/ml/model.h5")


def lambda_handler(event, context):
    x = np.asarray(json.loads(event["body"])["x"], dtype=np.float32)
    return {"statusCode": 200, "body": json.dumps(model.predict(x).tolist())}
