//! testpay's hosted card page. On a valid card it sends the signed webhook over HTTP to the
//! store's webhook URL, as a real gateway would, then sends the buyer back to the order page.

use super::adapters::Adapters;
use super::Stack;
use http::{Method, Response, StatusCode};
use serde::Serialize;
use shared::adapters::system::SystemClock;
use shared::adapters::testpay::{CardError, Session, SessionLine};
use shared::app::render::StoreView;
use shared::http::{form_pairs, html, redirect, Problem};
use shared::ports::Clock;
use std::time::Duration;

/// A real gateway retries failed deliveries for days; testpay tries a few times quickly.
const DELIVERY_ATTEMPTS: u32 = 5;

#[derive(Serialize)]
struct PageContext<'a> {
    store: StoreView<'a>,
    title: &'a str,
    lines: &'a [SessionLine],
    total: String,
    action: String,
    error: Option<String>,
}

pub async fn handle<A: Adapters>(
    stack: &Stack<A>,
    method: &Method,
    session_id: &str,
    body: &[u8],
) -> Response<String> {
    let session = match stack.testpay.session(session_id) {
        Ok(s) => s,
        Err(e) => return Problem::not_found(e.to_string()).into_response(),
    };
    let action = format!("{}/testpay/sessions/{session_id}", stack.urls.base());
    match *method {
        Method::GET => page(stack, &session, action, None, StatusCode::OK),
        Method::POST => {
            let field = |name: &str| {
                form_pairs(body)
                    .into_iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v)
                    .unwrap_or_default()
            };
            let now = SystemClock.now();
            match stack.testpay.charge(
                &session,
                &field("card_number"),
                &field("exp"),
                &field("cvc"),
                now,
            ) {
                Ok(event) => {
                    deliver(stack, stack.testpay.deliveries(&event)).await;
                    redirect(&session.return_url)
                }
                Err(e @ CardError::Expired) => page(
                    stack,
                    &session,
                    action,
                    Some(e.to_string()),
                    StatusCode::GONE,
                ),
                Err(e) => page(
                    stack,
                    &session,
                    action,
                    Some(e.to_string()),
                    StatusCode::BAD_REQUEST,
                ),
            }
        }
        _ => Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "Use GET or POST.",
        )
        .into_response(),
    }
}

fn page<A: Adapters>(
    stack: &Stack<A>,
    session: &Session,
    action: String,
    error: Option<String>,
    status: StatusCode,
) -> Response<String> {
    let context = PageContext {
        store: StoreView::new(&stack.store),
        title: "Pay",
        lines: &session.lines,
        total: session.amount.to_string(),
        action,
        error,
    };
    match stack.templates.render("testpay.html", context) {
        Ok(body) => html(status, body),
        Err(_) => Problem::internal().into_response(),
    }
}

/// Sends each delivery concurrently (so duplicates race, as they do in production), each
/// retried until the store answers 2xx.
async fn deliver<A: Adapters>(
    stack: &Stack<A>,
    events: Vec<shared::adapters::testpay::TestpayEvent>,
) {
    let url = stack.testpay.webhook_url();
    let sends = events.into_iter().map(|event| {
        let url = url.clone();
        async move {
            for attempt in 0..DELIVERY_ATTEMPTS {
                let (body, signature) = stack.testpay.signed(&event, SystemClock.now());
                let sent = stack
                    .http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(shared::signature::HEADER, signature)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    _ => tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await,
                }
            }
            eprintln!("testpay: gave up delivering event {}", event.id);
        }
    });
    futures::future::join_all(sends).await;
}
