"""ETL: cleans a CSV of orders, aggregates it and fits a small model. CPU libraries only."""

import io

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest


def handle(request: dict) -> dict:
    csv = request.get("csv") or "order_id,amount,country\n1,10.5,AT\n2,99.0,DE\n3,12.0,AT\n"
    df = pd.read_csv(io.StringIO(csv))
    df = df.dropna().assign(amount=lambda d: d["amount"].clip(lower=0))
    by_country = df.groupby("country")["amount"].agg(["count", "sum", "mean"]).round(2)
    model = IsolationForest(n_estimators=50, random_state=0).fit(df[["amount"]])
    outliers = int(np.sum(model.predict(df[["amount"]]) == -1))
    return {"by_country": by_country.to_dict(orient="index"), "outliers": outliers}
