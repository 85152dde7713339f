//! Translates order-page requests: find the order by its token's hash, then render it.

use lambda_http::{http::StatusCode, Body, Error, Request, Response};
use shared::adapters::course::HttpClient;
use shared::adapters::license::LicenseKeys;
use shared::adapters::system::SystemClock;
use shared::adapters::testpay::{HostedPage, Testpay};
use shared::app::downloads::downloads_used;
use shared::app::expiry::Expiry;
use shared::app::pages::{
    for_browser, not_found_page, order_json, order_page, problem_answer, Visit,
};
use shared::app::payment::{apply_return, open_payment_for, PaymentError};
use shared::app::render::Templates;
use shared::app::Urls;
use shared::config::Store;
use shared::domain::{Order, OrderToken};
use shared::http::{html, json, redirect, Problem};
use shared::ports::{Clock, OrderStore, PaymentGateway, Queue, Refunds};
use std::sync::Arc;

pub struct State<S, Q, G> {
    pub store: Store,
    pub templates: Templates,
    pub orders: S,
    /// For the payment a buyer returns with (the success page's fast path).
    pub queue: Q,
    pub gateway: G,
    /// The public base URL, or `None` to take it from each request's `Host`.
    pub urls: Option<Urls>,
    /// testpay's hosted card page, served here when the store takes payments with testpay.
    pub testpay: Option<TestpayPage>,
    /// Checks keys and signs the revocation list when the store sells licence keys.
    pub licenses: LicenseKeys,
}

pub struct TestpayPage {
    pub gateway: Arc<Testpay>,
    pub http: HttpClient,
}

enum View {
    Page,
    Json,
    Pay,
}

pub async fn handle<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds>(
    state: &State<S, Q, G>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let response = route(state, &request).await;
    let response = for_browser(&state.store, &state.templates, request.headers(), response);
    Ok(response.map(Body::from))
}

async fn route<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds>(
    state: &State<S, Q, G>,
    request: &Request,
) -> http::Response<String> {
    let urls = Urls::configured_or_from(&state.urls, request.headers());
    if let Some(session) = request.uri().path().strip_prefix("/testpay/sessions/") {
        let response = match &state.testpay {
            Some(testpay) => {
                let page = HostedPage {
                    store: &state.store,
                    templates: &state.templates,
                    http: &testpay.http,
                    urls: &urls,
                };
                testpay
                    .gateway
                    .hosted_page(
                        &page,
                        request.method(),
                        session,
                        request.body(),
                        SystemClock.now(),
                    )
                    .await
            }
            None => Problem::not_found("This store does not take payments with testpay.")
                .into_response(),
        };
        return response;
    }
    if let Some(rest) = request.uri().path().strip_prefix("/licenses/") {
        let response = if request.method() == http::Method::GET {
            crate::licenses::answer(&state.orders, &state.licenses, rest).await
        } else {
            Problem::method_not_allowed("Use GET.").into_response()
        };
        return response;
    }
    if let Some(token) = request.uri().path().strip_prefix("/seats/") {
        let seats = crate::seats::Seats {
            store: &state.store,
            templates: &state.templates,
            orders: &state.orders,
            queue: &state.queue,
        };
        return seats.answer(&urls, request, token).await;
    }
    // Every path no other function takes comes here (the API's default route).
    let Some(rest) = request.uri().path().strip_prefix("/orders/") else {
        return Problem::not_found("There is nothing at this address.").into_response();
    };
    let (token, view) = if let Some(t) = rest.strip_suffix(".json") {
        (t, View::Json)
    } else if let Some(t) = rest.strip_suffix("/pay") {
        (t, View::Pay)
    } else {
        (rest, View::Page)
    };
    let response = if request.method() != http::Method::GET {
        Problem::method_not_allowed("Use GET.").into_response()
    } else {
        match find(state, token).await {
            Ok(Some((order, token))) => {
                let query = request.uri().query().unwrap_or_default();
                let polls = poll_count(query);
                // Back from the gateway (its own parameters), or reloading while waiting for it.
                let (order, recognised) = if query.is_empty() || matches!(view, View::Pay) {
                    (order, false)
                } else {
                    apply_return(
                        &state.store,
                        &state.orders,
                        &state.queue,
                        &state.gateway,
                        &SystemClock,
                        order,
                        query,
                    )
                    .await
                };
                let visit = Visit {
                    returning: recognised || polls.is_some(),
                    polls: polls.unwrap_or(0),
                    query: shared::http::form_pairs(query.as_bytes())
                        .into_iter()
                        .filter(|(k, _)| k != "poll")
                        .collect(),
                    downloads_used: Default::default(),
                };
                answer(state, &urls, &order, &token, view, visit, request.headers()).await
            }
            Ok(None) => not_found(state, view),
            Err(response) => response,
        }
    };
    response
}

async fn find<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds>(
    state: &State<S, Q, G>,
    token: &str,
) -> Result<Option<(Order, OrderToken)>, http::Response<String>> {
    let Ok(token) = OrderToken::parse(token) else {
        return Ok(None);
    };
    let fail = |e: &dyn std::error::Error| {
        tracing::error!(error = %e, "order lookup failed");
        Problem::internal().into_response()
    };
    let Some(order) = state
        .orders
        .order_by_token(&token)
        .await
        .map_err(|e| fail(&e))?
    else {
        return Ok(None);
    };
    // An unpaid order past its reservation is expired (and its stock released) on sight,
    // once its gateway confirms no session took money.
    let expiry = Expiry {
        store: &state.store,
        orders: &state.orders,
        queue: &state.queue,
        gateway: &state.gateway,
        clock: &SystemClock,
    };
    let order = match expiry.expire_read_order_if_due(order.clone()).await {
        Ok(order) => order,
        Err(PaymentError::Gateway(e)) => {
            // The scheduler asks again; the page shows the order as it is.
            tracing::warn!(order_id = %order.id, error = %e, "could not ask the gateway before expiry");
            Some(order)
        }
        Err(e) => return Err(fail(&e)),
    };
    Ok(order.map(|o| (o, token)))
}

/// `?poll=N`: the page reloaded itself N times.
fn poll_count(query: &str) -> Option<u32> {
    shared::http::form_pairs(query.as_bytes())
        .into_iter()
        .find(|(k, _)| k == "poll")
        .map(|(_, v)| v.parse().unwrap_or(u32::MAX))
}

async fn answer<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds>(
    state: &State<S, Q, G>,
    urls: &Urls,
    order: &Order,
    token: &OrderToken,
    view: View,
    mut visit: Visit,
    headers: &http::HeaderMap,
) -> http::Response<String> {
    if matches!(view, View::Page) {
        visit.downloads_used = downloads_used(&state.orders, order).await;
    }
    match view {
        View::Json => json(StatusCode::OK, &order_json(order, &state.templates)),
        View::Page => match order_page(
            &state.store,
            &state.templates,
            urls,
            order,
            token,
            SystemClock.now(),
            &visit,
        ) {
            Ok(page) => html(StatusCode::OK, page),
            Err(e) => {
                tracing::error!(order_id = %order.id, error = %e, "order page failed to render");
                Problem::internal().into_response()
            }
        },
        View::Pay => {
            let order_url = urls.order(token);
            match open_payment_for(
                &state.orders,
                &state.gateway,
                &SystemClock,
                order.clone(),
                &order_url,
            )
            .await
            {
                Ok(location) => redirect(&location),
                Err(e) => {
                    tracing::error!(order_id = %order.id, error = %e, "payment session failed");
                    problem_answer(
                        &state.store,
                        &state.templates,
                        headers,
                        Problem::new(
                            StatusCode::BAD_GATEWAY,
                            "gateway-unavailable",
                            "Payment unavailable",
                            "The payment page could not be opened just now. Nothing was charged: please try again in a moment.",
                        ),
                    )
                }
            }
        }
    }
}

fn not_found<S, Q, G>(state: &State<S, Q, G>, view: View) -> http::Response<String> {
    match view {
        View::Json => Problem::not_found("There is no order at this address.").into_response(),
        View::Page | View::Pay => match not_found_page(&state.store, &state.templates) {
            Ok(page) => html(StatusCode::NOT_FOUND, page),
            Err(_) => Problem::not_found("There is no order at this address.").into_response(),
        },
    }
}
