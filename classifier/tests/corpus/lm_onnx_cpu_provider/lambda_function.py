import json

import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("/opt/model/model.onnx", providers=["CPUExecutionProvider"])


def handler(event, context):
    body = json.loads(event["body"])
    x = np.asarray(body["features"], dtype=np.float32)[None, :]
    score = session.run(None, {session.get_inputs()[0].name: x})[0]
    return {"statusCode": 200, "body": json.dumps({"score": float(score[0][0])})}
