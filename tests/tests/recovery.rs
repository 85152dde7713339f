//! Abandoned checkout recovery on the dev stack under its test clock: one mail to a buyer
//! who asked for it, a link back to payment for the same cart, and an unsubscribe link that
//! holds for every later reminder.

use serde_json::Value;
use tests::{recipients, sample_store, DevStack};

/// Checks out one course by card through the form, ticking "Remind me" when asked; gives the
/// order token.
async fn abandon(dev: &DevStack, email: &str, remind: bool) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("sku", "rust-course")
        .append_pair("quantity", "1")
        .append_pair("email", email)
        .append_pair("name", "Ann");
    if remind {
        form.append_pair("remind_me", "yes");
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
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    dev.token_at(&location).unwrap()
}

fn recovery_mails(mails: &[Value], to: &str) -> Vec<Value> {
    mails
        .iter()
        .filter(|m| {
            recipients(m, "to") == [to]
                && m["subject"]
                    .as_str()
                    .unwrap_or("")
                    .contains("is waiting for you")
        })
        .cloned()
        .collect()
}

fn link(mail: &Value, path: &str) -> String {
    let text = mail["text"].as_str().unwrap();
    let start = text
        .find(path)
        .unwrap_or_else(|| panic!("no {path} in {text}"));
    let from = text[..start].rfind("http").unwrap();
    text[from..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn one_recovery_mail_brings_the_buyer_back_to_the_same_cart_and_unsubscribing_holds() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = abandon(&dev, "ann@example.com", true).await;
    let _unticked = abandon(&dev, "bob@example.com", false).await;
    let paid = abandon(&dev, "cy@example.com", true).await;
    dev.pay(&paid, tests::APPROVE).await.unwrap();

    // An hour later (the orders expired after 30 minutes): one mail, to Ann only.
    let ran = dev.advance_clock(3600).await.unwrap();
    assert_eq!(ran["ran"]["recovery_mails"], 1, "{ran}");
    let mails = dev
        .wait_for_mail(1, |m| {
            m["subject"]
                .as_str()
                .unwrap_or("")
                .contains("is waiting for you")
        })
        .await
        .unwrap();
    assert_eq!(recovery_mails(&mails, "ann@example.com").len(), 1);
    assert!(recovery_mails(&mails, "bob@example.com").is_empty());
    assert!(recovery_mails(&mails, "cy@example.com").is_empty());
    let mail = &recovery_mails(&mails, "ann@example.com")[0];
    assert!(mail["html"].as_str().unwrap().contains("No more reminders"));
    assert_eq!(dev.order_json(&token).await.unwrap()["status"], "expired");

    // The link opens payment for a new order of the same cart; a second click, the same one.
    let recover = link(mail, "/recover/");
    let first = dev.http.get(&recover).send().await.unwrap();
    assert_eq!(first.status(), 303);
    let to = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.contains("/testpay/sessions/"), "{to}");
    let again = dev.http.get(&recover).send().await.unwrap();
    let again = again.headers()["location"].to_str().unwrap().to_owned();
    let new_order = dev.token_at(&to).unwrap();
    assert_eq!(dev.token_at(&again).unwrap(), new_order, "{again}");
    assert_ne!(new_order, token);
    let reopened = dev.order_json(&new_order).await.unwrap();
    assert_eq!(reopened["lines"][0]["sku"], "rust-course");
    assert_eq!(reopened["status"], "pending_payment");
    // A changed character is nobody's link.
    let tampered = format!("{}x", recover);
    assert_eq!(dev.http.get(&tampered).send().await.unwrap().status(), 404);

    // Unsubscribing: a page with one button; a tampered link changes nothing.
    let unsubscribe = link(mail, "/unsubscribe/");
    let bad = unsubscribe.replacen("/unsubscribe/", "/unsubscribe/A", 1);
    assert_eq!(dev.http.post(&bad).send().await.unwrap().status(), 404);
    let page = dev.http.get(&unsubscribe).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("<form method=\"post\">"));
    assert_eq!(
        dev.http.post(&unsubscribe).send().await.unwrap().status(),
        200
    );

    // Ann leaves another order unpaid: no second recovery mail.
    abandon(&dev, "ann@example.com", true).await;
    let ran = dev.advance_clock(3600).await.unwrap();
    assert_eq!(ran["ran"]["recovery_mails"], 0, "{ran}");
    let mails = dev.outbox().await.unwrap();
    assert_eq!(recovery_mails(&mails, "ann@example.com").len(), 1);
}
