//! Expiry without anyone opening the page, on the dev stack under its test clock (and on
//! moto): Stripe's sessions are asked and closed first, a session found paid is fulfilled, and
//! money that comes after expiry follows the store's `late_payment` policy.

use serde_json::Value;
use tests::moto::{moto, unique};
use tests::stripe::FakeStripe;
use tests::{recipients, sample_store, DevStack, ADDRESS};

fn stripe_store(late_payment: &str) -> String {
    sample_store().replace(
        "gateway = \"testpay\"",
        &format!("gateway = \"stripe\"\nlate_payment = \"{late_payment}\""),
    )
}

async fn start(fake: &FakeStripe, store: &str) -> DevStack {
    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    DevStack::start_with_env(store, &env).unwrap()
}

/// Checks out all five seats of the cohort (its whole stock) and follows the buyer to Stripe:
/// gives the order token and the session.
async fn cohort_to_stripe(dev: &DevStack, fake: &FakeStripe) -> (String, String) {
    let location = dev
        .checkout_form_to(
            &[("mentoring-cohort", 5)],
            "ann@example.com",
            "Ann",
            ADDRESS,
        )
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("checkout refused: {e:?}; Stripe: {:?}", fake.refused()));
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
        .unwrap()
        .to_owned();
    (token, session)
}

/// Whether the buy page offers the cohort (not "Sold out").
async fn cohort_on_sale(dev: &DevStack) -> bool {
    let page = dev
        .http
        .get(dev.url("/buy/mentoring-cohort"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    !page.contains("Sold out")
}

/// The webhook Stripe sends for the session now, signed at the dev stack's (moved) time.
async fn webhook(dev: &DevStack, fake: &FakeStripe, kind: &str, session: &str, at: i64) -> u16 {
    let (body, header) = fake.event(kind, session, at);
    dev.http
        .post(dev.url("/payments/stripe/webhook"))
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_abandoned_stripe_order_has_its_session_closed_then_expires_and_frees_its_stock() {
    let fake = FakeStripe::start().await;
    let dev = start(&fake, &stripe_store("fulfil_if_in_stock")).await;
    let (token, session) = cohort_to_stripe(&dev, &fake).await;
    assert!(!cohort_on_sale(&dev).await, "all five seats are held");

    // Nothing is due while the reservation holds.
    let early = dev.advance_clock(60).await.unwrap();
    assert_eq!(early["ran"]["due"], 0);
    // Past it, nobody opening the page: the scheduler's run closes the session, then expires.
    let ran = dev.advance_clock(45 * 60).await.unwrap();
    assert_eq!(
        (ran["ran"]["due"].clone(), ran["ran"]["expired"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(fake.expired_by_api(), vec![session.clone()]);
    assert_eq!(fake.session(&session)["status"], "expired");
    assert_eq!(dev.order_json(&token).await.unwrap()["status"], "expired");
    assert!(cohort_on_sale(&dev).await, "the seats are back");
    // Again: nothing more to do.
    let again = dev.advance_clock(60).await.unwrap();
    assert_eq!(again["ran"]["due"], 0);
}

#[tokio::test]
async fn a_session_paid_without_its_webhook_is_fulfilled_at_expiry_time_not_expired() {
    let fake = FakeStripe::start().await;
    let dev = start(&fake, &stripe_store("fulfil_if_in_stock")).await;
    let (token, session) = cohort_to_stripe(&dev, &fake).await;
    fake.complete(&session, "paid");
    let ran = dev.advance_clock(45 * 60).await.unwrap();
    assert_eq!(
        (ran["ran"]["due"].clone(), ran["ran"]["expired"].clone()),
        (1.into(), 0.into())
    );
    assert!(fake.expired_by_api().is_empty());
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
    assert_eq!(order["lines"][0]["quantity"], 5);
    let mails = dev
        .wait_for_mail(1, |m| recipients(m, "to") == ["ann@example.com"])
        .await
        .unwrap();
    assert_eq!(mails.len(), 1);
    // The webhook that comes after changes nothing.
    let at = dev.advance_clock(0).await.unwrap()["now"].as_i64().unwrap();
    assert_eq!(
        webhook(&dev, &fake, "checkout.session.completed", &session, at).await,
        200
    );
    assert_eq!(
        dev.outbox().await.unwrap().len(),
        2,
        "the buyer's mail and the seller's copy"
    );
}

/// A payment that comes after expiry: the session completed at the last second, and its
/// webhook only arrives once the order has expired (Stripe had not yet said so when asked).
async fn paid_after_expiry(policy: &str) -> (FakeStripe, DevStack, String, i64) {
    let fake = FakeStripe::start().await;
    let dev = start(&fake, &stripe_store(policy)).await;
    let (token, session) = cohort_to_stripe(&dev, &fake).await;
    let ran = dev.advance_clock(45 * 60).await.unwrap();
    assert_eq!(ran["ran"]["expired"], 1);
    assert_eq!(dev.order_json(&token).await.unwrap()["status"], "expired");
    fake.complete(&session, "paid");
    let at = ran["now"].as_i64().unwrap();
    assert_eq!(
        webhook(&dev, &fake, "checkout.session.completed", &session, at).await,
        200
    );
    // Delivered again: applied once.
    assert_eq!(
        webhook(&dev, &fake, "checkout.session.completed", &session, at).await,
        200
    );
    (fake, dev, token, at)
}

#[tokio::test]
async fn a_late_payment_is_fulfilled_when_the_stock_is_still_there() {
    let (fake, dev, token, _) = paid_after_expiry("fulfil_if_in_stock").await;
    dev.wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
    assert!(!cohort_on_sale(&dev).await, "the seats are taken again");
    assert!(fake.refunds().is_empty());
}

#[tokio::test]
async fn a_late_payment_is_refunded_once_with_a_mail_that_says_why() {
    let (fake, dev, token, _) = paid_after_expiry("refund").await;
    let mails = dev
        .wait_for_mail(1, |m| recipients(m, "to") == ["ann@example.com"])
        .await
        .unwrap();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0]["subject"]
        .as_str()
        .unwrap()
        .contains("was refunded"));
    let refunds = fake.refunds();
    assert_eq!(refunds.len(), 1);
    assert!(refunds[0]["payment_intent"].starts_with("pi_fake"));
    let order: Value = dev.order_json(&token).await.unwrap();
    assert_eq!(order["status"], "expired");
    assert!(cohort_on_sale(&dev).await);
}

#[tokio::test]
async fn a_late_payment_is_held_for_the_seller_under_the_hold_policy() {
    let (fake, dev, token, _) = paid_after_expiry("hold").await;
    let alerts = dev
        .wait_for_mail(1, |m| {
            m["subject"]
                .as_str()
                .unwrap_or("")
                .starts_with("Action needed")
        })
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(recipients(&alerts[0], "to"), ["seller@example.com"]);
    assert_eq!(dev.order_json(&token).await.unwrap()["status"], "expired");
    assert!(fake.refunds().is_empty());
}

#[tokio::test]
async fn on_moto_an_abandoned_order_expires_and_its_open_session_is_closed() {
    let endpoint = &moto().url;
    let prefix = unique("expiry");
    let fake = FakeStripe::start().await;
    let env = fake.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dev = DevStack::start_on_aws_with_env(
        &stripe_store("fulfil_if_in_stock"),
        endpoint,
        &prefix,
        &env,
    )
    .unwrap();
    let (token, session) = cohort_to_stripe(&dev, &fake).await;
    assert!(!cohort_on_sale(&dev).await);
    let ran = dev.advance_clock(45 * 60).await.unwrap();
    assert_eq!(ran["ran"]["expired"], 1, "{ran}");
    assert_eq!(fake.expired_by_api(), vec![session]);
    assert_eq!(dev.order_json(&token).await.unwrap()["status"], "expired");
    assert!(cohort_on_sale(&dev).await);
}

#[tokio::test]
async fn a_stripe_event_whose_webhook_never_came_is_found_by_the_reconciler_and_applied_once() {
    let fake = FakeStripe::start().await;
    let dev = start(&fake, &stripe_store("fulfil_if_in_stock")).await;
    let (token, session) = cohort_to_stripe(&dev, &fake).await;
    fake.complete(&session, "paid");
    // Stripe made the event; its webhook never reached the store.
    let _ = fake.event("checkout.session.completed", &session, tests::now());
    let ran = dev.advance_clock(0).await.unwrap();
    assert_eq!(ran["ran"]["missed_events"], 1, "{ran}");
    dev.wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
    let again = dev.advance_clock(0).await.unwrap();
    assert_eq!(again["ran"]["missed_events"], 0, "{again}");
    let lists = fake.log.lock().unwrap().event_lists.clone();
    assert!(
        lists[0].contains("types%5B%5D=checkout.session.completed"),
        "{lists:?}"
    );
    assert!(lists[0].contains("created%5Bgte%5D="), "{lists:?}");
}
