//! One order of every kind (a course, a licence key, an e-book and a paperback) on the dev
//! stack: grouped per order it reads as one mail with a section per line; grouped per item,
//! each line gets its own mail.

use serde_json::Value;
use tests::{recipients, sample_store, DevStack, APPROVE};

const EVERYTHING: &[(&str, u32)] = &[
    ("rust-course", 1),
    ("ferrite-pro", 1),
    ("rust-book-pdf", 1),
    ("rust-book", 1),
];

fn to_buyer(mail: &Value) -> bool {
    recipients(mail, "to") == ["ann@example.com"]
}

async fn bought(dev: &DevStack) -> Value {
    let token = dev.buy(EVERYTHING, "Ann", APPROVE).await.unwrap();
    dev.wait_for_order(&token, |o| o["status"] == "awaiting_shipment")
        .await
        .unwrap()
}

#[tokio::test]
async fn grouped_per_order_a_mixed_order_is_one_mail_with_every_section() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let order = bought(&dev).await;
    let access = |sku: &str| {
        order["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["sku"] == sku)
            .unwrap()["access"]
            .clone()
    };
    let (course, key, download) = (
        access("rust-course"),
        access("ferrite-pro"),
        access("rust-book-pdf"),
    );
    let mails = dev.wait_for_mail(1, to_buyer).await.unwrap();
    assert_eq!(mails.len(), 1, "one mail for the whole order");
    let text = mails[0]["text"].as_str().unwrap();
    for expected in [
        "Rust from Zero",
        course["password"].as_str().unwrap(),
        "Ferrite Pro (desktop licence)",
        key["key"].as_str().unwrap(),
        "The Rust Field Guide (PDF)",
        download["url"].as_str().unwrap(),
        "The link works 5 times",
        "The Rust Field Guide (paperback)",
        "We will ship this item to you soon.",
        "Shipping: €4.90, to Ann Lee, Hauptstr. 1, 10115 Berlin, DE",
        "Total paid: €181.80",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // The seller: a copy of that mail, and the packing list for the paperback alone.
    let seller = dev
        .wait_for_mail(2, |m| recipients(m, "to") == ["seller@example.com"])
        .await
        .unwrap();
    assert_eq!(seller.len(), 2);
}

#[tokio::test]
async fn grouped_per_item_each_line_of_a_mixed_order_gets_its_own_mail() {
    let store = sample_store().replace("grouping = \"order\"", "grouping = \"item\"");
    let dev = DevStack::start(&store).unwrap();
    bought(&dev).await;
    let mails = dev.wait_for_mail(4, to_buyer).await.unwrap();
    assert_eq!(mails.len(), 4);
    let subjects: Vec<&str> = mails
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert!(
        subjects.contains(&"Your access to Rust from Zero"),
        "{subjects:?}"
    );
    for (name, section) in [
        ("Ferrite Pro", "Licence key"),
        ("(PDF)", "Download rust-field-guide.pdf"),
        ("(paperback)", "We will ship this item"),
    ] {
        let mail = mails
            .iter()
            .find(|m| m["text"].as_str().unwrap().contains(name))
            .unwrap_or_else(|| panic!("no mail for {name}"));
        assert!(mail["text"].as_str().unwrap().contains(section));
    }
}
