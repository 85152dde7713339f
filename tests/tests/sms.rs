//! Text reminders: the AWS adapters against fakes of End User Messaging SMS and SNS built
//! from their API references, and the dev stack's SMS outbox end to end, with the checkout
//! form's phone number and consent box.

use serde_json::Value;
use shared::adapters::sms::AwsTexts;
use shared::config::Store;
use shared::domain::Phone;
use shared::ports::{OutgoingText, TextSender};
use std::sync::{Arc, Mutex};
use tests::fake_http::serve;
use tests::{sample_store, DevStack};

fn store_with(sms: &str) -> Store {
    let text = format!(
        "[store]\nname = \"S\"\ncurrency = \"EUR\"\nseller_email = \"s@example.com\"\nsender = \"s@example.com\"\n\n[payments]\ngateway = \"testpay\"\n\n[sms]\n{sms}\n\n[products.a]\nname = \"A\"\nprice = \"1.00\"\nfulfillment = {{ kind = \"license_key\" }}\n"
    );
    Store::parse(&text, std::path::Path::new("store.toml")).unwrap()
}

fn text() -> OutgoingText {
    OutgoingText {
        to: Phone::parse("+6281234567890").unwrap(),
        text: "Nightshift Academy: order ord_1 awaits your transfer".into(),
    }
}

/// A fake AWS endpoint that keeps each request's headers and body and answers with `body`.
async fn fake_aws(body: &'static str) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let url = serve(move |request| {
        let target = request
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body_text = String::from_utf8_lossy(&request.body).into_owned();
        log.lock().unwrap().push((target, body_text));
        (200, body.to_owned())
    })
    .await;
    (url, seen)
}

#[tokio::test]
async fn end_user_messaging_sends_a_transactional_text_from_the_stores_origination_identity() {
    let (url, seen) = fake_aws(r#"{"MessageId":"m-1"}"#).await;
    let aws = tests::moto::sdk_config(&url).await;
    let store = store_with("via = \"end_user_messaging\"\norigination_identity = \"+15555550100\"");
    AwsTexts::from_store(&store, &aws)
        .send(&text())
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "PinpointSMSVoiceV2.SendTextMessage");
    let body: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(body["DestinationPhoneNumber"], "+6281234567890");
    assert_eq!(body["MessageType"], "TRANSACTIONAL");
    assert_eq!(body["OriginationIdentity"], "+15555550100");
    assert!(body["MessageBody"]
        .as_str()
        .unwrap()
        .contains("awaits your transfer"));
}

#[tokio::test]
async fn sns_publishes_to_the_phone_number_as_a_transactional_sms() {
    let (url, seen) = fake_aws(
        "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>",
    )
    .await;
    let aws = tests::moto::sdk_config(&url).await;
    AwsTexts::from_store(&store_with("via = \"sns\""), &aws)
        .send(&text())
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let form: Vec<(String, String)> = form_urlencoded::parse(seen[0].1.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("Action"), Some("Publish"));
    assert_eq!(get("PhoneNumber"), Some("+6281234567890"));
    assert_eq!(
        get("MessageAttributes.entry.1.Name"),
        Some("AWS.SNS.SMS.SMSType")
    );
    assert_eq!(
        get("MessageAttributes.entry.1.Value.StringValue"),
        Some("Transactional")
    );
}

fn transfer_store() -> String {
    sample_store() + "\n[sms]\nvia = \"end_user_messaging\"\n"
}

/// Posts the buy form for one book by bank transfer with these extra fields; gives the
/// status and the page (or where it sent the buyer).
async fn buy(dev: &DevStack, extra: &[(&str, &str)]) -> (u16, String) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("sku", "rust-book-pdf")
        .append_pair("quantity", "1")
        .append_pair("email", "ann@example.com")
        .append_pair("name", "Ann")
        .append_pair("payment_method", "bank_transfer");
    for (k, v) in extra {
        form.append_pair(k, v);
    }
    let response = dev
        .http
        .post(dev.url("/checkout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .body(form.finish())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location.unwrap_or(response.text().await.unwrap()))
}

async fn texts(dev: &DevStack) -> Vec<Value> {
    dev.http
        .get(dev.url("/dev/sms.json"))
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_number_that_is_not_international_or_without_consent_is_refused_keeping_what_was_typed() {
    let dev = DevStack::start(&transfer_store()).unwrap();
    let (status, page) = buy(&dev, &[("phone", "0812 3456 7890"), ("sms_consent", "yes")]).await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"phone-error\""), "{page}");
    assert!(page.contains("international form"));
    assert!(page.contains("value=\"0812 3456 7890\""));
    let (status, page) = buy(&dev, &[("phone", "+62 812 3456 7890")]).await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"sms_consent-error\""), "{page}");
    assert!(page.contains("value=\"+62 812 3456 7890\""));
    let (status, page) = buy(&dev, &[("sms_consent", "yes")]).await;
    assert_eq!(status, 400);
    assert!(page.contains("enter the number to text") || page.contains("Enter the number to text"));
    // Nothing was placed.
    assert!(dev.outbox().await.unwrap().is_empty());
}

#[tokio::test]
async fn transfer_reminders_are_texted_once_to_a_buyer_who_agreed_and_stop_once_paid() {
    let dev = DevStack::start(&transfer_store()).unwrap();
    let (status, to) = buy(
        &dev,
        &[("phone", "+62 812 3456 7890"), ("sms_consent", "yes")],
    )
    .await;
    assert_eq!(status, 303, "{to}");
    let token = to.strip_prefix(&dev.url("/orders/")).unwrap().to_owned();
    // Another buyer gave no number: mail only.
    let (_, other) = buy(&dev, &[]).await;
    let other = other.strip_prefix(&dev.url("/orders/")).unwrap().to_owned();
    dev.wait_for_mail(2, |m| {
        m["subject"]
            .as_str()
            .unwrap_or("")
            .starts_with("Bank details")
    })
    .await
    .unwrap();
    assert!(texts(&dev).await.is_empty());

    // 24 hours before the deadline (3 days in the sample store): one text, one mail each.
    let ran = dev.advance_clock(2 * 86_400).await.unwrap();
    assert_eq!(ran["ran"]["reminded"], 2, "{ran}");
    let reminders = dev
        .wait_for_mail(2, |m| {
            m["subject"].as_str().unwrap_or("").starts_with("Reminder:")
        })
        .await
        .unwrap();
    assert_eq!(reminders.len(), 2);
    let sent = texts(&dev).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], "+6281234567890");
    let order = dev.order_json(&token).await.unwrap();
    let body = sent[0]["text"].as_str().unwrap();
    assert!(body.contains(order["order_id"].as_str().unwrap()), "{body}");
    assert!(body.contains("/orders/"), "{body}");

    // The seller confirms the first transfer: its 2-hour reminder never goes out.
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    let confirmed = dev
        .http
        .post(dev.url(&format!("/dev/orders/{order_id}/confirm-payment")))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let ran = dev.advance_clock(22 * 3600).await.unwrap();
    assert_eq!(ran["ran"]["reminded"], 1, "only the unpaid order: {ran}");
    dev.wait_for_mail(3, |m| {
        m["subject"].as_str().unwrap_or("").starts_with("Reminder:")
    })
    .await
    .unwrap();
    assert_eq!(texts(&dev).await.len(), 1, "no text after payment");
    let _ = other;
}
