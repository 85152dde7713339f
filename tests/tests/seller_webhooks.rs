//! Seller webhooks end to end on the dev stack: every paid order is POSTed to each of the
//! store's `[[webhooks]]`, signed with `Nightshift-Signature` over the exact body; a 500 is
//! tried again after a delay with the same body; an endpoint that refuses for good gets the
//! seller an alert mail, once.

use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::fake_http::serve;
use tests::{recipients, sample_store, DevStack, APPROVE};

/// One request as the seller's endpoint saw it.
#[derive(Clone)]
struct Seen {
    path: String,
    signature: String,
    idempotency_key: String,
    body: Vec<u8>,
}

/// A seller endpoint: answers from `statuses` in turn (the last one for ever after).
async fn endpoint(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = seen.clone();
    let url = serve(move |request| {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let mut log = log.lock().unwrap();
        log.push(Seen {
            path: request.path.clone(),
            signature: header("nightshift-signature"),
            idempotency_key: header("idempotency-key"),
            body: request.body.to_vec(),
        });
        let status = statuses[(log.len() - 1).min(statuses.len() - 1)];
        (status, "{}".into())
    })
    .await;
    (url, seen)
}

async fn wait_for_requests(seen: &Mutex<Vec<Seen>>, count: usize, seconds: u64) -> Vec<Seen> {
    for _ in 0..seconds * 10 {
        if seen.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.lock().unwrap().clone()
}

/// Checks `t=…,v1=…` against the body with the secret, independently of the code under test.
fn signed_by(seen: &Seen, secret: &str) -> bool {
    let t: i64 = seen
        .signature
        .split(',')
        .find_map(|part| part.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    (tests::now() - t).abs() < 300 && tests::sign(secret, t, &seen.body) == seen.signature
}

#[tokio::test]
async fn a_paid_order_is_posted_signed_and_a_500_is_tried_again_with_the_same_body() {
    let (flaky, flaky_seen) = endpoint(vec![500, 200]).await;
    let (gone, gone_seen) = endpoint(vec![410]).await;
    let store = format!(
        "{}\n[[webhooks]]\nurl = \"{flaky}/orders\"\nsecret = \"warehouse\"\n\n[[webhooks]]\nurl = \"{gone}/hooks\"\nsecret = \"old-crm\"\n",
        sample_store()
    );
    let dev = DevStack::start(&store).unwrap();
    let token = dev
        .buy(&[("rust-course", 1), ("rust-book", 1)], "Ann", APPROVE)
        .await
        .unwrap();
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "awaiting_shipment")
        .await
        .unwrap();
    let id = order["order_id"].as_str().unwrap();

    // The first try got a 500; the second comes about five seconds later.
    let first = wait_for_requests(&flaky_seen, 1, 10).await;
    assert_eq!(first.len(), 1);
    let both = wait_for_requests(&flaky_seen, 2, 20).await;
    assert_eq!(both.len(), 2, "tried again after the 500");
    let secret = dev.secret("warehouse").unwrap();
    for seen in &both {
        assert_eq!(seen.path, "/orders");
        assert!(signed_by(seen, &secret), "{}", seen.signature);
        assert!(!signed_by(seen, "another secret"));
        assert_eq!(seen.idempotency_key, format!("{id}:order.paid"));
    }
    assert_eq!(both[0].body, both[1].body, "the same order, byte for byte");
    let body: Value = serde_json::from_slice(&both[1].body).unwrap();
    assert_eq!(body["type"], "order.paid");
    assert_eq!(body["order"]["order_id"], id);
    assert_eq!(body["order"]["email"], "ann@example.com");
    assert_eq!(body["order"]["total"]["amount_minor"], 4900 + 2990 + 490);
    assert_eq!(body["order"]["lines"][0]["sku"], "rust-course");
    assert_eq!(body["order"]["shipping"]["address"]["city"], "Berlin");
    assert!(
        !String::from_utf8_lossy(&both[1].body).contains("password"),
        "no access details for the seller's systems"
    );
    // Delivered: no third request.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(flaky_seen.lock().unwrap().len(), 2);

    // The endpoint that answered 410 was not tried again; the seller is told once.
    let refused = wait_for_requests(&gone_seen, 1, 10).await;
    assert_eq!(refused.len(), 1);
    assert!(signed_by(&refused[0], &dev.secret("old-crm").unwrap()));
    let alerts = dev
        .wait_for_mail(1, |m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("Action needed: your webhook")
        })
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(recipients(&alerts[0], "to"), ["seller@example.com"]);
    let text = alerts[0]["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("{gone}/hooks")) && text.contains("410"),
        "{text}"
    );
    assert_eq!(gone_seen.lock().unwrap().len(), 1);
}
