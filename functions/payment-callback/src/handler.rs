//! Translates a gateway's webhook into the apply-payment use case. Answers fast: 200 once the
//! event is recorded, 400 for anything unverifiable, 5xx so the gateway retries.

use lambda_http::{http::StatusCode, Body, Error, Request, Response};
use serde_json::json;
use shared::adapters::system::SystemClock;
use shared::app::payment::{apply_payment_event, Applied, PaymentError};
use shared::config::Store;
use shared::http::{json, Problem};
use shared::ports::{Clock, OrderStore, PaymentGateway, Queue, Refunds};

pub struct State<S, Q, G> {
    pub store: Store,
    pub orders: S,
    pub queue: Q,
    pub gateway: G,
}

pub async fn handle<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds>(
    state: &State<S, Q, G>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let gateway = request
        .uri()
        .path()
        .strip_prefix("/payments/")
        .and_then(|rest| rest.strip_suffix("/webhook"))
        .unwrap_or_default();
    let response = if request.method() != http::Method::POST || gateway != state.gateway.name() {
        Problem::not_found("No such webhook.").into_response()
    } else {
        // lambda_http has already decoded a base64-encoded body, so these are the raw bytes.
        webhook(state, request.headers(), request.body()).await
    };
    Ok(response.map(Body::from))
}

async fn webhook<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds>(
    state: &State<S, Q, G>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> http::Response<String> {
    let clock = SystemClock;
    let event = match state.gateway.verify_webhook(headers, body, clock.now()) {
        Ok(Some(event)) => event,
        Ok(None) => {
            return json(
                StatusCode::OK,
                &json!({ "received": true, "applied": false }),
            )
        }
        Err(e) => {
            tracing::warn!(gateway = state.gateway.name(), error = %e, "webhook refused");
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-webhook",
                "Invalid webhook",
                e.to_string(),
            )
            .into_response();
        }
    };
    match apply_payment_event(
        &state.store,
        &state.orders,
        &state.queue,
        &state.gateway,
        &clock,
        &event,
    )
    .await
    {
        Ok(applied) => {
            tracing::info!(order_id = %event.order_id, event_id = %event.event_id, ?applied, "payment event");
            let moved = matches!(applied, Applied::Moved(_));
            json(
                StatusCode::OK,
                &json!({ "received": true, "applied": moved }),
            )
        }
        Err(e) => {
            tracing::error!(order_id = %event.order_id, error = %e, source = ?std::error::Error::source(&e), "payment event failed");
            let status = match e {
                PaymentError::Contended => StatusCode::CONFLICT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            Problem::new(
                status,
                "retry",
                "Try again",
                "The event was not applied; deliver it again.",
            )
            .into_response()
        }
    }
}
