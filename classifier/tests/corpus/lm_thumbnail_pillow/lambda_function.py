import io
import os
import urllib.parse

import boto3
from PIL import Image

s3 = boto3.client("s3")
SIZE = int(os.environ.get("THUMB_SIZE", "128"))


def lambda_handler(event, context):
    record = event["Records"][0]["s3"]
    bucket = record["bucket"]["name"]
    key = urllib.parse.unquote_plus(record["object"]["key"])
    img = Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    img.thumbnail((SIZE, SIZE))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    s3.put_object(Bucket=bucket + "-thumbs", Key=key, Body=buf.getvalue())
    return {"statusCode": 200}
