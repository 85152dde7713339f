//! Handlers called directly with API Gateway HTTP API (payload 2.0) and SQS event fixtures,
//! on the embedded adapters: exactly the code Lambda runs, minus the runtime.

use aws_lambda_events::event::sqs::SqsEvent;
use base64::Engine;
use lambda_http::Body;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use shared::adapters::course::{http_client, CourseProviders};
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::adapters::license::LicenseKeys;
use shared::adapters::providers::Providers;
use shared::adapters::system::SystemClock;
use shared::adapters::testpay::Testpay;
use shared::app::render::Templates;
use shared::app::Urls;
use shared::config::Store;
use shared::domain::OrderStatus;
use shared::ports::{Message, OrderStore, QueueName};
use std::sync::Arc;
use tests::{now, sample_store, sign};

const HOST: &str = "https://abc123.execute-api.eu-west-1.amazonaws.com";
const TESTPAY_SECRET: &str = "testpay-secret-for-handler-tests";

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn body_json(response: &lambda_http::Response<Body>) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

struct Functions {
    store: Store,
    orders: EmbeddedStore,
    queue: EmbeddedQueue,
    checkout: checkout::State<EmbeddedStore, EmbeddedQueue, Arc<Testpay>>,
    callback: payment_callback::State<EmbeddedStore, EmbeddedQueue, Arc<Testpay>>,
    page: order_page::State<EmbeddedStore, EmbeddedQueue, Arc<Testpay>>,
}

fn functions() -> Functions {
    let store = Store::parse(&sample_store(), &tests::repo_root().join("store.toml")).unwrap();
    let orders = EmbeddedStore::in_memory();
    let queue = EmbeddedQueue::default();
    let testpay = Arc::new(Testpay::new(
        TESTPAY_SECRET.to_owned().into(),
        Urls::new(""),
        false,
    ));
    Functions {
        checkout: checkout::State {
            store: store.clone(),
            templates: Templates::new(&store).unwrap(),
            orders: orders.clone(),
            queue: queue.clone(),
            gateway: testpay.clone(),
            urls: None,
            token_key: "token-key".to_owned().into(),
        },
        callback: payment_callback::State {
            store: store.clone(),
            orders: orders.clone(),
            queue: queue.clone(),
            gateway: testpay.clone(),
        },
        page: order_page::State {
            store: store.clone(),
            templates: Templates::new(&store).unwrap(),
            orders: orders.clone(),
            queue: queue.clone(),
            gateway: testpay.clone(),
            urls: None,
            testpay: Some(order_page::TestpayPage {
                gateway: testpay,
                http: http_client().unwrap(),
            }),
            licenses: LicenseKeys::new(None),
        },
        store,
        orders,
        queue,
    }
}

async fn checkout_json(f: &Functions) -> Value {
    let response = checkout::handle(
        &f.checkout,
        request(&fixture("apigw-v2-post-checkout.json")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    body_json(&response)
}

#[tokio::test]
async fn a_json_checkout_event_answers_201_with_urls_on_the_api_host() {
    let f = functions();
    let receipt = checkout_json(&f).await;
    assert_eq!(receipt["status"], "pending_payment");
    assert!(receipt["order_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{HOST}/orders/")));
    assert!(receipt["payment_url"].as_str().unwrap().ends_with("/pay"));
}

#[tokio::test]
async fn a_form_checkout_event_redirects_to_the_payment_page() {
    let f = functions();
    let response = checkout::handle(
        &f.checkout,
        request(&fixture("apigw-v2-post-checkout-form.json")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    // Straight to the gateway's page, whose session returns the buyer to the order page.
    let (_, id) = location.split_once("/testpay/sessions/").unwrap();
    let session = f.checkout.gateway.session(id).unwrap();
    assert!(session.return_url.starts_with(&format!("{HOST}/orders/")));
    let orders = f.orders.orders().await.unwrap();
    assert_eq!(session.order_id, orders[0].id);
    assert_eq!(orders[0].lines.len(), 2);
    // Two books (1300 g) to Germany: 4.90 shipping.
    assert_eq!(orders[0].total.minor(), 4900 + 2 * 2990 + 490);
}

#[tokio::test]
async fn a_sold_out_checkout_event_answers_409_problem_json() {
    let f = functions();
    let event = fixture("apigw-v2-post-checkout.json");
    // Five seats, one per order: the sixth is refused.
    for _ in 0..5 {
        let taken = checkout::handle(&f.checkout, request(&event))
            .await
            .unwrap();
        assert_eq!(taken.status(), 201);
    }
    let response = checkout::handle(&f.checkout, request(&event))
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(body_json(&response)["title"], "Sold out");
}

fn webhook_event(body: &str, signature: &str) -> Value {
    let mut event = fixture("apigw-v2-post-webhook.json");
    event["body"] = Value::String(base64::engine::general_purpose::STANDARD.encode(body));
    event["headers"]["nightshift-signature"] = Value::String(signature.into());
    event
}

#[tokio::test]
async fn a_signed_base64_webhook_event_pays_the_order_and_queues_fulfilment() {
    let f = functions();
    let receipt = checkout_json(&f).await;
    let body = serde_json::json!({"id": "evt_1", "type": "payment.approved", "order_id": receipt["order_id"],
                                  "amount": {"minor": 49000, "currency": "EUR"}, "created": now()})
    .to_string();
    let event = webhook_event(&body, &sign(TESTPAY_SECRET, now(), body.as_bytes()));
    for _ in 0..2 {
        let response = payment_callback::handle(&f.callback, request(&event))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let id = shared::domain::OrderId::parse(receipt["order_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        f.orders.order(&id).await.unwrap().unwrap().status,
        OrderStatus::Paid
    );
    let queued = f.queue.try_receive(QueueName::Fulfillment, 10);
    assert!(!queued.is_empty());
    assert_eq!(
        Message::from_json(&queued[0].body).unwrap(),
        Message::FulfilOrder { order_id: id }
    );
}

#[tokio::test]
async fn a_base64_encoded_stripe_event_is_verified_over_its_decoded_bytes() {
    use shared::adapters::stripe::{self, Stripe};
    let f = functions();
    let receipt = checkout_json(&f).await;
    let callback = payment_callback::State {
        store: f.store.clone(),
        orders: f.orders.clone(),
        queue: f.queue.clone(),
        gateway: Stripe::new(
            stripe::DEFAULT_API_BASE,
            "sk_test_unused".to_owned().into(),
            "whsec_handler".to_owned().into(),
            http_client().unwrap(),
        ),
    };
    // Bytes that JSON would re-encode differently: verification must use them as sent.
    let body = format!(
        "{{\"id\":\"evt_b64\",\"type\":\"checkout.session.completed\",\"data\":{{\"object\":{{\"id\":\"cs_test_b64\",\"client_reference_id\":{},\"amount_total\":49000,\"currency\":\"eur\",\"payment_status\":\"paid\",\"status\":\"complete\",\"description\":\"caf\u{e9} \\u00e9\"}}}}}}\n",
        receipt["order_id"]
    );
    let mut event = webhook_event(&body, "");
    event["rawPath"] = "/payments/stripe/webhook".into();
    event["requestContext"]["http"]["path"] = "/payments/stripe/webhook".into();
    event["isBase64Encoded"] = true.into();
    event["headers"]["stripe-signature"] = sign("whsec_handler", now(), body.as_bytes()).into();
    let response = payment_callback::handle(&callback, request(&event))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(body_json(&response)["applied"], true);
    let id = shared::domain::OrderId::parse(receipt["order_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        f.orders.order(&id).await.unwrap().unwrap().status,
        OrderStatus::Paid
    );

    // The same bytes with the signature of one changed byte: 400, nothing recorded.
    let mut forged = event.clone();
    forged["body"] = base64::engine::general_purpose::STANDARD
        .encode(body.replace("49000", "49001"))
        .into();
    let response = payment_callback::handle(&callback, request(&forged))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn a_webhook_event_with_a_bad_signature_answers_400_and_changes_nothing() {
    let f = functions();
    let receipt = checkout_json(&f).await;
    let body = serde_json::json!({"id": "evt_1", "type": "payment.approved", "order_id": receipt["order_id"],
                                  "amount": {"minor": 49000, "currency": "EUR"}, "created": now()})
    .to_string();
    let response = payment_callback::handle(
        &f.callback,
        request(&webhook_event(&body, &sign("nope", now(), body.as_bytes()))),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    assert!(f.queue.try_receive(QueueName::Fulfillment, 10).is_empty());
}

#[tokio::test]
async fn an_order_page_event_answers_with_the_order_json_and_404_for_unknown_tokens() {
    let f = functions();
    let receipt = checkout_json(&f).await;
    let token = token_of(&receipt);
    let response = order_page::handle(
        &f.page,
        request(&get_event(&format!("/orders/{token}.json"))),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let order = body_json(&response);
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order["lines"][0]["sku"], "mentoring-cohort");
    assert_eq!(order["lines"][0]["quantity"], 1);

    let unknown = order_page::handle(&f.page, request(&fixture("apigw-v2-get-order.json")))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn the_fulfilment_handler_reports_only_the_records_that_failed() {
    let f = functions();
    let receipt = checkout_json(&f).await;
    let id = shared::domain::OrderId::parse(receipt["order_id"].as_str().unwrap()).unwrap();
    let mut order = f.orders.order(&id).await.unwrap().unwrap();
    order.status = OrderStatus::Paid;
    order.version += 1;
    f.orders
        .save_order(&order, order.version - 1)
        .await
        .unwrap();

    let mut event = fixture("sqs-fulfillment-batch.json");
    event["Records"][0]["body"] = Value::String(
        Message::FulfilOrder {
            order_id: id.clone(),
        }
        .to_json(),
    );
    let payload: SqsEvent = serde_json::from_value(event).unwrap();
    let state = fulfillment::State {
        store: f.store.clone(),
        orders: f.orders.clone(),
        queue: f.queue.clone(),
        fulfillers: Providers {
            courses: CourseProviders::new(http_client().unwrap(), Default::default(), SystemClock),
            licenses: LicenseKeys::new(None),
        },
    };
    let response = fulfillment::handle(&state, LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["2e1424d4-f796-459a-8184-9c92662be6da"],
        "only the malformed record fails"
    );
    assert_eq!(
        f.orders.order(&id).await.unwrap().unwrap().status,
        OrderStatus::Fulfilled
    );

    let mail = f.queue.try_receive(QueueName::Mail, 10);
    assert_eq!(mail.len(), 1);
    let mail_state = mailer::State {
        store: f.store.clone(),
        templates: Templates::new(&f.store).unwrap(),
        orders: f.orders.clone(),
        sender: f.orders.outbox(),
        texts: f.orders.texts(),
        queue: f.queue.clone(),
        token_key: "token-key".to_owned().into(),
    };
    let mut event = fixture("sqs-fulfillment-batch.json");
    event["Records"][0]["body"] = Value::String(mail[0].body.clone());
    let payload: SqsEvent = serde_json::from_value(event).unwrap();
    let response = mailer::handle(&mail_state, LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        f.orders.outbox().mails().unwrap().len(),
        2,
        "the buyer's mail and the seller's copy"
    );
}

/// The order token at the end of a receipt's order URL.
fn token_of(receipt: &Value) -> String {
    receipt["order_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// The GET fixture with another path.
fn get_event(path: &str) -> Value {
    let mut event = fixture("apigw-v2-get-order.json");
    event["rawPath"] = Value::String(path.to_owned());
    event["requestContext"]["http"]["path"] = Value::String(path.to_owned());
    event
}

#[tokio::test]
async fn the_pay_link_leads_to_testpays_card_page_served_by_the_order_page_function() {
    let f = functions();
    let receipt = checkout_json(&f).await;
    let token = token_of(&receipt);
    let pay = order_page::handle(
        &f.page,
        request(&get_event(&format!("/orders/{token}/pay"))),
    )
    .await
    .unwrap();
    assert_eq!(pay.status(), 303);
    let session = pay.headers()["location"].to_str().unwrap().to_owned();
    assert!(session.starts_with("/testpay/sessions/ts_"), "{session}");
    let page = order_page::handle(&f.page, request(&get_event(&session)))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = String::from_utf8(page.body().to_vec()).unwrap();
    assert!(html.contains("card_number") && html.contains("€490.00"));
    let forged = order_page::handle(
        &f.page,
        request(&get_event("/testpay/sessions/ts_e30.AAAA")),
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 404);
}

#[tokio::test]
async fn seat_links_answer_programs_with_problems_and_browsers_with_pages() {
    let f = functions();
    let unknown = "0123456789abcdef0123-0-0-AAAAAAAAAAAAAAAAAAAAAA";
    let answer = order_page::handle(&f.page, request(&get_event(&format!("/seats/{unknown}"))))
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");

    let mut browser = get_event(&format!("/seats/{unknown}"));
    browser["headers"]["accept"] =
        Value::String("text/html,application/xhtml+xml,*/*;q=0.8".into());
    let answer = order_page::handle(&f.page, request(&browser))
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let html = String::from_utf8(answer.body().to_vec()).unwrap();
    assert!(html.contains("<h1>Not found</h1>"), "{html}");

    let mut json_post = get_event(&format!("/seats/{unknown}"));
    json_post["requestContext"]["http"]["method"] = Value::String("POST".into());
    json_post["headers"]["content-type"] = Value::String("application/json".into());
    json_post["body"] = Value::String("{}".into());
    let answer = order_page::handle(&f.page, request(&json_post))
        .await
        .unwrap();
    assert_eq!(answer.status(), 415);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
}
