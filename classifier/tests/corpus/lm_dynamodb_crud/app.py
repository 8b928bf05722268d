import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    method = event["httpMethod"]
    if method == "GET":
        item = table.get_item(Key={"id": event["pathParameters"]["id"]}).get("Item")
        return {"statusCode": 200 if item else 404, "body": json.dumps(item)}
    if method == "PUT":
        table.put_item(Item=json.loads(event["body"]))
        return {"statusCode": 204}
    return {"statusCode": 405}
