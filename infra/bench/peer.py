"""The peer a team would otherwise write: a Python 3 Lambda handler that imports boto3 and
builds DynamoDB, SQS and SES clients at init, then serves invocations through the Lambda
Runtime API the way AWS's own runtime client does. The bench times it exactly as it times
Nightshift's bootstraps."""

import json
import os
import urllib.request

import boto3

session = boto3.session.Session()
dynamodb = session.client("dynamodb")
sqs = session.client("sqs")
ses = session.client("ses")

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as answer:
        request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(answer.read())
    body = json.dumps({"statusCode": 404, "body": "not found"}).encode()
    request = urllib.request.Request(api + request_id + "/response", data=body, method="POST")
    urllib.request.urlopen(request).read()
