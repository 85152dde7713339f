//! Translates `GET /downloads/{token}`: a redirect to the file, or a problem saying why not.

use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::adapters::system::SystemClock;
use shared::app::downloads::{open_download, DownloadError};
use shared::app::pages::for_browser;
use shared::app::render::Templates;
use shared::config::Store;
use shared::http::Problem;
use shared::ports::{Clock, FileLinks, OrderStore};

pub struct State<S, L, C = SystemClock> {
    pub store: Store,
    /// For the pages a browser gets when a link no longer works.
    pub templates: Templates,
    pub orders: S,
    pub links: L,
    pub clock: C,
}

pub async fn handle<S: OrderStore, L: FileLinks, C: Clock>(
    state: &State<S, L, C>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let response = match request.uri().path().strip_prefix("/downloads/") {
        Some(token) if request.method() == http::Method::GET => download(state, token).await,
        Some(_) => Problem::method_not_allowed("Use GET.").into_response(),
        None => Problem::not_found("No such route.").into_response(),
    };
    let response = for_browser(&state.store, &state.templates, request.headers(), response);
    Ok(response.map(Body::from))
}

async fn download<S: OrderStore, L: FileLinks, C: Clock>(
    state: &State<S, L, C>,
    token: &str,
) -> http::Response<String> {
    match open_download(
        &state.store,
        &state.orders,
        &state.links,
        &state.clock,
        token,
    )
    .await
    {
        Ok(download) => {
            let mut response = http::Response::new(String::new());
            *response.status_mut() = StatusCode::FOUND;
            let headers = response.headers_mut();
            if let Ok(location) = HeaderValue::from_str(&download.url) {
                headers.insert(header::LOCATION, location);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            headers.insert(
                "x-downloads-remaining",
                HeaderValue::from(download.remaining),
            );
            response
        }
        Err(e) => problem(e).into_response(),
    }
}

fn problem(error: DownloadError) -> Problem {
    let gone = |slug, title| Problem::new(StatusCode::GONE, slug, title, error.to_string());
    match &error {
        DownloadError::NotFound => Problem::not_found(error.to_string()),
        DownloadError::Expired => gone("download-expired", "Download link expired"),
        DownloadError::Exhausted => gone("download-limit", "Download limit reached"),
        DownloadError::Withdrawn => gone("download-withdrawn", "File no longer offered"),
        DownloadError::Store(e) => {
            tracing::error!(error = %e, "download lookup failed");
            Problem::internal()
        }
        DownloadError::Link(e) => {
            tracing::error!(error = %e, "no presigned link");
            Problem::internal()
        }
    }
}
