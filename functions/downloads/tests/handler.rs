//! The downloads handler on the embedded store with a clock the test moves: a link counts
//! down to its limit, stops at its expiry, and says why with a problem.

use downloads::{handle, State};
use lambda_http::{Body, Request};
use serde_json::Value;
use shared::adapters::embedded::EmbeddedStore;
use shared::config::Store;
use shared::domain::{DownloadToken, OrderId, Sku};
use shared::ports::{BoxError, Clock, DownloadGrant, FileLinks, OrderStore};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

const STORE: &str = r#"
[store]
name = "Test Store"
currency = "EUR"
seller_email = "seller@example.com"
sender = "orders@example.com"

[payments]
gateway = "testpay"

[products.guide]
name = "Guide"
price = "9.00"
fulfillment = { kind = "download", bucket = "shop-files", key = "guides/the guide.pdf", max_downloads = 2 }
"#;

const NOW: i64 = 1_800_000_000;

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Links that say what they were asked for.
struct EchoLinks;

impl FileLinks for EchoLinks {
    async fn link(
        &self,
        bucket: &str,
        key: &str,
        filename: &str,
        seconds: u64,
    ) -> Result<String, BoxError> {
        Ok(format!(
            "https://files.example/{bucket}/{key}?name={filename}&ttl={seconds}"
        ))
    }
}

async fn state_with_link(sku: &str) -> (State<EmbeddedStore, EchoLinks, TestClock>, String) {
    let store = Store::parse(STORE, Path::new("store.toml")).unwrap();
    let state = State {
        templates: shared::app::render::Templates::new(&store).unwrap(),
        store,
        orders: EmbeddedStore::in_memory(),
        links: EchoLinks,
        clock: TestClock(AtomicI64::new(NOW)),
    };
    let token = DownloadToken::from_bytes([7; 16]);
    let grant = DownloadGrant {
        order_id: OrderId::from_random([1; 10]),
        line: 0,
        sku: Sku::parse(sku).unwrap(),
        expires_at: NOW + 7 * 86_400,
        max_downloads: 2,
    };
    state
        .orders
        .grant_download(&token.hash(), &grant)
        .await
        .unwrap();
    (state, token.as_str().to_owned())
}

async fn get(
    state: &State<EmbeddedStore, EchoLinks, TestClock>,
    method: &str,
    path: &str,
) -> (u16, Option<String>, Value) {
    let request: Request = http::Request::builder()
        .method(method)
        .uri(format!("https://shop.example.com{path}"))
        .body(Body::Empty)
        .unwrap();
    let response = handle(state, request).await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    if status >= 400 {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, location, body)
}

#[tokio::test]
async fn a_link_redirects_to_a_short_lived_file_link_until_its_limit() {
    let (state, token) = state_with_link("guide").await;
    let path = format!("/downloads/{token}");
    for _ in 0..2 {
        let (status, location, _) = get(&state, "GET", &path).await;
        assert_eq!(status, 302);
        assert_eq!(
            location.unwrap(),
            "https://files.example/shop-files/guides/the guide.pdf?name=the guide.pdf&ttl=300"
        );
    }
    let (status, location, problem) = get(&state, "GET", &path).await;
    assert_eq!((status, location), (410, None));
    assert_eq!(
        problem["type"],
        "https://nightshift.dev/problems/download-limit"
    );
}

#[tokio::test]
async fn a_link_stops_at_its_expiry_without_counting() {
    let (state, token) = state_with_link("guide").await;
    let path = format!("/downloads/{token}");
    state.clock.0.store(NOW + 7 * 86_400, Ordering::SeqCst);
    let (status, _, problem) = get(&state, "GET", &path).await;
    assert_eq!(status, 410);
    assert_eq!(
        problem["type"],
        "https://nightshift.dev/problems/download-expired"
    );
    // A second before expiry it still worked, and the refused attempt used up nothing.
    state.clock.0.store(NOW + 7 * 86_400 - 1, Ordering::SeqCst);
    assert_eq!(get(&state, "GET", &path).await.0, 302);
    assert_eq!(get(&state, "GET", &path).await.0, 302);
    assert_eq!(get(&state, "GET", &path).await.0, 410);
}

#[tokio::test]
async fn unknown_malformed_and_withdrawn_links_and_other_methods_are_refused() {
    let (state, token) = state_with_link("guide").await;
    let other = DownloadToken::from_bytes([8; 16]);
    assert_eq!(
        get(&state, "GET", &format!("/downloads/{}", other.as_str()))
            .await
            .0,
        404
    );
    assert_eq!(get(&state, "GET", "/downloads/not-a-token").await.0, 404);
    assert_eq!(get(&state, "GET", "/downloads/").await.0, 404);
    assert_eq!(
        get(&state, "POST", &format!("/downloads/{token}")).await.0,
        405
    );
    // POST took nothing: both downloads remain.
    assert_eq!(
        get(&state, "GET", &format!("/downloads/{token}")).await.0,
        302
    );
    assert_eq!(
        get(&state, "GET", &format!("/downloads/{token}")).await.0,
        302
    );

    // A product the store no longer sells as a download.
    let (state, token) = state_with_link("gone").await;
    let (status, _, problem) = get(&state, "GET", &format!("/downloads/{token}")).await;
    assert_eq!(status, 410);
    assert_eq!(
        problem["type"],
        "https://nightshift.dev/problems/download-withdrawn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_downloads_never_pass_the_limit() {
    let (state, token) = state_with_link("guide").await;
    let path = format!("/downloads/{token}");
    let attempts = (0..20).map(|_| get(&state, "GET", &path));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, _, _)| status)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 302).count(), 2);
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 18);
}
