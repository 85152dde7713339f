//! Stripe end to end: a real `nightshift dev` with `gateway = "stripe"` against the fake Stripe
//! API, driven with signed webhooks as Stripe sends them, in every order.

use serde_json::Value;
use tests::stripe::FakeStripe;
use tests::{decoded, now, recipients, sample_store, DevStack, ADDRESS};

fn stripe_store() -> String {
    sample_store().replace("gateway = \"testpay\"", "gateway = \"stripe\"")
}

async fn start(fake: &FakeStripe) -> DevStack {
    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    DevStack::start_with_env(&stripe_store(), &env).unwrap()
}

fn to_buyer(mail: &Value) -> bool {
    recipients(mail, "to") == ["ann@example.com"]
}

/// Checks out one course, which sends the buyer to Stripe's page: returns the order token
/// (from the session's return address) and the session.
async fn checkout_to_stripe(dev: &DevStack, fake: &FakeStripe) -> (String, String) {
    let location = dev
        .checkout_form_to(&[("rust-course", 1)], "ann@example.com", "Ann", ADDRESS)
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "checkout refused: {e:?}; Stripe refused {:?}",
                fake.refused()
            )
        });
    let session = location
        .strip_prefix("https://checkout.stripe.test/c/pay/")
        .unwrap_or_else(|| panic!("checkout went to {location}"))
        .to_owned();
    let back = fake.session(&session)["success_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = back
        .strip_prefix(&dev.url("/orders/"))
        .and_then(|rest| rest.split('?').next())
        .unwrap_or_else(|| panic!("the session returns to {back}"))
        .to_owned();
    (token, session)
}

async fn deliver(dev: &DevStack, body: &[u8], header: &str) -> (u16, Value) {
    let response = dev
        .http
        .post(dev.url("/payments/stripe/webhook"))
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn send(dev: &DevStack, fake: &FakeStripe, kind: &str, session: &str) -> (u16, Value) {
    let (body, header) = fake.event(kind, session, now());
    deliver(dev, &body, &header).await
}

#[tokio::test]
async fn the_session_carries_every_field_stripe_needs_and_a_signed_completion_fulfils_the_order() {
    let fake = FakeStripe::start().await;
    let dev = start(&fake).await;
    let (token, session) = checkout_to_stripe(&dev, &fake).await;

    let created = fake.created();
    assert_eq!(created.len(), 1);
    let form = &created[0];
    let order = dev.order_json(&token).await.unwrap();
    let order_id = order["order_id"].as_str().unwrap();
    assert_eq!(form["mode"], "payment");
    assert_eq!(form["client_reference_id"], order_id);
    assert_eq!(form["metadata[order_id]"], order_id);
    assert_eq!(form["customer_email"], "ann@example.com");
    assert_eq!(form["line_items[0][price_data][currency]"], "eur");
    assert_eq!(form["line_items[0][price_data][unit_amount]"], "4900");
    assert_eq!(
        form["line_items[0][price_data][product_data][name]"],
        "Rust from Zero"
    );
    assert_eq!(form["line_items[0][quantity]"], "1");
    assert_eq!(
        form["success_url"],
        format!(
            "{}?session_id={{CHECKOUT_SESSION_ID}}",
            dev.url(&format!("/orders/{token}"))
        )
    );
    assert_eq!(form["cancel_url"], dev.url(&format!("/orders/{token}")));
    let expires_at: i64 = form["expires_at"].parse().unwrap();
    assert!(
        expires_at >= now() + 30 * 60,
        "Stripe's minimum is 30 minutes"
    );

    // Following the pay link again (a double click) gets the same session.
    let again = dev
        .http
        .get(dev.url(&format!("/orders/{token}/pay")))
        .send()
        .await
        .unwrap();
    assert!(again.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with(&session));
    assert!(fake.refused().is_empty(), "{:?}", fake.refused());

    fake.complete(&session, "paid");
    let (status, answer) = send(&dev, &fake, "checkout.session.completed", &session).await;
    assert_eq!(
        (status, answer["applied"].clone()),
        (200, Value::Bool(true))
    );
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
    assert!(order["lines"][0]["access"]["password"].is_string());
    let mails = dev.wait_for_mail(1, to_buyer).await.unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["subject"], "Your access to Rust from Zero");
}

#[tokio::test]
async fn unverifiable_webhooks_get_400_and_change_nothing() {
    let fake = FakeStripe::start().await;
    let dev = start(&fake).await;
    let (token, session) = checkout_to_stripe(&dev, &fake).await;
    fake.complete(&session, "paid");
    let (body, header) = fake.event("checkout.session.completed", &session, now());

    let mut changed = body.clone();
    let at = changed.iter().position(|b| *b == b'4').unwrap();
    changed[at] = b'5';
    let old = fake.event("checkout.session.completed", &session, now() - 301);
    for (body, header) in [
        (changed.as_slice(), header.as_str()),
        (body.as_slice(), ""),
        (body.as_slice(), "t=1,v1=nothex"),
        (old.0.as_slice(), old.1.as_str()),
    ] {
        let response = dev
            .http
            .post(dev.url("/payments/stripe/webhook"))
            .header("stripe-signature", header)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{header}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    // The testpay webhook does not exist on a Stripe store.
    let testpay = dev
        .http
        .post(dev.url("/payments/testpay/webhook"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(testpay.status(), 404);
    let order = dev.order_json(&token).await.unwrap();
    assert_eq!(order["status"], "pending_payment");

    // An event type Nightshift does not use: 200, nothing changes.
    let (other, header) = fake.signed_event(
        "customer.created",
        serde_json::json!({"id": "cus_1"}),
        now(),
    );
    let (status, answer) = deliver(&dev, &other, &header).await;
    assert_eq!(
        (status, answer["applied"].clone()),
        (200, Value::Bool(false))
    );
    assert_eq!(
        dev.order_json(&token).await.unwrap()["status"],
        "pending_payment"
    );
}

/// Every order of completed, expired and failed, each delivered twice, ends the same: the
/// order paid and delivered once, one buyer mail.
#[tokio::test]
async fn every_reordering_of_completed_expired_and_failed_delivered_twice_ends_paid_once() {
    let fake = FakeStripe::start().await;
    let dev = start(&fake).await;
    let kinds = [
        "checkout.session.completed",
        "checkout.session.expired",
        "checkout.session.async_payment_failed",
    ];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut tokens = Vec::new();
    for order in orders {
        let (token, session) = checkout_to_stripe(&dev, &fake).await;
        fake.complete(&session, "paid");
        let mut events: Vec<(Vec<u8>, String)> = order
            .iter()
            .map(|&i| fake.event(kinds[i], &session, now()))
            .collect();
        events.extend(events.clone());
        for (body, header) in &events {
            let (status, _) = deliver(&dev, body, header).await;
            assert_eq!(status, 200);
        }
        tokens.push(token);
    }
    for token in &tokens {
        let order = dev
            .wait_for_order(token, |o| o["status"] == "fulfilled")
            .await
            .unwrap();
        assert_eq!(order["lines"][0]["state"], "delivered");
    }
    let mails = dev.wait_for_mail(6, to_buyer).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mails_later: Vec<Value> = dev
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .filter(to_buyer)
        .collect();
    assert_eq!(mails.len(), 6);
    assert_eq!(
        mails_later.len(),
        6,
        "one access mail per order, nothing more"
    );
}

#[tokio::test]
async fn an_asynchronous_payment_waits_then_pays_or_fails_with_a_mail() {
    let fake = FakeStripe::start().await;
    let dev = start(&fake).await;

    let (paid_token, paid) = checkout_to_stripe(&dev, &fake).await;
    fake.complete(&paid, "unpaid");
    send(&dev, &fake, "checkout.session.completed", &paid).await;
    let order = dev.order_json(&paid_token).await.unwrap();
    assert_eq!(order["status"], "payment_processing");
    let page = decoded(&dev.order_page(&paid_token).await.unwrap().1);
    assert!(page.contains("Your bank is processing the payment"));
    assert!(
        !page.contains("/pay\""),
        "no second payment while one is processing"
    );
    fake.complete(&paid, "paid");
    send(
        &dev,
        &fake,
        "checkout.session.async_payment_succeeded",
        &paid,
    )
    .await;
    dev.wait_for_order(&paid_token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();

    let (failed_token, failed) = checkout_to_stripe(&dev, &fake).await;
    fake.complete(&failed, "unpaid");
    send(&dev, &fake, "checkout.session.completed", &failed).await;
    send(
        &dev,
        &fake,
        "checkout.session.async_payment_failed",
        &failed,
    )
    .await;
    // A late `succeeded` cannot be: but a `failed` after a `succeeded` is recorded only.
    send(
        &dev,
        &fake,
        "checkout.session.async_payment_succeeded",
        &paid,
    )
    .await;
    send(&dev, &fake, "checkout.session.async_payment_failed", &paid).await;
    assert_eq!(
        dev.order_json(&paid_token).await.unwrap()["status"],
        "fulfilled"
    );
    let order = dev.order_json(&failed_token).await.unwrap();
    assert_eq!(order["status"], "declined");
    let page = decoded(&dev.order_page(&failed_token).await.unwrap().1);
    assert!(page.contains("Try again"));
    let notices = dev
        .wait_for_mail(1, |m| {
            to_buyer(m)
                && m["subject"]
                    .as_str()
                    .unwrap()
                    .contains("did not go through")
        })
        .await
        .unwrap();
    assert_eq!(notices.len(), 1);
}

#[tokio::test]
async fn the_success_page_applies_the_session_before_the_webhook_arrives() {
    let fake = FakeStripe::start().await;
    let dev = start(&fake).await;
    let (token, session) = checkout_to_stripe(&dev, &fake).await;
    let (other_token, other_session) = checkout_to_stripe(&dev, &fake).await;
    fake.complete(&session, "paid");
    fake.complete(&other_session, "paid");

    // Another order's session id changes nothing here.
    let response = dev
        .http
        .get(dev.url(&format!("/orders/{token}.json?session_id={other_session}")))
        .send()
        .await
        .unwrap();
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(
        dev.order_json(&other_token).await.unwrap()["status"],
        "pending_payment"
    );

    // Back from Stripe: the page itself asks Stripe and the order is paid without a webhook.
    let response = dev
        .http
        .get(dev.url(&format!("/orders/{token}?session_id={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let order = dev.order_json(&token).await.unwrap();
    assert_ne!(order["status"], "pending_payment");
    dev.wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();

    // The webhook, when it comes, is the same event: recorded once, nothing more happens.
    let (status, answer) = send(&dev, &fake, "checkout.session.completed", &session).await;
    assert_eq!(
        (status, answer["applied"].clone()),
        (200, Value::Bool(false))
    );
    let mails = dev.wait_for_mail(1, to_buyer).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        dev.outbox()
            .await
            .unwrap()
            .into_iter()
            .filter(to_buyer)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_stripe_store_without_its_keys_refuses_to_start_naming_the_variable() {
    let dir = tests::TempDir::new("nokeys");
    std::fs::write(dir.path().join("store.toml"), stripe_store()).unwrap();
    let templates = dir.path().join("templates/mail");
    std::fs::create_dir_all(&templates).unwrap();
    for entry in std::fs::read_dir(tests::repo_root().join("templates/mail")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), templates.join(entry.file_name())).unwrap();
    }
    let output = std::process::Command::new(tests::nightshift_binary())
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(dir.path().join("store.toml"))
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("STRIPE_SECRET_KEY"), "{stderr}");
}
