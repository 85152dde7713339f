//! One buyer's order through the functions' own handlers, on whichever adapters: the checkout
//! form (which opens the payment session), the gateway's signed webhook, fulfilment and mail from their queue records,
//! and the buyer's order page. The warm bench times these steps; the cost bench meters the
//! AWS requests each one makes.

use anyhow::{anyhow, ensure};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use shared::adapters::course::{http_client, CourseProviders};
use shared::adapters::license::LicenseKeys;
use shared::adapters::providers::Providers;
use shared::adapters::system::SystemClock;
use shared::adapters::testpay::Testpay;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::config::Store;
use shared::ports::{Clock as _, MailSender, OrderStore, Queue, WorkClaims};
use std::sync::Arc;

/// The testpay webhook secret of every bench run (generated secrets are not needed: nothing
/// leaves the machine).
pub const TESTPAY_SECRET: &str = "bench-testpay-secret";

/// The product each bench order buys: a course with a built-in login, so fulfilment makes no
/// call beyond the store.
pub const SKU: &str = "rust-course";

/// A placed order: its id and the buyer's token.
pub struct Placed {
    pub order_id: String,
    pub token: String,
}

/// A queue record as Lambda hands it over.
pub struct Record {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

/// The five functions on one set of adapters.
pub struct Functions<S, Q, M> {
    pub checkout: checkout::State<S, Q, Arc<Testpay>>,
    pub callback: payment_callback::State<S, Q, Arc<Testpay>>,
    pub page: order_page::State<S, Q, Arc<Testpay>>,
    pub fulfil: fulfillment::State<S, Q, Providers<SystemClock>>,
    pub mail: mailer::State<S, M, Q, shared::ports::NoTexts>,
}

/// An API Gateway request; `body` is its content type and text.
fn http(
    method: &str,
    path: &str,
    body: Option<(&str, String)>,
    signature: Option<String>,
) -> lambda_http::Request {
    let mut headers = json!({ "host": "shop.example.com", "x-forwarded-proto": "https" });
    let body = body.map(|(kind, text)| {
        headers["content-type"] = json!(kind);
        text
    });
    if let Some(signature) = signature {
        headers["nightshift-signature"] = json!(signature);
    }
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

fn sqs_event(records: &[Record]) -> anyhow::Result<LambdaEvent<SqsEvent>> {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            json!({ "messageId": r.message_id, "body": r.body, "eventSource": "aws:sqs",
                    "attributes": { "ApproximateReceiveCount": r.receive_count.to_string() } })
        })
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({ "Records": records }))?;
    Ok(LambdaEvent::new(event, Context::default()))
}

fn failed<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("{e}")
}

impl<S, Q, M> Functions<S, Q, M>
where
    S: OrderStore + WorkClaims + shared::ports::Suppressions + Clone,
    Q: Queue + Clone,
    M: MailSender,
{
    pub fn new(store: &Store, orders: S, queue: Q, sender: M) -> anyhow::Result<Self> {
        let testpay = Arc::new(Testpay::new(
            TESTPAY_SECRET.to_owned().into(),
            Urls::new(""),
            false,
        ));
        Ok(Functions {
            checkout: checkout::State {
                store: store.clone(),
                templates: Templates::new(store)?,
                orders: orders.clone(),
                queue: queue.clone(),
                gateway: testpay.clone(),
                urls: None,
                token_key: "bench-token-key".to_owned().into(),
            },
            callback: payment_callback::State {
                store: store.clone(),
                orders: orders.clone(),
                queue: queue.clone(),
                gateway: testpay.clone(),
            },
            page: order_page::State {
                store: store.clone(),
                templates: Templates::new(store)?,
                orders: orders.clone(),
                queue: queue.clone(),
                gateway: testpay,
                urls: None,
                testpay: None,
                licenses: LicenseKeys::new(None),
            },
            fulfil: fulfillment::State {
                store: store.clone(),
                orders: orders.clone(),
                queue: queue.clone(),
                fulfillers: Providers {
                    courses: CourseProviders::new(http_client()?, Default::default(), SystemClock),
                    licenses: LicenseKeys::new(None),
                },
            },
            mail: mailer::State {
                store: store.clone(),
                templates: Templates::new(store)?,
                orders,
                sender,
                texts: shared::ports::NoTexts,
                queue,
                token_key: "bench-token-key".to_owned().into(),
            },
        })
    }

    /// `POST /checkout` with the buy page's form for one course, by buyer `i`: the answer
    /// sends the buyer to the gateway's page, whose session names the order and its page.
    pub async fn checkout(&self, i: usize) -> anyhow::Result<Placed> {
        let body = format!("sku={SKU}&quantity=1&email=buyer-{i}%40example.com&name=Ann");
        let response = checkout::handle(
            &self.checkout,
            http(
                "POST",
                "/checkout",
                Some(("application/x-www-form-urlencoded", body)),
                None,
            ),
        )
        .await
        .map_err(failed)?;
        ensure!(
            response.status() == 303,
            "checkout answered {}",
            response.status()
        );
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let session = location
            .rsplit_once("/testpay/sessions/")
            .and_then(|(_, id)| self.checkout.gateway.session(id).ok())
            .ok_or_else(|| anyhow!("checkout sent the buyer to {location:?}, not to testpay"))?;
        let token = session.return_url.rsplit('/').next().unwrap_or_default();
        Ok(Placed {
            order_id: session.order_id.to_string(),
            token: token.to_owned(),
        })
    }

    /// `GET /orders/{token}/pay`: the pay link, which a buyer follows to pay again (a retry
    /// after a decline, or a JSON client's way to the gateway).
    pub async fn pay_link(&self, placed: &Placed) -> anyhow::Result<()> {
        let path = format!("/orders/{}/pay", placed.token);
        let response = order_page::handle(&self.page, http("GET", &path, None, None))
            .await
            .map_err(failed)?;
        ensure!(
            response.status() == 303,
            "the pay link answered {}",
            response.status()
        );
        Ok(())
    }

    /// The gateway's signed webhook: the payment was approved.
    pub async fn webhook(&self, placed: &Placed, event_id: &str) -> anyhow::Result<()> {
        let now = SystemClock.now();
        let body = json!({ "id": event_id, "type": "payment.approved", "order_id": placed.order_id,
                           "amount": { "minor": 4900, "currency": "EUR" }, "created": now })
        .to_string();
        let signature = shared::signature::sign(TESTPAY_SECRET.as_bytes(), now, body.as_bytes());
        let request = http(
            "POST",
            "/payments/testpay/webhook",
            Some(("application/json", body)),
            Some(signature),
        );
        let response = payment_callback::handle(&self.callback, request)
            .await
            .map_err(failed)?;
        ensure!(
            response.status() == 200,
            "the callback answered {}",
            response.status()
        );
        Ok(())
    }

    /// The fulfilment function on a batch of its queue's records.
    pub async fn fulfil(&self, records: &[Record]) -> anyhow::Result<()> {
        let answer = fulfillment::handle(&self.fulfil, sqs_event(records)?)
            .await
            .map_err(failed)?;
        ensure!(answer.batch_item_failures.is_empty(), "fulfilment failed");
        Ok(())
    }

    /// The mail function on a batch of its queue's records.
    pub async fn send_mail(&self, records: &[Record]) -> anyhow::Result<()> {
        let answer = mailer::handle(&self.mail, sqs_event(records)?)
            .await
            .map_err(failed)?;
        ensure!(answer.batch_item_failures.is_empty(), "mail failed");
        Ok(())
    }

    /// The buyer's order page (`json`: `/orders/{token}.json`); its body.
    pub async fn view(&self, placed: &Placed, json: bool) -> anyhow::Result<String> {
        let path = format!(
            "/orders/{}{}",
            placed.token,
            if json { ".json" } else { "" }
        );
        let response = order_page::handle(&self.page, http("GET", &path, None, None))
            .await
            .map_err(failed)?;
        ensure!(
            response.status() == 200,
            "the order page answered {}",
            response.status()
        );
        Ok(String::from_utf8_lossy(response.body()).into_owned())
    }
}
