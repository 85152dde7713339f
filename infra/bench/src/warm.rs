//! Warm handler latency in process: the functions' own handlers on the embedded adapters
//! (in-memory store and queue), timed call by call after a warm-up.

use crate::stats::{millis, percentile};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use shared::adapters::course::{http_client, CourseProviders};
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::adapters::license::LicenseKeys;
use shared::adapters::providers::Providers;
use shared::adapters::system::SystemClock;
use shared::adapters::testpay::Testpay;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::config::Store;
use shared::ports::Clock as _;
use shared::ports::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-testpay-secret";

pub struct Timings {
    pub name: &'static str,
    pub samples: Vec<Duration>,
}

impl Timings {
    pub fn p(&self, p: f64) -> f64 {
        percentile(&self.samples, p).map(millis).unwrap_or(f64::NAN)
    }
}

fn http(
    method: &str,
    path: &str,
    body: Option<String>,
    headers: serde_json::Value,
) -> lambda_http::Request {
    let event = json!({
        "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "shop.example.com", "domainPrefix": "shop",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench" },
            "requestId": "bench", "routeKey": format!("{method} {path}"), "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 1_795_392_000_000_u64
        },
        "body": body, "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid event")
}

/// Times `n` calls of each handler after `warmup` unmeasured ones.
pub async fn run(
    store_toml: &std::path::Path,
    n: usize,
    warmup: usize,
) -> anyhow::Result<Vec<Timings>> {
    let store = Store::load(store_toml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let orders = EmbeddedStore::in_memory();
    let queue = EmbeddedQueue::default();
    let testpay = Arc::new(Testpay::new(SECRET.to_owned().into(), Urls::new(""), false));
    let checkout = checkout::State {
        store: store.clone(),
        templates: Templates::new(&store)?,
        orders: orders.clone(),
        queue: queue.clone(),
        urls: None,
        token_key: "bench-token-key".to_owned().into(),
    };
    let callback = payment_callback::State {
        store: store.clone(),
        orders: orders.clone(),
        queue: queue.clone(),
        gateway: testpay.clone(),
    };
    let page = order_page::State {
        store: store.clone(),
        templates: Templates::new(&store)?,
        orders: orders.clone(),
        queue: queue.clone(),
        gateway: testpay.clone(),
        urls: None,
        testpay: None,
        licenses: LicenseKeys::new(None),
    };
    let fulfil = fulfillment::State {
        store: store.clone(),
        orders: orders.clone(),
        queue: queue.clone(),
        fulfillers: Providers {
            courses: CourseProviders::new(http_client()?, Default::default(), SystemClock),
            licenses: LicenseKeys::new(None),
        },
    };
    let json_headers = json!({ "content-type": "application/json", "host": "shop.example.com", "x-forwarded-proto": "https" });
    let total = n + warmup;
    let mut timings: Vec<Timings> = [
        "checkout",
        "payment callback",
        "order page",
        "fulfilment (one order)",
    ]
    .into_iter()
    .map(|name| Timings {
        name,
        samples: Vec::with_capacity(n),
    })
    .collect();
    let mut record = |which: usize, i: usize, took: Duration| {
        if i >= warmup {
            timings[which].samples.push(took);
        }
    };
    for i in 0..total {
        // Checkout: a new order for one course.
        let body = json!({"items":[{"sku":"rust-course","quantity":1}],"email":"ann@example.com","name":"Ann"}).to_string();
        let request = http("POST", "/checkout", Some(body), json_headers.clone());
        let started = Instant::now();
        let response = checkout::handle(&checkout, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        record(0, i, started.elapsed());
        anyhow::ensure!(
            response.status() == 201,
            "checkout answered {}",
            response.status()
        );
        let receipt: serde_json::Value = serde_json::from_slice(response.body())?;
        let order_id = receipt["order_id"].as_str().unwrap_or_default().to_owned();
        let token = receipt["order_url"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();

        // The gateway's signed webhook for it.
        let now = SystemClock.now();
        let body =
            json!({"id": format!("evt_{i}"), "type": "payment.approved", "order_id": order_id,
                          "amount": {"minor": 4900, "currency": "EUR"}, "created": now})
            .to_string();
        let mut headers = json_headers.clone();
        headers["nightshift-signature"] = json!(shared::signature::sign(
            SECRET.as_bytes(),
            now,
            body.as_bytes()
        ));
        let request = http("POST", "/payments/testpay/webhook", Some(body), headers);
        let started = Instant::now();
        let response = payment_callback::handle(&callback, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        record(1, i, started.elapsed());
        anyhow::ensure!(
            response.status() == 200,
            "the callback answered {}",
            response.status()
        );

        // Fulfilment of that order, as its SQS record.
        let message = Message::FulfilOrder {
            order_id: shared::domain::OrderId::parse(&order_id)?,
        };
        let event: SqsEvent = serde_json::from_value(json!({ "Records": [{
            "messageId": format!("m{i}"), "body": message.to_json(), "eventSource": "aws:sqs",
            "attributes": { "ApproximateReceiveCount": "1" } }]}))?;
        let started = Instant::now();
        let answer = fulfillment::handle(&fulfil, LambdaEvent::new(event, Context::default()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        record(3, i, started.elapsed());
        anyhow::ensure!(answer.batch_item_failures.is_empty(), "fulfilment failed");

        // The buyer's order page (JSON) with the login details.
        let request = http(
            "GET",
            &format!("/orders/{token}.json"),
            None,
            json_headers.clone(),
        );
        let started = Instant::now();
        let response = order_page::handle(&page, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        record(2, i, started.elapsed());
        anyhow::ensure!(
            response.status() == 200,
            "the order page answered {}",
            response.status()
        );
        // Keep the queues from growing: this bench does not run the consumers.
        let _ = queue.try_receive(shared::ports::QueueName::Fulfillment, 100);
        let _ = queue.try_receive(shared::ports::QueueName::Mail, 100);
    }
    Ok(timings)
}
