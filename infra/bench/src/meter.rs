//! An SDK interceptor that counts the requests each AWS client makes, and the DynamoDB
//! capacity units they consume by DynamoDB's own rules (moto reports fixed figures, so the
//! units are worked out from the items on the wire).

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// What the clients have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub dynamodb: f64,
    pub read_units: f64,
    pub write_units: f64,
    pub sqs: f64,
    /// Messages put on a queue (`SendMessage`, or each entry of `SendMessageBatch`).
    pub sqs_sends: f64,
    pub ses: f64,
    /// Mails as SES bills them: one per recipient.
    pub mails: f64,
}

impl Counts {
    pub fn minus(&self, earlier: &Counts) -> Counts {
        Counts {
            dynamodb: self.dynamodb - earlier.dynamodb,
            read_units: self.read_units - earlier.read_units,
            write_units: self.write_units - earlier.write_units,
            sqs: self.sqs - earlier.sqs,
            sqs_sends: self.sqs_sends - earlier.sqs_sends,
            ses: self.ses - earlier.ses,
            mails: self.mails - earlier.mails,
        }
    }

    pub fn scaled(&self, by: f64) -> Counts {
        Counts {
            dynamodb: self.dynamodb * by,
            read_units: self.read_units * by,
            write_units: self.write_units * by,
            sqs: self.sqs * by,
            sqs_sends: self.sqs_sends * by,
            ses: self.ses * by,
            mails: self.mails * by,
        }
    }

    pub fn plus(&self, other: &Counts) -> Counts {
        Counts {
            dynamodb: self.dynamodb + other.dynamodb,
            read_units: self.read_units + other.read_units,
            write_units: self.write_units + other.write_units,
            sqs: self.sqs + other.sqs,
            sqs_sends: self.sqs_sends + other.sqs_sends,
            ses: self.ses + other.ses,
            mails: self.mails + other.mails,
        }
    }
}

/// One meter shared by the DynamoDB, SQS and SES clients.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<Counts>>);

impl Meter {
    pub fn counts(&self) -> Counts {
        *self.0.lock().expect("meter lock")
    }
}

/// What a request left for its response to settle: the read units per 4 KB it is charged
/// (0 when it reads nothing), and whether its answer carries the written item.
#[derive(Debug, Clone)]
struct Pending {
    read_factor: f64,
    written_in_answer: bool,
}

impl Storable for Pending {
    type Storer = StoreReplace<Self>;
}

/// The size DynamoDB gives an attribute value (its wire JSON, `{"S": "…"}` and so on).
fn value_size(value: &Value) -> usize {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let text = |v: &Value| v.as_str().map_or(0, str::len);
    let number = |v: &Value| {
        v.as_str()
            .map_or(0, |n| n.trim_start_matches('-').len().div_ceil(2) + 1)
    };
    let binary = |v: &Value| text(v) * 3 / 4;
    let each = |v: &Value, size: &dyn Fn(&Value) -> usize| {
        v.as_array().map_or(0, |a| a.iter().map(size).sum())
    };
    match kind.as_str() {
        "S" => text(v),
        "N" => number(v),
        "B" => binary(v),
        "BOOL" | "NULL" => 1,
        "SS" => each(v, &text),
        "NS" => each(v, &number),
        "BS" => each(v, &binary),
        "M" => 3 + item_size(v),
        "L" => 3 + each(v, &|e| 1 + value_size(e)),
        _ => 0,
    }
}

/// The size of an item: its attribute names and values.
pub fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, |o| {
        o.iter().map(|(name, v)| name.len() + value_size(v)).sum()
    })
}

/// Write units for an item of `size` bytes: one per KB, at least one.
pub fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Read units per `factor` for `size` bytes read: one per 4 KB, at least one.
pub fn read_units(size: usize) -> f64 {
    size.div_ceil(4096).max(1) as f64
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// A form-encoded (query protocol) body's keys that start with any of `prefixes`.
fn form_keys(body: &[u8], prefixes: &[&str]) -> f64 {
    form_urlencoded::parse(body)
        .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
        .count() as f64
}

impl Meter {
    fn request(&self, service: &str, operation: &str, body: &[u8]) -> Pending {
        if std::env::var_os("NIGHTSHIFT_BENCH_TRACE").is_some() {
            eprintln!("{service} {operation} {}", String::from_utf8_lossy(body));
        }
        let mut counts = self.0.lock().expect("meter lock");
        let mut pending = Pending {
            read_factor: 0.0,
            written_in_answer: false,
        };
        match service {
            "DynamoDB" => {
                counts.dynamodb += 1.0;
                let request = json(body);
                let consistency = if request["ConsistentRead"] == Value::Bool(true) {
                    1.0
                } else {
                    0.5
                };
                match operation {
                    "PutItem" => counts.write_units += write_units(item_size(&request["Item"])),
                    "UpdateItem" | "DeleteItem" => {
                        // Charged on the item's size, which only the answer shows (when it
                        // returns the item); else the minimum.
                        if request["ReturnValues"].as_str().unwrap_or("NONE") == "NONE" {
                            counts.write_units += 1.0;
                        } else {
                            pending.written_in_answer = true;
                        }
                    }
                    "TransactWriteItems" => {
                        // Two units per KB per item; the items other than puts (stock
                        // counters, condition checks) are small.
                        for item in request["TransactItems"].as_array().into_iter().flatten() {
                            let size = item["Put"]["Item"]
                                .as_object()
                                .map_or(0, |_| item_size(&item["Put"]["Item"]));
                            counts.write_units += 2.0 * write_units(size);
                        }
                    }
                    "BatchWriteItem" => {
                        // One unit per KB of each put; deletes at the minimum.
                        let tables = request["RequestItems"].as_object().into_iter().flatten();
                        for request in tables.flat_map(|(_, r)| r.as_array().into_iter().flatten())
                        {
                            counts.write_units +=
                                write_units(item_size(&request["PutRequest"]["Item"]));
                        }
                    }
                    "GetItem" | "Query" | "Scan" => pending.read_factor = consistency,
                    "TransactGetItems" => pending.read_factor = 2.0,
                    _ => {}
                }
            }
            "SQS" => {
                counts.sqs += 1.0;
                match operation {
                    "SendMessage" => counts.sqs_sends += 1.0,
                    "SendMessageBatch" => {
                        counts.sqs_sends +=
                            json(body)["Entries"].as_array().map_or(0, Vec::len) as f64
                    }
                    _ => {}
                }
            }
            "SES" => {
                counts.ses += 1.0;
                counts.mails += form_keys(
                    body,
                    &[
                        "Destination.ToAddresses.member.",
                        "Destination.CcAddresses.member.",
                        "Destination.BccAddresses.member.",
                        "Destinations.member.",
                    ],
                );
            }
            _ => {}
        }
        pending
    }

    fn answer(&self, pending: &Pending, body: &[u8]) {
        let answer = json(body);
        let mut counts = self.0.lock().expect("meter lock");
        if pending.read_factor > 0.0 {
            let size = if let Some(items) = answer["Items"].as_array() {
                items.iter().map(item_size).sum()
            } else if let Some(responses) = answer["Responses"].as_array() {
                responses.iter().map(|r| item_size(&r["Item"])).sum()
            } else {
                item_size(&answer["Item"])
            };
            counts.read_units += pending.read_factor * read_units(size);
        }
        if pending.written_in_answer {
            counts.write_units += write_units(item_size(&answer["Attributes"]));
        }
    }
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "NightshiftBenchMeter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_owned(), m.name().to_owned()))
            .unwrap_or_default();
        let body = context.request().body().bytes().unwrap_or_default();
        let pending = self.request(&service, &operation, body);
        cfg.interceptor_state().store_put(pending);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(pending) = cfg.load::<Pending>() {
            let body = context.response().body().bytes().unwrap_or_default();
            self.answer(pending, body);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_sizes_follow_dynamodb_rules() {
        // Names count, strings by their UTF-8 bytes, numbers by about half their digits.
        let item =
            json!({ "pk": { "S": "ORDER#1" }, "n": { "N": "12345" }, "ok": { "BOOL": true } });
        assert_eq!(item_size(&item), 2 + 7 + 1 + 4 + 2 + 1);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(0), 1.0);
        assert_eq!(read_units(4097), 2.0);
    }

    #[test]
    fn requests_are_metered_by_service_and_units() {
        let meter = Meter::default();
        let big = "x".repeat(1500);
        let put = json!({ "TableName": "t", "Item": { "pk": { "S": big } } }).to_string();
        meter.request("DynamoDB", "PutItem", put.as_bytes());
        let transact = json!({ "TransactItems": [
            { "Put": { "Item": { "pk": { "S": "a" } } } },
            { "Update": { "Key": { "pk": { "S": "SKU#x" } } } },
        ] })
        .to_string();
        meter.request("DynamoDB", "TransactWriteItems", transact.as_bytes());
        let get = json!({ "ConsistentRead": true }).to_string();
        let pending = meter.request("DynamoDB", "GetItem", get.as_bytes());
        meter.answer(
            &pending,
            json!({ "Item": { "pk": { "S": "a" } } })
                .to_string()
                .as_bytes(),
        );
        let batch = json!({ "RequestItems": { "t": [
            { "PutRequest": { "Item": { "pk": { "S": "a" } } } },
            { "PutRequest": { "Item": { "pk": { "S": "b" } } } },
        ] } })
        .to_string();
        meter.request("DynamoDB", "BatchWriteItem", batch.as_bytes());
        meter.request("SQS", "SendMessage", b"{}");
        meter.request(
            "SES",
            "SendEmail",
            b"Action=SendEmail&Destination.ToAddresses.member.1=a%40x&Destination.BccAddresses.member.1=b%40x",
        );
        let counts = meter.counts();
        assert_eq!(counts.dynamodb, 4.0);
        assert_eq!(counts.write_units, 2.0 + 2.0 + 2.0 + 2.0);
        assert_eq!(counts.read_units, 1.0);
        assert_eq!((counts.sqs, counts.sqs_sends), (1.0, 1.0));
        assert_eq!((counts.ses, counts.mails), (1.0, 2.0));
    }
}
