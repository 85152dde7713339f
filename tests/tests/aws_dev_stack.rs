//! The whole purchase on the AWS adapters: `nightshift dev --aws --bootstrap` against moto,
//! with the buyer's mail read back from SES in moto.

use serde_json::Value;
use std::time::{Duration, Instant};
use tests::moto::{moto, unique};
use tests::{decoded, sample_store, DevStack, APPROVE, DECLINE};

/// The mails moto's SES has accepted.
async fn ses_messages(endpoint: &str) -> Vec<Value> {
    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn addressed_to(message: &Value, address: &str) -> bool {
    message["destinations"]["ToAddresses"]
        .as_array()
        .is_some_and(|to| to.iter().any(|a| a == address))
}

async fn wait_for_ses(
    endpoint: &str,
    count: usize,
    matches: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found: Vec<Value> = ses_messages(endpoint)
            .await
            .into_iter()
            .filter(&matches)
            .collect();
        if found.len() >= count || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return ses_messages(endpoint)
                .await
                .into_iter()
                .filter(&matches)
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `nightshift orders …` against the stack's table and queues in moto; it must succeed.
async fn orders_on_aws(dev: &DevStack, endpoint: &str, prefix: &str, args: &[&str]) {
    let sqs = aws_sdk_sqs::Client::new(&tests::moto::sdk_config(endpoint).await);
    let mut urls = Vec::new();
    for name in ["fulfillment", "mail"] {
        let out = sqs
            .get_queue_url()
            .queue_name(format!("{prefix}-{name}"))
            .send()
            .await
            .unwrap();
        urls.push(out.queue_url.unwrap());
    }
    let out = std::process::Command::new(tests::nightshift_binary())
        .arg("orders")
        .args(args)
        .args(["--aws", "--aws-endpoint", endpoint, "--table", prefix])
        .args([
            "--fulfillment-queue-url",
            &urls[0],
            "--mail-queue-url",
            &urls[1],
        ])
        .arg("--config")
        .arg(dev.dir.path().join("store.toml"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks out as `buyer`, pays with the approving card, and waits for the order's status.
async fn bought(
    dev: &DevStack,
    items: &[(&str, u32)],
    buyer: &str,
    status: &str,
) -> (String, Value) {
    let token = dev
        .checkout_form(items, buyer, "Ann")
        .await
        .unwrap()
        .unwrap();
    dev.pay(&token, APPROVE).await.unwrap();
    let order = dev
        .wait_for_order(&token, |o| o["status"] == status)
        .await
        .unwrap();
    (token, order)
}

#[tokio::test]
async fn a_purchase_on_the_aws_adapters_enrols_the_buyer_and_mails_through_ses() {
    let endpoint = &moto().url;
    // A buyer address of its own, so other tests' mail in the same moto does not count.
    let prefix = unique("purchase");
    let buyer = format!("{prefix}@example.com");
    let dev = DevStack::start_on_aws(&sample_store(), endpoint, &prefix).unwrap();

    let token = dev
        .checkout_form(&[("rust-course", 1)], &buyer, "Ann")
        .await
        .unwrap()
        .unwrap();
    dev.pay(&token, DECLINE).await.unwrap();
    assert_eq!(dev.order_json(&token).await.unwrap()["status"], "declined");
    dev.pay(&token, APPROVE).await.unwrap();
    let order = dev
        .wait_for_order(&token, |o| o["state"] == "approved")
        .await
        .unwrap();
    assert_eq!(order["status"], "fulfilled");
    let password = order["lines"][0]["access"]["password"]
        .as_str()
        .unwrap()
        .to_owned();

    let to_buyer = wait_for_ses(endpoint, 1, |m| addressed_to(m, &buyer)).await;
    assert_eq!(to_buyer.len(), 1, "one buyer mail");
    assert_eq!(to_buyer[0]["subject"], "Your access to Rust from Zero");
    assert_eq!(
        to_buyer[0]["source"],
        "Nightshift Academy <orders@example.com>"
    );
    assert!(decoded(to_buyer[0]["body"].as_str().unwrap()).contains(&password));
    let copies = wait_for_ses(endpoint, 1, |m| {
        addressed_to(m, "seller@example.com")
            && m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("[Copy] Order ") && s.contains("Rust from Zero"))
    })
    .await;
    assert!(!copies.is_empty(), "the seller's copy went through SES");
}

#[tokio::test]
async fn the_five_seats_sell_exactly_five_times_on_the_aws_adapters() {
    let prefix = unique("seats");
    let dev = DevStack::start_on_aws(&sample_store(), &moto().url, &prefix).unwrap();
    let attempts = (0..20).map(|i| {
        let dev = &dev;
        async move {
            dev.checkout_form(
                &[("mentoring-cohort", 1)],
                &format!("b{i}@example.com"),
                "B",
            )
            .await
            .unwrap()
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|(status, _)| *status == 409));
}

#[tokio::test]
async fn a_bank_transfer_confirmed_in_the_aws_table_is_delivered() {
    let endpoint = &moto().url;
    let prefix = unique("transfer");
    let buyer = format!("{prefix}@example.com");
    let dev = DevStack::start_on_aws(&sample_store(), endpoint, &prefix).unwrap();
    let token = dev
        .checkout_by_transfer("rust-course", &buyer)
        .await
        .unwrap();
    let order = dev.order_json(&token).await.unwrap();
    assert_eq!(order["status"], "awaiting_transfer");
    let details = wait_for_ses(endpoint, 1, |m| addressed_to(m, &buyer)).await;
    assert_eq!(details.len(), 1);
    assert!(details[0]["subject"]
        .as_str()
        .unwrap()
        .starts_with("Bank details"));

    orders_on_aws(
        &dev,
        endpoint,
        &prefix,
        &["confirm-payment", order["order_id"].as_str().unwrap()],
    )
    .await;
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
    assert!(order["lines"][0]["access"]["password"].is_string());
    let mails = wait_for_ses(endpoint, 2, |m| addressed_to(m, &buyer)).await;
    assert_eq!(mails.len(), 2, "the bank details, then the access");
}

#[tokio::test]
async fn a_licence_key_bought_on_the_aws_adapters_verifies_and_has_a_status() {
    let endpoint = &moto().url;
    let prefix = unique("licence");
    let buyer = format!("{prefix}@example.com");
    let dev = DevStack::start_on_aws(&sample_store(), endpoint, &prefix).unwrap();
    let (_, order) = bought(&dev, &[("ferrite-pro", 2)], &buyer, "fulfilled").await;
    let key = order["lines"][0]["access"]["key"].as_str().unwrap();
    assert_eq!(order["lines"][0]["access"]["seats"], 2);

    let public = dev.license_public_key().unwrap();
    let license = shared::license::verify(&public, key).unwrap();
    assert_eq!(license.order_id, order["order_id"].as_str().unwrap());
    assert!(license.is_for(&buyer));

    let status: Value = dev
        .http
        .get(dev.url(&format!("/licenses/{key}/status")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "valid", "{status}");
    let to_buyer = wait_for_ses(endpoint, 1, |m| addressed_to(m, &buyer)).await;
    assert!(decoded(to_buyer[0]["body"].as_str().unwrap()).contains(key));
}

#[tokio::test]
async fn an_e_book_bought_on_the_aws_adapters_downloads_from_s3_up_to_its_limit() {
    let endpoint = &moto().url;
    let prefix = unique("download");
    let buyer = format!("{prefix}@example.com");
    // A bucket of this test's own, created by `--bootstrap`.
    let bucket = format!("{prefix}-files");
    let store = sample_store().replace("example-store-downloads", &bucket);
    let dev = DevStack::start_on_aws(&store, endpoint, &prefix).unwrap();
    let file = b"%PDF-1.4 the field guide, from S3".to_vec();
    let put = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}/books/rust-field-guide.pdf"))
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    let (_, order) = bought(&dev, &[("rust-book-pdf", 1)], &buyer, "fulfilled").await;
    let url = order["lines"][0]["access"]["url"].as_str().unwrap();
    for _ in 0..5 {
        let response = dev.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 302);
        let location = response.headers()["location"].to_str().unwrap();
        // A SigV4 presigned GetObject on the emulator, valid for five minutes.
        assert!(
            location.starts_with(&format!("{endpoint}/{bucket}/books/rust-field-guide.pdf?")),
            "{location}"
        );
        assert!(location.contains("X-Amz-Signature=") && location.contains("X-Amz-Expires=300"));
        let fetched = reqwest::get(location).await.unwrap();
        assert_eq!(fetched.status(), 200);
        assert_eq!(fetched.bytes().await.unwrap().to_vec(), file);
    }
    let sixth = dev.http.get(url).send().await.unwrap();
    assert_eq!(sixth.status(), 410);
    let to_buyer = wait_for_ses(endpoint, 1, |m| addressed_to(m, &buyer)).await;
    assert!(decoded(to_buyer[0]["body"].as_str().unwrap()).contains(url));
}

#[tokio::test]
async fn a_book_shipped_and_delivered_in_the_aws_table_mails_the_tracking_link_through_ses() {
    let endpoint = &moto().url;
    let prefix = unique("ship");
    let buyer = format!("{prefix}@example.com");
    let dev = DevStack::start_on_aws(&sample_store(), endpoint, &prefix).unwrap();
    let (token, order) = bought(&dev, &[("rust-book", 1)], &buyer, "awaiting_shipment").await;
    assert_eq!(order["total"]["amount_minor"], 2990 + 490);
    let id = order["order_id"].as_str().unwrap().to_owned();
    orders_on_aws(
        &dev,
        endpoint,
        &prefix,
        &[
            "ship",
            &id,
            "--carrier",
            "ups",
            "--tracking",
            "1Z999AA10123456784",
        ],
    )
    .await;
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "shipped")
        .await
        .unwrap();
    let link = "https://www.ups.com/track?tracknum=1Z999AA10123456784";
    assert_eq!(order["shipping"]["tracking_url"], link);
    orders_on_aws(&dev, endpoint, &prefix, &["deliver", &id]).await;
    dev.wait_for_order(&token, |o| o["status"] == "delivered")
        .await
        .unwrap();
    let mails = wait_for_ses(endpoint, 3, |m| addressed_to(m, &buyer)).await;
    let subjects: Vec<&str> = mails
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(mails.len(), 3, "{subjects:?}");
    let shipped = mails
        .iter()
        .find(|m| m["subject"].as_str().unwrap().ends_with("is on its way"))
        .unwrap();
    assert!(decoded(shipped["body"].as_str().unwrap()).contains(link));
    assert!(subjects.iter().any(|s| s.ends_with("was delivered")));
}

#[tokio::test]
async fn a_seller_webhook_answering_500_is_tried_again_through_a_delayed_sqs_message() {
    use std::sync::{Arc, Mutex};
    let endpoint = &moto().url;
    let prefix = unique("hook");
    let buyer = format!("{prefix}@example.com");
    let seen = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let log = seen.clone();
    let hook = tests::fake_http::serve(move |request| {
        let mut log = log.lock().unwrap();
        let signature = request
            .headers
            .get("nightshift-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        log.push((signature, request.body.to_vec()));
        (if log.len() == 1 { 500 } else { 200 }, "{}".into())
    })
    .await;
    let store = format!(
        "{}\n[[webhooks]]\nurl = \"{hook}/orders\"\nsecret = \"warehouse\"\n",
        sample_store()
    );
    let dev = DevStack::start_on_aws(&store, endpoint, &prefix).unwrap();
    let token = dev
        .checkout_form(&[("rust-course", 1)], &buyer, "Ann")
        .await
        .unwrap()
        .unwrap();
    dev.pay(&token, APPROVE).await.unwrap();
    let started = Instant::now();
    while seen.lock().unwrap().len() < 2 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "the 500, then the retry");
    let secret = dev.secret("warehouse").unwrap();
    for (signature, body) in &seen {
        let t: i64 = signature
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(&tests::sign(&secret, t, body), signature);
        let order: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(order["order"]["email"], buyer.as_str());
    }
}
