//! The local HTTP server: turns each request into the `lambda_http::Request` API Gateway would
//! deliver and calls the same handler the function runs; logs one line per request.

use super::adapters::Adapters;
use super::{outbox, Stack};
use bytes_body::{full, Full};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use shared::http::Problem;
use std::sync::Arc;
use std::time::Instant;

/// Bodies larger than this are refused, as API Gateway would.
const MAX_BODY: usize = 1 << 20;

mod bytes_body {
    pub use http_body_util::Full;
    pub type Bytes = hyper::body::Bytes;

    pub fn full(body: impl Into<Bytes>) -> Full<Bytes> {
        Full::new(body.into())
    }
}

pub async fn serve<A: Adapters>(
    listener: tokio::net::TcpListener,
    stack: Arc<Stack<A>>,
) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let stack = stack.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let stack = stack.clone();
                async move { Ok::<_, std::convert::Infallible>(route_and_log(&stack, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route_and_log<A: Adapters>(
    stack: &Stack<A>,
    request: Request<Incoming>,
) -> Response<Full<bytes_body::Bytes>> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = loggable(request.uri().path());
    let response = route(stack, request).await;
    println!(
        "{method} {path} {} {:.1}ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// The path with order tokens, testpay sessions, download tokens and licence keys left out: logs never carry them.
fn loggable(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/orders/") {
        let suffix = rest.find(['.', '/']).map_or("", |i| &rest[i..]);
        format!("/orders/<token>{suffix}")
    } else if path.starts_with("/testpay/sessions/") {
        "/testpay/sessions/<session>".into()
    } else if path.starts_with("/seats/") {
        "/seats/<token>".into()
    } else if path.starts_with("/downloads/") {
        "/downloads/<token>".into()
    } else if path.starts_with("/licenses/") && path.ends_with("/status") {
        "/licenses/<key>/status".into()
    } else {
        path.chars().take(200).collect()
    }
}

async fn route<A: Adapters>(
    stack: &Stack<A>,
    request: Request<Incoming>,
) -> Response<Full<bytes_body::Bytes>> {
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let problem = Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request too large",
                "The body is over 1 MiB.",
            );
            return problem.into_response().map(full);
        }
    };
    let path = parts.uri.path().to_owned();
    let request = Request::from_parts(parts, lambda_http::Body::from(bytes.to_vec()));
    let method = request.method().clone();
    let lambda = |r: Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>| match r {
        Ok(response) => response.map(|b| full(b.to_vec())),
        Err(e) => {
            eprintln!("handler error: {e}");
            Problem::internal().into_response().map(full)
        }
    };
    match (&method, path.as_str()) {
        (&Method::POST, "/checkout") => lambda(checkout::handle(&stack.checkout, request).await),
        (&Method::GET, p) if p.starts_with("/buy/") || p.starts_with("/recover/") => {
            lambda(checkout::handle(&stack.checkout, request).await)
        }
        (_, p) if p.starts_with("/unsubscribe/") => {
            lambda(checkout::handle(&stack.checkout, request).await)
        }
        (_, p) if p.starts_with("/payments/") => {
            lambda(payment_callback::handle(&stack.payment_callback, request).await)
        }
        (_, p)
            if p.starts_with("/orders/")
                || p.starts_with("/testpay/sessions/")
                || p.starts_with("/seats/")
                || p.starts_with("/licenses/") =>
        {
            lambda(order_page::handle(&stack.order_page, request).await)
        }
        (_, p) if p.starts_with("/downloads/") => {
            lambda(downloads::handle(&stack.downloads, request).await)
        }
        (&Method::GET, "/dev/files") => {
            local_file(stack, request.uri().query().unwrap_or("")).await
        }
        (&Method::POST, p) if p.starts_with("/dev/orders/") && p.ends_with("/ship") => {
            let id = &p["/dev/orders/".len()..p.len() - "/ship".len()];
            ship(stack, id, request.body()).await.map(full)
        }
        (&Method::POST, p) if p.starts_with("/dev/orders/") && p.ends_with("/deliver") => {
            let id = &p["/dev/orders/".len()..p.len() - "/deliver".len()];
            deliver(stack, id).await.map(full)
        }
        (&Method::POST, p) if p.starts_with("/dev/orders/") && p.ends_with("/confirm-payment") => {
            let id = &p["/dev/orders/".len()..p.len() - "/confirm-payment".len()];
            confirm_payment(stack, id).await.map(full)
        }
        (&Method::POST, "/dev/clock") if stack.test_clock => {
            advance_clock(stack, request.body()).await.map(full)
        }
        (&Method::GET, "/dev/outbox") => outbox::page(stack).map(full),
        (&Method::GET, "/dev/outbox.json") => outbox::json(stack, request.uri().query()).map(full),
        (&Method::GET, "/dev/dead-letters.json") => outbox::dead_letters(stack).map(full),
        (&Method::GET, "/dev/sms") => outbox::texts(stack, false).map(full),
        (&Method::GET, "/dev/sms.json") => outbox::texts(stack, true).map(full),
        (&Method::GET, "/") => outbox::index(stack).map(full),
        // As on AWS, where the order-page function is the API's default route.
        _ => lambda(order_page::handle(&stack.order_page, request).await),
    }
}

/// `GET /dev/files?…`: the dev stack's stand-in for an S3 presigned URL.
async fn local_file<A: Adapters>(
    stack: &Stack<A>,
    query: &str,
) -> Response<Full<bytes_body::Bytes>> {
    use shared::adapters::files::{content_disposition, LocalFileError};
    use shared::ports::Clock;
    let Some(files) = &stack.files else {
        return Problem::not_found("Files come from S3 here.")
            .into_response()
            .map(full);
    };
    let now = shared::adapters::system::SystemClock.now();
    let (path, filename) = match files.open(query, now) {
        Ok(found) => found,
        Err(e @ LocalFileError::Expired) => {
            return Problem::new(
                StatusCode::FORBIDDEN,
                "link-expired",
                "Link expired",
                e.to_string(),
            )
            .into_response()
            .map(full)
        }
        Err(e) => {
            return Problem::new(
                StatusCode::FORBIDDEN,
                "bad-signature",
                "Bad link",
                e.to_string(),
            )
            .into_response()
            .map(full)
        }
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = Response::new(full(bytes));
            let headers = response.headers_mut();
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(value) = http::HeaderValue::from_str(&content_disposition(&filename)) {
                headers.insert(http::header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(e) => {
            eprintln!("download file {}: {e}", path.display());
            Problem::not_found(format!(
                "{} is not in the downloads folder {}.",
                path.strip_prefix(files.dir()).unwrap_or(&path).display(),
                files.dir().display()
            ))
            .into_response()
            .map(full)
        }
    }
}

/// `POST /dev/orders/{id}/ship` with `{"carrier","tracking"}`, for `nightshift orders ship`.
async fn ship<A: Adapters>(stack: &Stack<A>, id: &str, body: &[u8]) -> Response<String> {
    #[derive(serde::Deserialize)]
    struct Parcel {
        carrier: String,
        tracking: String,
    }
    let Ok(order_id) = shared::domain::OrderId::parse(id) else {
        return Problem::not_found("There is no such order.").into_response();
    };
    let Ok(parcel) = serde_json::from_slice::<Parcel>(body) else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            "Send {\"carrier\": …, \"tracking\": …}.",
        )
        .into_response();
    };
    let state = &stack.payment_callback;
    crate::orders::shipping::answer(
        shared::app::shipping::ship_order(
            &stack.store,
            &state.orders,
            &state.queue,
            &shared::adapters::system::SystemClock,
            &order_id,
            &parcel.carrier,
            &parcel.tracking,
        )
        .await,
    )
}

/// `POST /dev/orders/{id}/deliver`, for `nightshift orders deliver`.
async fn deliver<A: Adapters>(stack: &Stack<A>, id: &str) -> Response<String> {
    let Ok(order_id) = shared::domain::OrderId::parse(id) else {
        return Problem::not_found("There is no such order.").into_response();
    };
    let state = &stack.payment_callback;
    crate::orders::shipping::answer(
        shared::app::shipping::deliver_order(
            &stack.store,
            &state.orders,
            &state.queue,
            &shared::adapters::system::SystemClock,
            &order_id,
        )
        .await,
    )
}

/// `POST /dev/orders/{id}/confirm-payment`, for `nightshift orders confirm-payment` while the
/// stack runs (it holds the embedded store open).
async fn confirm_payment<A: Adapters>(stack: &Stack<A>, id: &str) -> Response<String> {
    use shared::app::payment::{confirm_transfer, Applied, ConfirmError};
    let Ok(order_id) = shared::domain::OrderId::parse(id) else {
        return Problem::not_found("There is no such order.").into_response();
    };
    let state = &stack.payment_callback;
    match confirm_transfer(
        &stack.store,
        &state.orders,
        &state.queue,
        &shared::adapters::system::SystemClock,
        &order_id,
    )
    .await
    {
        Ok((applied, order)) => shared::http::json(
            StatusCode::OK,
            &serde_json::json!({
                "order_id": order.id,
                "status": order.status,
                "applied": matches!(applied, Applied::Moved(_)),
                "duplicate": applied == Applied::Duplicate,
                "note": match &applied { Applied::Recorded(note) => note.as_str(), _ => "" },
            }),
        ),
        Err(ConfirmError::UnknownOrder(_)) => {
            Problem::not_found("There is no such order.").into_response()
        }
        Err(e @ ConfirmError::NotATransfer(_)) => Problem::new(
            StatusCode::CONFLICT,
            "not-a-transfer",
            "Not a bank transfer",
            e.to_string(),
        )
        .into_response(),
        Err(e) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "retry",
            "Try again",
            e.to_string(),
        )
        .into_response(),
    }
}

/// `POST /dev/clock` (`--test-clock` only): moves the clock forward by `advance_seconds` and
/// runs the timed work at once, as the scheduler would at that time.
async fn advance_clock<A: Adapters>(stack: &Stack<A>, body: &[u8]) -> Response<String> {
    #[derive(serde::Deserialize)]
    struct Advance {
        advance_seconds: i64,
    }
    let Ok(advance) = serde_json::from_slice::<Advance>(body) else {
        return Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-clock",
            "Bad clock change",
            "Send {\"advance_seconds\": N}.",
        )
        .into_response();
    };
    let now = shared::adapters::system::advance_clock(advance.advance_seconds);
    match super::consumers::run_due_now(stack, true).await {
        Ok(ran) => shared::http::json(
            StatusCode::OK,
            &serde_json::json!({ "now": now, "ran": ran }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "due work failed");
            Problem::internal().into_response()
        }
    }
}
