//! Translates `GET /licenses/revoked.json` and `GET /licenses/{key}/status`.

use lambda_http::http::{HeaderValue, StatusCode};
use shared::adapters::system::SystemClock;
use shared::app::licenses::{license_status, revocation_list, LicenseQueryError};
use shared::http::{json, Problem};
use shared::ports::{Clock, LicenseSigner, OrderStore};

pub async fn answer<S: OrderStore, K: LicenseSigner>(
    orders: &S,
    keys: &K,
    path: &str,
) -> http::Response<String> {
    let now = SystemClock.now();
    let result = if path == "revoked.json" {
        revocation_list(orders, keys, now).await.map(|list| {
            let mut response = json(StatusCode::OK, &list);
            // Software may fetch this often; a few minutes' staleness is fine.
            response.headers_mut().insert(
                "cache-control",
                HeaderValue::from_static("public, max-age=300"),
            );
            response
        })
    } else if let Some(key) = path.strip_suffix("/status") {
        license_status(orders, keys, key, now)
            .await
            .map(|status| json(StatusCode::OK, &status))
    } else {
        return Problem::not_found("No such route.").into_response();
    };
    result.unwrap_or_else(|e| match e {
        LicenseQueryError::NoKeys => Problem::not_found(e.to_string()).into_response(),
        LicenseQueryError::Invalid(e) => {
            Problem::not_found(format!("No such licence: {e}.")).into_response()
        }
        LicenseQueryError::Store(e) => {
            tracing::error!(error = %e, "licence lookup failed");
            Problem::internal().into_response()
        }
    })
}
