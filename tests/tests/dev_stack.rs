//! Black-box tests: a real `nightshift dev` process, driven over HTTP as a browser would.

use serde_json::{json, Value};
use std::time::Duration;
use tests::lms::FakeLms;
use tests::{decoded, now, recipients, sample_store, sign, DevStack, APPROVE, DECLINE};

fn to_buyer(mail: &Value) -> bool {
    recipients(mail, "to") == ["ann@example.com"]
}

fn to_seller(mail: &Value) -> bool {
    recipients(mail, "to") == ["seller@example.com"]
}

fn settled(order: &Value) -> bool {
    order["state"] == "approved"
}

/// The sample store with a course enrolled through the fake LMS.
fn store_with_lms(lms: &FakeLms, extra: &str) -> String {
    format!(
        "{}{extra}\n[products.lms-course]\nname = \"LMS Course\"\nprice = \"99.00\"\n\
         fulfillment = {{ kind = \"course\", provider = \"webhook\", course_id = \"lms-1\", url = \"{}\", secret = \"lms\" }}\n",
        sample_store(),
        lms.url
    )
}

#[tokio::test]
async fn an_approved_course_shows_the_login_on_the_page_and_in_the_mail_with_a_seller_copy() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev
        .buy(&[("rust-course", 1)], "Ann", APPROVE)
        .await
        .unwrap();
    let order = dev.wait_for_order(&token, settled).await.unwrap();
    assert_eq!(order["status"], "fulfilled");
    let line = &order["lines"][0];
    assert_eq!(line["sku"], "rust-course");
    assert_eq!(line["state"], "delivered");
    assert_eq!(line["access"]["username"], "ann@example.com");
    let password = line["access"]["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 12);
    assert_eq!(order["total"]["amount_minor"], 4900);

    let (status, page) = dev.order_page(&token).await.unwrap();
    assert_eq!(status, 200);
    let page = decoded(&page);
    assert!(page.contains(&password) && page.contains("https://learn.example.com/login"));
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "a settled page stops refreshing"
    );

    let buyer = dev.wait_for_mail(1, to_buyer).await.unwrap();
    assert_eq!(buyer.len(), 1);
    assert_eq!(buyer[0]["subject"], "Your access to Rust from Zero");
    assert!(buyer[0]["text"].as_str().unwrap().contains(&password));
    assert!(buyer[0]["html"].as_str().unwrap().contains(&password));
    assert_eq!(buyer[0]["from"], "Nightshift Academy <orders@example.com>");
    let copies = dev.wait_for_mail(1, to_seller).await.unwrap();
    assert_eq!(copies.len(), 1);
    let order_id = order["order_id"].as_str().unwrap();
    assert_eq!(
        copies[0]["subject"],
        format!("[Copy] Order {order_id} · Rust from Zero · Ann")
    );
    // The seller's copy names the buyer but keeps the password with the buyer.
    let copy = copies[0]["text"].as_str().unwrap();
    assert!(
        copy.contains("ann@example.com") && !copy.contains(&password),
        "{copy}"
    );
    // Every buyer mail leads back to the order page.
    let link = dev.url(&format!("/orders/{token}"));
    assert!(buyer[0]["text"].as_str().unwrap().contains(&link));
    assert!(decoded(buyer[0]["html"].as_str().unwrap()).contains(&link));

    // The outbox can be followed: `?from=N` gives only the mails after the first N.
    let all = dev.outbox().await.unwrap();
    assert_eq!(dev.outbox_from(1).await.unwrap(), all[1..]);
    let bad = dev
        .http
        .get(dev.url("/dev/outbox.json?from=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_declined_card_shows_the_declined_page_gives_no_access_and_can_be_retried() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev
        .buy(&[("rust-course", 1)], "Ann", DECLINE)
        .await
        .unwrap();
    let order = dev.order_json(&token).await.unwrap();
    assert_eq!(order["status"], "declined");
    assert_eq!(order["lines"][0]["access"], Value::Null);
    let page = decoded(&dev.order_page(&token).await.unwrap().1);
    assert!(page.contains("Your card was declined"));
    assert!(page.contains(&format!("/orders/{token}/pay")) && page.contains("Try again"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        dev.outbox().await.unwrap().is_empty(),
        "no access mail after a decline"
    );

    let back = dev.pay(&token, APPROVE).await.unwrap();
    assert_eq!(back, dev.url(&format!("/orders/{token}")));
    let order = dev.wait_for_order(&token, settled).await.unwrap();
    assert_eq!(order["status"], "fulfilled");
    assert_eq!(dev.wait_for_mail(1, to_buyer).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_two_course_order_is_mailed_condensed_by_default() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev
        .buy(
            &[("rust-course", 1), ("mentoring-cohort", 1)],
            "Ann",
            APPROVE,
        )
        .await
        .unwrap();
    dev.wait_for_order(&token, settled).await.unwrap();
    let buyer = dev.wait_for_mail(1, to_buyer).await.unwrap();
    assert_eq!(buyer.len(), 1);
    let text = buyer[0]["text"].as_str().unwrap();
    assert!(text.contains("Rust from Zero") && text.contains("Rust Mentoring Cohort"));
    assert!(
        text.contains("Your seat in the cohort is confirmed"),
        "the product's own template is used"
    );
    assert_eq!(buyer[0]["subject"], "Your order from Nightshift Academy");
}

#[tokio::test]
async fn a_two_course_order_is_mailed_per_item_when_the_store_says_so() {
    let store = sample_store()
        .replace("grouping = \"order\"", "grouping = \"item\"")
        .replace("\"separate\"", "\"bcc\"");
    let dev = DevStack::start(&store).unwrap();
    let token = dev
        .buy(
            &[("rust-course", 1), ("mentoring-cohort", 1)],
            "Ann",
            APPROVE,
        )
        .await
        .unwrap();
    dev.wait_for_order(&token, settled).await.unwrap();
    let buyer = dev.wait_for_mail(2, to_buyer).await.unwrap();
    let mut subjects: Vec<_> = buyer
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Welcome to the Rust Mentoring Cohort",
            "Your access to Rust from Zero"
        ]
    );
    assert!(buyer
        .iter()
        .all(|m| recipients(m, "bcc") == ["seller@example.com"]));
    assert!(
        dev.outbox().await.unwrap().iter().all(|m| !to_seller(m)),
        "with bcc there is no separate copy"
    );
}

#[tokio::test]
async fn a_physical_book_ends_awaiting_shipment_and_the_seller_is_told() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev.buy(&[("rust-book", 2)], "Ann", APPROVE).await.unwrap();
    let order = dev.wait_for_order(&token, settled).await.unwrap();
    assert_eq!(order["status"], "awaiting_shipment");
    assert_eq!(order["lines"][0]["state"], "awaiting_shipment");
    let ship = dev
        .wait_for_mail(1, |m| {
            m["subject"].as_str().unwrap().starts_with("Ship order")
        })
        .await
        .unwrap();
    assert_eq!(recipients(&ship[0], "to"), ["seller@example.com"]);
    assert!(ship[0]["text"]
        .as_str()
        .unwrap()
        .contains("2 x The Rust Field Guide"));
}

#[tokio::test]
async fn the_five_seat_course_sells_exactly_five_under_fifty_concurrent_checkouts() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let attempts = (0..50).map(|i| {
        let dev = &dev;
        async move {
            dev.checkout_form(
                &[("mentoring-cohort", 1)],
                &format!("buyer{i}@example.com"),
                "B",
            )
            .await
            .unwrap()
        }
    });
    let results = futures::future::join_all(attempts).await;
    let sold = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(sold, 5);
    assert_eq!(refused.len(), 45);
    // Each refused buyer gets the buy page again, saying so: none of the five is paid yet,
    // so they are only held and may come back.
    let held = "Sold out for now: the last 5 are reserved by buyers who have not paid yet.";
    for (status, body) in refused {
        assert_eq!(*status, 409);
        assert!(body.contains(held), "{body}");
    }
    let page = dev
        .http
        .get(dev.url("/buy/mentoring-cohort"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(held));
}

#[tokio::test]
async fn repeated_and_reordered_webhooks_give_one_enrolment_and_one_buyer_mail() {
    let lms = FakeLms::start("lms-secret", vec![]).await;
    let store = store_with_lms(&lms, "").replace(
        "deliver_twice_out_of_order = false",
        "deliver_twice_out_of_order = true",
    );
    let dev = DevStack::start_with_env(&store, &[("NIGHTSHIFT_SECRET_LMS", "lms-secret")]).unwrap();

    // A decline, then an approval: testpay delivers each event twice, replaying the decline
    // between the copies of the approval.
    let token = dev.buy(&[("lms-course", 1)], "Ann", DECLINE).await.unwrap();
    dev.pay(&token, APPROVE).await.unwrap();
    let order = dev.wait_for_order(&token, settled).await.unwrap();
    assert_eq!(order["status"], "fulfilled");

    // The same approval again, many times at once, plus a late decline with a new id.
    let secret = dev.secret("testpay").unwrap();
    let order_id = order["order_id"].as_str().unwrap();
    let approved = json!({"id": "evt_manual", "type": "payment.approved", "order_id": order_id,
                          "amount": {"minor": 9900, "currency": "EUR"}, "created": now()});
    let declined = json!({"id": "evt_late_decline", "type": "payment.declined", "order_id": order_id,
                          "amount": {"minor": 9900, "currency": "EUR"}, "created": now()});
    let deliveries = (0..10).map(|i| {
        let body = if i % 3 == 2 {
            declined.to_string()
        } else {
            approved.to_string()
        };
        let (dev, secret) = (&dev, &secret);
        async move {
            let response = dev
                .http
                .post(dev.url("/payments/testpay/webhook"))
                .header("nightshift-signature", sign(secret, now(), body.as_bytes()))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    });
    assert!(futures::future::join_all(deliveries)
        .await
        .iter()
        .all(|s| *s == 200));
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(dev.order_json(&token).await.unwrap()["status"], "fulfilled");
    assert_eq!(lms.enrolments().len(), 1, "exactly one enrolment");
    assert_eq!(
        dev.wait_for_mail(1, to_buyer).await.unwrap().len(),
        1,
        "exactly one buyer mail"
    );
}

#[tokio::test]
async fn the_lms_webhook_is_signed_retried_after_a_5xx_and_its_answer_shown() {
    let lms = FakeLms::start("lms-secret", vec![503, 500]).await;
    let dev = DevStack::start_with_env(
        &store_with_lms(&lms, ""),
        &[("NIGHTSHIFT_SECRET_LMS", "lms-secret")],
    )
    .unwrap();
    let token = dev
        .buy(&[("lms-course", 1)], "Ann Lee", APPROVE)
        .await
        .unwrap();
    let order = dev.wait_for_order(&token, settled).await.unwrap();
    assert_eq!(order["lines"][0]["access"]["username"], "student-1");
    assert_eq!(
        order["lines"][0]["access"]["login_url"],
        "https://lms.example.com/login"
    );
    let enrolments = lms.enrolments();
    assert_eq!(enrolments.len(), 1);
    assert_eq!(enrolments[0]["email"], "ann@example.com");
    assert_eq!(enrolments[0]["name"], "Ann Lee");
    assert_eq!(enrolments[0]["course_id"], "lms-1");
    assert_eq!(enrolments[0]["line"], 0);
    assert_eq!(enrolments[0]["order_id"], order["order_id"]);
    assert_eq!(lms.log.lock().unwrap().bad_signatures, 0);
    let mail = dev.wait_for_mail(1, to_buyer).await.unwrap();
    assert!(mail[0]["text"]
        .as_str()
        .unwrap()
        .contains("lms-pass-123456"));
}

#[tokio::test]
async fn an_lms_4xx_is_recorded_on_the_line_and_mailed_to_the_seller() {
    let lms = FakeLms::start("lms-secret", vec![422]).await;
    let dev = DevStack::start_with_env(
        &store_with_lms(&lms, ""),
        &[("NIGHTSHIFT_SECRET_LMS", "lms-secret")],
    )
    .unwrap();
    let token = dev.buy(&[("lms-course", 1)], "Ann", APPROVE).await.unwrap();
    let order = dev
        .wait_for_order(&token, |o| o["lines"][0]["state"] == "failed")
        .await
        .unwrap();
    assert!(order["lines"][0]["failure"]
        .as_str()
        .unwrap()
        .contains("422"));
    let alert = dev
        .wait_for_mail(1, |m| {
            m["subject"].as_str().unwrap().starts_with("Action needed")
        })
        .await
        .unwrap();
    assert_eq!(recipients(&alert[0], "to"), ["seller@example.com"]);
    assert!(lms.enrolments().is_empty());
}

#[tokio::test]
async fn a_buyer_name_with_a_script_tag_is_escaped_in_the_page_and_the_mail() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let name = "<script>alert('x')</script>";
    let token = dev.buy(&[("rust-course", 1)], name, APPROVE).await.unwrap();
    dev.wait_for_order(&token, settled).await.unwrap();
    let (_, page) = dev.order_page(&token).await.unwrap();
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&lt;script&gt;"));
    for mail in dev.wait_for_mail(2, |_| true).await.unwrap() {
        let html = mail["html"].as_str().unwrap();
        assert!(!html.contains("<script>"), "{html}");
    }
}

#[tokio::test]
async fn orders_and_mail_survive_a_restart_of_the_dev_stack() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev
        .buy(&[("rust-course", 1)], "Ann", APPROVE)
        .await
        .unwrap();
    let before = dev.wait_for_order(&token, settled).await.unwrap();
    dev.wait_for_mail(2, |_| true).await.unwrap();
    for i in 0..5 {
        let taken = dev
            .checkout_form(
                &[("mentoring-cohort", 1)],
                &format!("b{i}@example.com"),
                "B",
            )
            .await
            .unwrap();
        assert!(taken.is_ok());
    }

    let dev = dev.restart().unwrap();
    assert_eq!(dev.order_json(&token).await.unwrap(), before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        dev.outbox().await.unwrap().len(),
        2,
        "restart sends no mail twice"
    );
    let sold_out = dev
        .checkout_form(&[("mentoring-cohort", 1)], "c@example.com", "C")
        .await
        .unwrap();
    assert_eq!(
        sold_out.unwrap_err().0,
        409,
        "reservations survive the restart"
    );
}

#[tokio::test]
async fn bad_checkouts_get_problem_json_and_change_nothing() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let post = |body: String, content_type: &'static str| {
        let dev = &dev;
        async move {
            let r = dev
                .http
                .post(dev.url("/checkout"))
                .header("content-type", content_type)
                // Java's default Accept: a program sending JSON still gets problem+json.
                .header(
                    "accept",
                    "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2",
                )
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            (status, ct, r.text().await.unwrap())
        }
    };
    let cases = [
        (json!({"items":[{"sku":"nope","quantity":1}],"email":"a@example.com","name":"A"}).to_string(), 404),
        (json!({"items":[{"sku":"rust-course","quantity":0}],"email":"a@example.com","name":"A"}).to_string(), 400),
        (json!({"items":[{"sku":"rust-course","quantity":1}],"email":"not-an-email","name":"A"}).to_string(), 400),
        (json!({"items":[],"email":"a@example.com","name":"A"}).to_string(), 400),
        (json!({"items":[{"sku":"rust-book","quantity":101}],"email":"a@example.com","name":"A"}).to_string(), 400),
        // A course gives one person access: bought once per order, also across repeated lines.
        (json!({"items":[{"sku":"rust-course","quantity":2}],"email":"a@example.com","name":"A"}).to_string(), 422),
        (json!({"items":[{"sku":"rust-book-pdf","quantity":1},{"sku":"rust-book-pdf","quantity":1}],"email":"a@example.com","name":"A"}).to_string(), 422),
        ("{not json".to_string(), 400),
    ];
    for (body, expected) in cases {
        let (status, content_type, text) = post(body.clone(), "application/json").await;
        assert_eq!(status, expected, "{body} → {text}");
        assert_eq!(content_type, "application/problem+json");
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["status"], expected);
    }
    // A form (here with a browser's Accept) gets the buy page again.
    let (status, content_type, _) = post(
        "sku=rust-book&quantity=1&email=x&name=A".into(),
        "application/x-www-form-urlencoded",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(content_type, "text/html; charset=utf-8");
    // Nothing was reserved: all 100 books can still be bought in one order.
    assert!(dev
        .checkout_form(&[("rust-book", 100)], "a@example.com", "A")
        .await
        .unwrap()
        .is_ok());
}

#[tokio::test]
async fn a_json_checkout_answers_201_and_replays_it_for_the_same_idempotency_key() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let body = json!({"items":[{"sku":"mentoring-cohort","quantity":1}],"email":"a@example.com","name":"A"});
    let send = |key: &'static str, body: Value| {
        let dev = &dev;
        async move {
            let r = dev
                .http
                .post(dev.url("/checkout"))
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = send("k-1", body.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(first["status"], "pending_payment");
    assert!(first["order_url"]
        .as_str()
        .unwrap()
        .starts_with(&dev.url("/orders/")));
    assert!(first["payment_url"].as_str().unwrap().ends_with("/pay"));
    assert_eq!(send("k-1", body.clone()).await, (201, first.clone()));
    let (status, _) = send(
        "k-1",
        json!({"items":[{"sku":"rust-course","quantity":1}],"email":"a@example.com","name":"A"}),
    )
    .await;
    assert_eq!(status, 422);
    // Only the first request reserved a seat: four are left.
    for key in ["k-2", "k-3", "k-4", "k-5"] {
        assert_eq!(send(key, json!({"items":[{"sku":"mentoring-cohort","quantity":1}],"email":"a@example.com","name":"A"})).await.0, 201);
    }
    assert_eq!(send("k-6", json!({"items":[{"sku":"mentoring-cohort","quantity":1}],"email":"a@example.com","name":"A"})).await.0, 409);
    let token = first["order_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(
        dev.order_json(token).await.unwrap()["order_id"],
        first["order_id"]
    );
}

#[tokio::test]
async fn webhooks_with_a_bad_or_missing_signature_get_400_and_change_nothing() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev
        .checkout_form(&[("rust-course", 1)], "a@example.com", "A")
        .await
        .unwrap()
        .unwrap();
    let order = dev.order_json(&token).await.unwrap();
    let body =
        json!({"id": "evt_forged", "type": "payment.approved", "order_id": order["order_id"],
                      "amount": {"minor": 4900, "currency": "EUR"}, "created": now()})
        .to_string();
    let secret = dev.secret("testpay").unwrap();
    let good = sign(&secret, now(), body.as_bytes());
    let tampered = body.replace("4900", "4901");
    for (signature, payload) in [
        (None, body.clone()),
        (
            Some(sign("wrong-secret", now(), body.as_bytes())),
            body.clone(),
        ),
        (Some(good.clone()), tampered),
        (
            Some(sign(&secret, now() - 3600, body.as_bytes())),
            body.clone(),
        ),
        (Some("t=1,v1=zz".into()), body.clone()),
    ] {
        let mut request = dev
            .http
            .post(dev.url("/payments/testpay/webhook"))
            .body(payload);
        if let Some(s) = signature {
            request = request.header("nightshift-signature", s);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    assert_eq!(
        dev.order_json(&token).await.unwrap()["status"],
        "pending_payment"
    );
    let unknown_gateway = dev
        .http
        .post(dev.url("/payments/stripe/webhook"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_gateway.status(), 404);
}

#[tokio::test]
async fn an_unknown_order_token_gets_a_404_page_and_a_404_problem() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let (status, page) = dev.order_page("AAAAAAAAAAAAAAAAAAAAAA").await.unwrap();
    assert_eq!(status, 404);
    assert!(page.contains("Not found"));
    let json = dev
        .http
        .get(dev.url("/orders/AAAAAAAAAAAAAAAAAAAAAA.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 404);
    assert_eq!(json.headers()["content-type"], "application/problem+json");
    let (status, _) = dev.order_page("short").await.unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_unpaid_order_page_waits_for_the_payment_without_reloading_itself() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev
        .checkout_form(&[("rust-course", 1)], "a@example.com", "A")
        .await
        .unwrap()
        .unwrap();
    let (status, page) = dev.order_page(&token).await.unwrap();
    let page = decoded(&page);
    assert_eq!(status, 200);
    assert!(page.contains("Waiting for your payment"), "{page}");
    assert!(page.contains(&format!("/orders/{token}/pay")));
    assert!(!page.contains("http-equiv=\"refresh\""));
    // The JSON API is unchanged: an unpaid order is still `processing` there.
    assert_eq!(dev.order_json(&token).await.unwrap()["state"], "processing");
}

#[tokio::test]
async fn the_buy_page_shows_the_product_and_a_form_posting_to_checkout() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let response = dev
        .http
        .get(dev.url("/buy/rust-course"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = decoded(&response.text().await.unwrap());
    assert!(page.contains("Rust from Zero") && page.contains("€49.00"));
    assert!(page.contains(&format!("action=\"{}\"", dev.url("/checkout"))));
    assert!(page.contains("#4f46e5"), "branded with the store's colour");
    assert_eq!(
        dev.http
            .get(dev.url("/buy/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn testpay_refuses_unknown_cards_and_forged_sessions() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev
        .checkout_form(&[("rust-course", 1)], "a@example.com", "A")
        .await
        .unwrap()
        .unwrap();
    let err = dev
        .pay(&token, "1234 5678 9012 3456")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("400"), "{err}");
    let forged = dev
        .http
        .get(dev.url("/testpay/sessions/ts_eyJ4IjoxfQ.AAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);
    assert_eq!(
        dev.order_json(&token).await.unwrap()["status"],
        "pending_payment"
    );
}
