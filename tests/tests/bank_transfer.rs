//! Bank transfer end to end: the buyer picks it at checkout, sees the bank details and a
//! payment reference on the page and in a mail; the seller confirms with
//! `nightshift orders confirm-payment` and the order is delivered.

use serde_json::Value;
use std::process::Command;
use tests::{decoded, nightshift_binary, recipients, sample_store, DevStack};

fn to_buyer(mail: &Value) -> bool {
    recipients(mail, "to") == ["ann@example.com"]
}

fn confirm(dev: &DevStack, order: &str) -> std::process::Output {
    Command::new(nightshift_binary())
        .args([
            "orders",
            "confirm-payment",
            order,
            "--dev-url",
            &dev.base,
            "--config",
        ])
        .arg(dev.dir.path().join("store.toml"))
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_transfer_order_shows_the_bank_details_and_is_delivered_once_the_seller_confirms() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let buy = decoded(
        &dev.http
            .get(dev.url("/buy/rust-course"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        buy.contains("value=\"bank_transfer\""),
        "the buy page offers bank transfer"
    );

    let token = dev
        .checkout_by_transfer("mentoring-cohort", "ann@example.com")
        .await
        .unwrap();
    let order = dev.order_json(&token).await.unwrap();
    assert_eq!(order["status"], "awaiting_transfer");
    let order_id = order["order_id"].as_str().unwrap().to_owned();

    let page = decoded(&dev.order_page(&token).await.unwrap().1);
    assert!(page.contains("DE89 3704 0044 0532 0130 00"));
    assert!(page.contains("Nightshift Academy Ltd"));
    let reference = page
        .split("<strong>")
        .filter_map(|s| s.split("</strong>").next())
        .find(|s| s.starts_with("NS-"))
        .expect("a payment reference on the page")
        .to_owned();
    assert_eq!(reference.len(), "NS-XXXX-XXXX-XXXX-XXXX".len());

    let mails = dev.wait_for_mail(1, to_buyer).await.unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0]["subject"]
        .as_str()
        .unwrap()
        .starts_with("Bank details"));
    let text = mails[0]["text"].as_str().unwrap();
    assert!(text.contains(&reference) && text.contains("DE89 3704 0044 0532 0130 00"));
    assert!(text.contains("€490.00"), "{text}");
    // The seat is held while the transfer is on its way.
    assert!(dev.order_json(&token).await.unwrap()["lines"][0]["access"].is_null());

    // The seller confirms by the reference the transfer carried.
    let out = confirm(&dev, &reference.to_lowercase());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("payment confirmed"));
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
    assert!(order["lines"][0]["access"]["password"].is_string());
    let access = dev
        .wait_for_mail(1, |m| {
            to_buyer(m) && !m["subject"].as_str().unwrap().starts_with("Bank details")
        })
        .await
        .unwrap();
    assert_eq!(access.len(), 1);

    // Confirming again changes nothing.
    let again = confirm(&dev, &order_id);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("confirmed before"));
}

#[tokio::test]
async fn only_transfer_orders_can_be_confirmed_and_bad_ids_are_refused() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let card = dev
        .checkout_form(&[("rust-course", 1)], "ann@example.com", "Ann")
        .await
        .unwrap()
        .unwrap();
    let card_id = dev.order_json(&card).await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = confirm(&dev, &card_id);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not paid by bank transfer"));
    assert_eq!(
        dev.order_json(&card).await.unwrap()["status"],
        "pending_payment"
    );

    let out = confirm(&dev, "ord_00000000000000000000");
    assert!(!out.status.success());
    let out = confirm(&dev, "hello");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither an order id"));

    // A store without bank details refuses the choice with a problem.
    let no_bank = sample_store().replace("[payments.bank_transfer]", "[unused]");
    let no_bank = no_bank.split("[unused]").next().unwrap().to_owned()
        + &sample_store()[sample_store().find("\n[shipping]").unwrap()..];
    let plain = DevStack::start(&no_bank).unwrap();
    let response = plain
        .http
        .post(plain.url("/checkout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("sku=rust-course&quantity=1&email=ann%40example.com&name=Ann&payment_method=bank_transfer")
        .send()
        .await
        .unwrap();
    // A form is answered with the buy page again, saying why.
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("does not take bank transfers"), "{page}");
}

#[tokio::test]
async fn a_confirmation_while_the_dev_stack_is_stopped_is_delivered_when_it_starts() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let token = dev
        .checkout_by_transfer("rust-course", "ann@example.com")
        .await
        .unwrap();
    let order_id = dev.order_json(&token).await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = dev.dir.path().join("data");
    let config = dev.dir.path().join("store.toml");
    let dev = dev.stopped();
    let out = Command::new(nightshift_binary())
        .args([
            "orders",
            "confirm-payment",
            &order_id,
            "--dev-url",
            "http://127.0.0.1:9",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev = dev.restart().unwrap();
    dev.wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
}
