"""Checks template.yaml against the HTTP contract and the project's rules: every route of the
contract and no other, every queue with a DLQ, no "*" resource, secrets only as SSM names."""

import pathlib
import unittest

from cfnlint.decode import decode_str

ROOT = pathlib.Path(__file__).resolve().parents[2]

CONTRACT = {
    ("POST", "/checkout"),
    ("GET", "/buy/{sku}"),
    ("POST", "/payments/{gateway}/webhook"),
    ("GET", "/orders/{token}"),
    ("GET", "/orders/{token}/pay"),
    ("GET", "/testpay/sessions/{id}"),
    ("POST", "/testpay/sessions/{id}"),
    ("GET", "/licenses/revoked.json"),
    ("GET", "/licenses/{key}/status"),
    ("GET", "/seats/{token}"),
    ("POST", "/seats/{token}"),
    ("GET", "/downloads/{token}"),
    ("GET", "/recover/{token}"),
    ("GET", "/unsubscribe/{token}"),
    ("POST", "/unsubscribe/{token}"),
    # The default route: every other address reaches the order-page function's not-found page.
    ("ANY", "$default"),
}


def load():
    template, problems = decode_str((ROOT / "template.yaml").read_text())
    assert not problems, problems
    return template


def resources(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


class TemplateTest(unittest.TestCase):
    def setUp(self):
        self.template = load()
        self.functions = resources(self.template, "AWS::Serverless::Function")
        self.queues = resources(self.template, "AWS::SQS::Queue")

    def test_the_routes_are_exactly_the_http_contract(self):
        routes = set()
        for function in self.functions.values():
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] == "HttpApi":
                    properties = event["Properties"]
                    routes.add((properties.get("Method", "ANY"), properties.get("Path", "$default")))
        self.assertEqual(routes, CONTRACT)

    def test_there_are_seven_rust_functions_with_explicit_timeouts_and_json_logs(self):
        self.assertEqual(len(self.functions), 7)
        globals_ = self.template["Globals"]["Function"]
        self.assertEqual(globals_["Runtime"], "provided.al2023")
        self.assertEqual(globals_["Handler"], "bootstrap")
        self.assertEqual(globals_["LoggingConfig"]["LogFormat"], "JSON")
        self.assertEqual(globals_["Architectures"], [{"Ref": "Architecture"}])
        self.assertEqual(globals_["MemorySize"], {"Ref": "MemorySize"})
        self.assertIn("Timeout", globals_)
        for name, function in self.functions.items():
            self.assertEqual(function["Metadata"]["BuildMethod"], "rust-cargolambda", name)
        parameters = self.template["Parameters"]
        self.assertEqual(parameters["Architecture"]["Default"], "x86_64")
        self.assertIn("arm64", parameters["Architecture"]["AllowedValues"])
        self.assertEqual(parameters["MemorySize"]["Default"], 128)

    def test_every_queue_has_a_dead_letter_queue_and_a_long_enough_visibility_timeout(self):
        dead_letter = {n for n, q in self.queues.items() if "RedrivePolicy" not in q["Properties"]}
        working = {n: q for n, q in self.queues.items() if n not in dead_letter}
        self.assertEqual(len(working), 2)
        for name, queue in working.items():
            redrive = queue["Properties"]["RedrivePolicy"]
            self.assertEqual(redrive["maxReceiveCount"], 5, name)
            self.assertIn(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0], dead_letter, name)
        for function in self.functions.values():
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] != "SQS":
                    continue
                self.assertEqual(event["Properties"]["FunctionResponseTypes"], ["ReportBatchItemFailures"])
                queue = self.queues[event["Properties"]["Queue"]["Fn::GetAtt"][0]]
                timeout = function["Properties"].get("Timeout", self.template["Globals"]["Function"]["Timeout"])
                self.assertGreaterEqual(queue["Properties"]["VisibilityTimeout"], 6 * timeout)

    def test_every_dead_letter_queue_and_function_has_an_alarm_to_the_seller(self):
        alarms = list(resources(self.template, "AWS::CloudWatch::Alarm").values())
        watched = set()
        for alarm in alarms:
            self.assertEqual(alarm["Properties"]["AlarmActions"], [{"Ref": "AlarmTopic"}])
            for dimension in alarm["Properties"]["Dimensions"]:
                value = dimension["Value"]
                watched.add(value.get("Ref") or value.get("Fn::GetAtt", [None])[0])
        dead_letter = {n for n, q in self.queues.items() if "RedrivePolicy" not in q["Properties"]}
        self.assertLessEqual(dead_letter, watched)
        # Each function is watched: directly, through the HTTP API it answers (its 5xx), or
        # through the dead-letter queue its failed messages end in.
        for name, function in self.functions.items():
            ways = {name}
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] == "HttpApi":
                    ways.add(event["Properties"]["ApiId"]["Ref"])
                if event["Type"] == "SQS":
                    queue = self.queues[event["Properties"]["Queue"]["Fn::GetAtt"][0]]
                    ways.add(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0])
            self.assertTrue(ways & watched, f"{name} has no alarm")
        # Idle cost: each alarm costs $0.10 a month, so they stay few.
        self.assertLessEqual(len(alarms), 5)
        topic = self.template["Resources"]["AlarmTopic"]["Properties"]
        self.assertEqual(topic["Subscription"][0]["Endpoint"], {"Ref": "SellerAlarmEmail"})

    def test_the_scheduler_runs_every_minute_and_reads_only_the_sparse_due_index(self):
        scheduler = self.functions["SchedulerFunction"]
        (event,) = scheduler["Properties"]["Events"].values()
        self.assertEqual(event["Type"], "ScheduleV2")
        self.assertEqual(event["Properties"]["ScheduleExpression"], "rate(1 minute)")
        statements = scheduler["Properties"]["Policies"][0]["Statement"]
        actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        self.assertNotIn("dynamodb:Scan", actions)
        (query,) = [s for s in statements if s["Action"] == "dynamodb:Query"]
        self.assertEqual(query["Resource"], {"Fn::Sub": "${Table.Arn}/index/due"})
        table = self.template["Resources"]["Table"]["Properties"]
        (index,) = table["GlobalSecondaryIndexes"]
        self.assertEqual(index["IndexName"], "due")
        self.assertEqual(
            [k["AttributeName"] for k in index["KeySchema"]], ["due_pk", "due_at"]
        )
        # It asks the gateway about sessions (its secrets, nothing else in SSM) and queues the
        # work a found payment leads to, on the store's own queues only.
        (ssm,) = [s for s in statements if s["Action"] == "ssm:GetParameters"]
        for resource in ssm["Resource"]:
            self.assertIn("parameter/nightshift/${Stage}/", resource["Fn::Sub"])
        (sqs,) = [s for s in statements if s["Action"] == "sqs:SendMessage"]
        self.assertEqual(
            sqs["Resource"],
            [{"Fn::GetAtt": ["FulfillmentQueue", "Arn"]}, {"Fn::GetAtt": ["MailQueue", "Arn"]}],
        )
        variables = scheduler["Properties"]["Environment"]["Variables"]
        self.assertEqual(variables["NIGHTSHIFT_MAIL_QUEUE_URL"], {"Ref": "MailQueue"})

    def test_the_reconcilers_repairs_alarm_when_they_come_twice_in_a_row(self):
        alarm = self.template["Resources"]["ReconcilerRepairedAlarm"]["Properties"]
        self.assertEqual((alarm["Namespace"], alarm["MetricName"]), ("Nightshift", "Repaired"))
        self.assertEqual((alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]), (2, 2))
        self.assertEqual(alarm["ComparisonOperator"], "GreaterThanThreshold")
        self.assertEqual(alarm["Threshold"], 0)
        self.assertEqual(alarm["TreatMissingData"], "notBreaching")

    def test_no_policy_grants_a_star_resource(self):
        for name, function in self.functions.items():
            for node in walk(function["Properties"].get("Policies", [])):
                if isinstance(node, dict) and "Resource" in node:
                    resources_ = node["Resource"] if isinstance(node["Resource"], list) else [node["Resource"]]
                    self.assertNotIn("*", resources_, name)
            for policy in function["Properties"].get("Policies", []):
                self.assertNotIsInstance(policy, str, f"{name}: managed policies grant more than the function uses")

    def test_the_table_is_on_demand_with_ttl_recovery_encryption_and_protection(self):
        table = self.template["Resources"]["Table"]["Properties"]
        self.assertEqual(table["BillingMode"], "PAY_PER_REQUEST")
        self.assertTrue(table["TimeToLiveSpecification"]["Enabled"])
        self.assertTrue(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"])
        self.assertTrue(table["SSESpecification"]["SSEEnabled"])
        self.assertEqual(table["DeletionProtectionEnabled"], {"Ref": "DeletionProtection"})

    def test_no_environment_variable_holds_a_secret(self):
        variables = dict(self.template["Globals"]["Function"]["Environment"]["Variables"])
        for function in self.functions.values():
            variables.update(function["Properties"].get("Environment", {}).get("Variables", {}))
        for name in variables:
            self.assertNotIn("KEY", name)
            self.assertFalse(name.startswith("NIGHTSHIFT_SECRET_"), name)
        self.assertIn("NIGHTSHIFT_SECRETS_PREFIX", variables)

    def test_the_outputs_give_the_urls_and_names_a_seller_needs(self):
        outputs = self.template["Outputs"]
        for name in ["BaseUrl", "TestpayWebhookUrl", "TableName", "FulfillmentQueueName", "MailQueueName"]:
            self.assertIn(name, outputs)


if __name__ == "__main__":
    unittest.main()


class GatewayAccessTest(unittest.TestCase):
    """The functions that build the card gateway can read its secrets, whichever it is, and
    every function that queues work has the queue's URL and may send to it."""

    def setUp(self):
        self.template = load()
        self.functions = resources(self.template, "AWS::Serverless::Function")

    def statements(self, name):
        policies = self.functions[name]["Properties"].get("Policies", [])
        return [s for p in policies for s in p.get("Statement", [])]

    def test_gateway_functions_read_the_stripe_and_testpay_secrets(self):
        # Checkout opens the payment session of a form checkout itself.
        for name in ["CheckoutFunction", "PaymentCallbackFunction", "OrderPageFunction"]:
            text = str([s["Resource"] for s in self.statements(name) if s["Action"] == "ssm:GetParameters"])
            for secret in ["testpay", "stripe-secret-key", "stripe-webhook-secret"]:
                self.assertIn("/" + secret, text, f"{name} cannot read {secret}")

    def test_functions_that_claim_once_only_work_may_update_items(self):
        # Claims, completions and releases are conditional updates of the order's WORK item.
        for name in ["FulfillmentFunction", "MailerFunction"]:
            actions = [a for s in self.statements(name) for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
            self.assertIn("dynamodb:UpdateItem", actions, name)
            self.assertIn("dynamodb:GetItem", actions, name)

    def test_the_signing_key_is_readable_where_keys_are_signed_or_checked(self):
        for name in ["FulfillmentFunction", "OrderPageFunction"]:
            resources = [s["Resource"] for s in self.statements(name) if s["Action"] == "ssm:GetParameters"]
            text = str(resources)
            self.assertTrue("/license-signing-key" in text or "}/*" in text, f"{name} cannot read the signing key")
        for name in ["CheckoutFunction", "PaymentCallbackFunction", "MailerFunction"]:
            text = str([s["Resource"] for s in self.statements(name) if s.get("Action") == "ssm:GetParameters"])
            self.assertNotIn("license-signing-key", text, f"{name} should not read the signing key")
            self.assertNotIn("}/*", text, f"{name} should not read every secret")

    def test_functions_that_queue_work_have_the_urls_and_may_send(self):
        for name in ["CheckoutFunction", "PaymentCallbackFunction", "OrderPageFunction"]:
            variables = self.functions[name]["Properties"]["Environment"]["Variables"]
            self.assertIn("NIGHTSHIFT_MAIL_QUEUE_URL", variables)
            self.assertIn("NIGHTSHIFT_FULFILLMENT_QUEUE_URL", variables)
            sends = [s for s in self.statements(name) if s["Action"] == "sqs:SendMessage"]
            self.assertIn("MailQueue", str(sends), name)

    def test_the_outputs_give_the_stripe_webhook_and_what_the_cli_needs(self):
        outputs = self.template["Outputs"]
        for key in ["StripeWebhookUrl", "TableName", "FulfillmentQueueUrl", "MailQueueUrl"]:
            self.assertIn(key, outputs)

    def test_downloads_read_only_the_downloads_bucket(self):
        statements = self.statements("DownloadsFunction")
        s3 = [s for s in statements if "Fn::If" in s]
        self.assertEqual(len(s3), 1)
        condition, grant, otherwise = s3[0]["Fn::If"]
        self.assertEqual(condition, "HasDownloadsBucket")
        self.assertEqual(grant["Action"], "s3:GetObject")
        self.assertEqual(grant["Resource"], {"Fn::Sub": "arn:${AWS::Partition}:s3:::${DownloadsBucket}/*"})
        self.assertEqual(otherwise, {"Ref": "AWS::NoValue"})
        for name in set(self.functions) - {"DownloadsFunction"}:
            self.assertNotIn("s3:", str(self.statements(name)), f"{name} should not touch S3")
        variables = self.functions["DownloadsFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(variables["NIGHTSHIFT_DOWNLOADS_BUCKET"], {"Ref": "DownloadsBucket"})

    def test_fulfillment_may_queue_its_own_webhook_retries(self):
        sends = [s for s in self.statements("FulfillmentFunction") if s["Action"] == "sqs:SendMessage"]
        self.assertIn("FulfillmentQueue", str(sends))
        self.assertIn("MailQueue", str(sends))
