import json

import joblib
import pandas as pd

model = joblib.load("/opt/ml/churn.joblib")


def lambda_handler(event, context):
    frame = pd.DataFrame(json.loads(event["body"])["customers"])
    frame["churn"] = model.predict_proba(frame)[:, 1]
    return {"statusCode": 200, "body": frame[["id", "churn"]].to_json(orient="records")}
