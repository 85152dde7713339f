//! Physical items end to end on the dev stack: the checkout asks for the address and adds
//! shipping from store.toml's rates; the seller's packing mail carries the address;
//! `nightshift orders ship` and `deliver` move the order on, mail the buyer (tracking link,
//! then delivery) once each, and the order page shows each step.

use serde_json::Value;
use std::process::{Command, Output};
use tests::{decoded, nightshift_binary, recipients, sample_store, DevStack, ADDRESS, APPROVE};

fn orders(dev: &DevStack, args: &[&str]) -> Output {
    Command::new(nightshift_binary())
        .arg("orders")
        .args(args)
        .args(["--dev-url", &dev.base, "--config"])
        .arg(dev.dir.path().join("store.toml"))
        .output()
        .unwrap()
}

fn to_buyer(mail: &Value) -> bool {
    recipients(mail, "to") == ["ann@example.com"]
}

fn subject_starts(mail: &Value, prefix: &str) -> bool {
    mail["subject"].as_str().unwrap().starts_with(prefix)
}

async fn page(dev: &DevStack, token: &str) -> String {
    decoded(&dev.order_page(token).await.unwrap().1)
}

#[tokio::test]
async fn a_book_is_priced_with_shipping_packed_shipped_with_tracking_and_delivered() {
    let dev = DevStack::start(&sample_store()).unwrap();
    // The product page asks for the address.
    let buy_page = dev
        .http
        .get(dev.url("/buy/rust-book"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(buy_page.contains("name=\"address_line1\"") && buy_page.contains("Shipping address"));

    let token = dev
        .buy(&[("rust-book", 2), ("rust-course", 1)], "Ann", APPROVE)
        .await
        .unwrap();
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "awaiting_shipment")
        .await
        .unwrap();
    // 2 × 29.90 + 49.00, and 1300 g to Germany: 4.90.
    assert_eq!(order["total"]["amount_minor"], 2 * 2990 + 4900 + 490);
    assert_eq!(order["shipping"]["price"], "€4.90");
    assert_eq!(order["shipping"]["step"], "awaiting_shipment");
    assert_eq!(
        order["shipping"]["address"],
        serde_json::json!(["Ann Lee", "Hauptstr. 1", "10115 Berlin", "DE"])
    );
    let id = order["order_id"].as_str().unwrap().to_owned();

    // One mail for the buyer covers the course and the book; the seller gets the packing list.
    let buyer = dev.wait_for_mail(1, to_buyer).await.unwrap();
    let text = buyer[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Username:") && text.contains("We will ship this item"),
        "{text}"
    );
    assert!(
        text.contains("Shipping: €4.90, to Ann Lee, Hauptstr. 1, 10115 Berlin, DE"),
        "{text}"
    );
    let packing = dev
        .wait_for_mail(1, |m| subject_starts(m, "Ship order"))
        .await
        .unwrap();
    let packing = packing[0]["text"].as_str().unwrap();
    assert!(
        packing.contains("2 x The Rust Field Guide (paperback)"),
        "{packing}"
    );
    assert!(
        packing.contains("Ann Lee") && packing.contains("10115 Berlin"),
        "{packing}"
    );
    assert!(
        !packing.contains("Rust from Zero"),
        "only the physical items: {packing}"
    );
    assert!(page(&dev, &token).await.contains("we will ship it soon"));

    // Shipping: the buyer gets the carrier's tracking link, once.
    let out = orders(
        &dev,
        &[
            "ship",
            &id,
            "--carrier",
            "dhl",
            "--tracking",
            "00340434161094042557",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = "https://www.dhl.de/en/privatkunden/pakete-empfangen/verfolgen.html?piececode=00340434161094042557";
    assert!(stdout.contains(link), "{stdout}");
    let order = dev.order_json(&token).await.unwrap();
    assert_eq!(order["status"], "shipped");
    assert_eq!(order["shipping"]["tracking_url"], link);
    let shipped = dev
        .wait_for_mail(1, |m| to_buyer(m) && subject_starts(m, "Your order from"))
        .await
        .unwrap();
    let on_its_way: Vec<&Value> = shipped
        .iter()
        .filter(|m| m["subject"].as_str().unwrap().ends_with("is on its way"))
        .collect();
    assert_eq!(on_its_way.len(), 1);
    assert!(on_its_way[0]["text"].as_str().unwrap().contains(link));
    assert!(decoded(on_its_way[0]["html"].as_str().unwrap()).contains(&format!("href=\"{link}\"")));
    assert!(page(&dev, &token)
        .await
        .contains(&format!("<a href=\"{link}\">track your parcel</a>")));
    // The same command again is a no-op; another parcel is refused.
    assert_eq!(
        orders(
            &dev,
            &[
                "ship",
                &id,
                "--carrier",
                "dhl",
                "--tracking",
                "00340434161094042557"
            ]
        )
        .status
        .code(),
        Some(0)
    );
    let other = orders(
        &dev,
        &["ship", &id, "--carrier", "dhl", "--tracking", "123"],
    );
    assert_eq!(other.status.code(), Some(1));
    let unknown = orders(
        &dev,
        &["ship", &id, "--carrier", "pigeon", "--tracking", "1"],
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("dhl, ups"));

    // Delivered: the last step, and its own mail.
    let out = orders(&dev, &["deliver", &id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let order = dev.order_json(&token).await.unwrap();
    assert_eq!(order["status"], "delivered");
    assert_eq!(order["shipping"]["step"], "delivered");
    let delivered = dev
        .wait_for_mail(1, |m| {
            to_buyer(m)
                && subject_starts(m, "Your order from")
                && m["subject"].as_str().unwrap().ends_with("was delivered")
        })
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    let all = dev.wait_for_mail(3, to_buyer).await.unwrap();
    assert_eq!(all.len(), 3, "order, shipped, delivered: each once");
}

#[tokio::test]
async fn a_physical_order_without_an_address_or_beyond_every_rate_is_refused_and_reserves_nothing()
{
    let dev = DevStack::start(&sample_store()).unwrap();
    let refused = dev
        .checkout_form_with(&[("rust-book", 1)], "ann@example.com", "Ann", &[])
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.0, 400);
    assert!(refused.1.contains("shipping address"), "{}", refused.1);
    let mut address = ADDRESS.to_vec();
    address.retain(|(field, _)| *field != "city");
    let refused = dev
        .checkout_form_with(&[("rust-book", 1)], "ann@example.com", "Ann", &address)
        .await
        .unwrap()
        .unwrap_err();
    // A form is answered with the buy page again, the message beside the field.
    assert!(refused.1.contains("Enter the city."), "{}", refused.1);
    // 100 books (65 kg) to the United States: over the 2 kg rate for the rest of the world.
    address = ADDRESS.to_vec();
    address.retain(|(field, _)| *field != "country");
    address.push(("country", "us"));
    let refused = dev
        .checkout_form_with(&[("rust-book", 100)], "ann@example.com", "Ann", &address)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.0, 422);
    assert!(
        refused
            .1
            .contains("No shipping to United States takes a parcel this heavy"),
        "{}",
        refused.1
    );
    // One book to the United States: the `*` rate.
    let token = dev
        .checkout_form_with(&[("rust-book", 1)], "ann@example.com", "Ann", &address)
        .await
        .unwrap()
        .unwrap();
    let order = dev.order_json(&token).await.unwrap();
    assert_eq!(order["total"]["amount_minor"], 2990 + 1490);
    assert_eq!(order["shipping"]["address"][3], "US");
}
