//! Translates a recovery mail's links: back to payment for the same cart, and out of
//! reminders (a page with one button, so that a mail scanner following links unsubscribes
//! nobody).

use crate::handler::{buy_answer, State};
use lambda_http::{http::StatusCode, Request};
use secrecy::ExposeSecret;
use shared::adapters::system::{OsEntropy, SystemClock};
use shared::app::checkout::CheckoutContext;
use shared::app::pages::{confirm_page, error_page, not_found_page, ErrorPage};
use shared::app::recovery::{reopen, unsubscribe, unsubscribe_address, Reopened};
use shared::app::Urls;
use shared::http::{html, redirect, Problem};
use shared::ports::{OrderStore, PaymentGateway, Queue, Suppressions};

/// `GET /recover/{token}`.
pub async fn recover<S: OrderStore, Q: Queue, G: PaymentGateway>(
    state: &State<S, Q, G>,
    urls: &Urls,
    token: &str,
) -> http::Response<String> {
    let ctx = CheckoutContext {
        store: &state.store,
        urls,
        clock: &SystemClock,
        entropy: &OsEntropy,
        token_key: state.token_key.expose_secret().as_bytes(),
        session_seconds: state.gateway.minimum_session_seconds(),
    };
    match reopen(&ctx, &state.orders, &state.queue, &state.gateway, token).await {
        Ok(Reopened::Pay(to) | Reopened::Paid(to)) => redirect(&to),
        Ok(Reopened::Refused { form, problems }) => {
            let sku = form.items.first().map_or("", |(sku, _)| sku.as_str());
            buy_answer(
                state,
                urls,
                sku,
                Some(&form),
                &problems,
                StatusCode::CONFLICT,
            )
            .await
        }
        Ok(Reopened::Unknown) => not_found(state),
        Err(e) => {
            tracing::error!(error = %e, "recovery link failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "Please try again",
                "Your order could not be opened just now. Please try again in a moment.",
            )
            .into_response()
        }
    }
}

/// `GET /unsubscribe/{token}` asks; `POST` does it.
pub async fn unsubscribe_page<S: OrderStore + Suppressions, Q, G>(
    state: &State<S, Q, G>,
    request: &Request,
    token: &str,
) -> http::Response<String> {
    let key = state.token_key.expose_secret().as_bytes();
    if request.method() == http::Method::GET {
        if unsubscribe_address(key, token).is_none() {
            return not_found(state);
        }
        return page(
            state,
            StatusCode::OK,
            "No more reminders?",
            "We will not email you reminders about unpaid orders or requests for reviews any more. Mail about orders you pay for still comes.",
            Some("Stop the reminders"),
        );
    }
    match unsubscribe(&state.orders, &SystemClock, key, token).await {
        Ok(Some(_)) => page(
            state,
            StatusCode::OK,
            "Done",
            "You will get no more reminders from us.",
            None,
        ),
        Ok(None) => not_found(state),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "Please try again",
                "That did not work just now. Please try again in a moment.",
            )
            .into_response()
        }
    }
}

fn not_found<S, Q, G>(state: &State<S, Q, G>) -> http::Response<String> {
    match not_found_page(&state.store, &state.templates) {
        Ok(body) => html(StatusCode::NOT_FOUND, body),
        Err(_) => Problem::not_found("There is nothing at this address.").into_response(),
    }
}

/// A page in the store's look; with `button` (its label), one button that posts back to
/// the same address.
fn page<S, Q, G>(
    state: &State<S, Q, G>,
    status: StatusCode,
    title: &str,
    message: &str,
    button: Option<&str>,
) -> http::Response<String> {
    let rendered = match button {
        Some(label) => confirm_page(&state.store, &state.templates, title, message, label),
        None => error_page(
            &state.store,
            &state.templates,
            &ErrorPage {
                title,
                message,
                next: None,
            },
        ),
    };
    match rendered {
        Ok(body) => html(status, body),
        Err(_) => Problem::internal().into_response(),
    }
}
