//! Downloads end to end on the dev stack: a paid e-book gets a link on its page and in its
//! mail; the link redirects to a short-lived signed file link that serves the file, and stops
//! after its limit. (Expiry runs under a test clock in the downloads function's own tests and
//! in the store conformance suite.)

use serde_json::Value;
use tests::{decoded, recipients, repo_root, sample_store, DevStack, APPROVE};

const SKU: &str = "rust-book-pdf";

async fn bought_link(dev: &DevStack, name: &str) -> (String, Value, String) {
    let token = dev.buy(&[(SKU, 1)], name, APPROVE).await.unwrap();
    let order = dev
        .wait_for_order(&token, |o| o["status"] == "fulfilled")
        .await
        .unwrap();
    let url = order["lines"][0]["access"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    (url, order, token)
}

async fn follow(dev: &DevStack, url: &str) -> (u16, Option<String>) {
    let response = dev.http.get(url).send().await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), location)
}

#[tokio::test]
async fn an_e_book_link_serves_the_file_five_times_then_stops() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let (url, order, _) = bought_link(&dev, "Ann").await;
    let access = &order["lines"][0]["access"];
    assert_eq!(access["kind"], "download");
    assert_eq!(access["filename"], "rust-field-guide.pdf");
    assert_eq!(access["max_downloads"], 5);
    let in_seven_days = tests::now() + 7 * 86_400;
    let expires_at = access["expires_at"].as_i64().unwrap();
    assert!((in_seven_days - 60..=in_seven_days).contains(&expires_at));
    assert!(url.starts_with(&dev.url("/downloads/")), "{url}");

    // The buyer's mail carries the same link.
    let mails = dev
        .wait_for_mail(1, |m| recipients(m, "to") == ["ann@example.com"])
        .await
        .unwrap();
    assert!(mails[0]["text"].as_str().unwrap().contains(&url));
    assert!(decoded(mails[0]["html"].as_str().unwrap()).contains(&url));

    let file = std::fs::read(repo_root().join("downloads/books/rust-field-guide.pdf")).unwrap();
    for _ in 0..5 {
        let (status, location) = follow(&dev, &url).await;
        assert_eq!(status, 302);
        let location = location.unwrap();
        assert!(location.starts_with(&dev.url("/dev/files?")), "{location}");
        let response = dev.http.get(&location).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename=\"rust-field-guide.pdf\""));
        assert_eq!(response.bytes().await.unwrap().to_vec(), file);
    }
    let response = dev.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://nightshift.dev/problems/download-limit"
    );
}

#[tokio::test]
async fn file_links_are_signed_and_unknown_download_links_are_not_found() {
    let dev = DevStack::start(&sample_store()).unwrap();
    let (url, _, token) = bought_link(&dev, "Ann").await;
    // The order page shows the link.
    let (_, page) = dev.order_page(&token).await.unwrap();
    assert!(
        decoded(&page).contains(&format!("href=\"{url}\"")),
        "{page}"
    );

    let (_, location) = follow(&dev, &url).await;
    let location = location.unwrap();
    // Another file through the same signature, or a changed signature: refused.
    let other = location.replace("rust-field-guide.pdf", "secret.pdf");
    assert_eq!(follow(&dev, &other).await.0, 403);
    let forged = format!("{}0", location);
    assert_eq!(follow(&dev, &forged).await.0, 403);
    // A link that was never issued.
    let unknown = dev.url("/downloads/AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(follow(&dev, &unknown).await.0, 404);
}
