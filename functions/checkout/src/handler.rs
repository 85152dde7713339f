//! Translates HTTP requests into checkout use cases and their answers.

use lambda_http::{http::StatusCode, Body, Error, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::adapters::system::{OsEntropy, SystemClock};
use shared::app::checkout::{
    place_order, place_order_and_pay, Checkout, CheckoutContext, CheckoutError, CheckoutForm,
};
use shared::app::pages::{
    current_buy_page, for_browser, not_found_page, BuyPageError, BuyRequest, HoldWindows,
};
use shared::app::render::Templates;
use shared::app::Urls;
use shared::config::Store;
use shared::domain::AddressForm;
use shared::http::{form_pairs, html, is_form, json, redirect, wants_html, Problem};
use shared::ports::{Clock, OrderStore, PaymentGateway, Queue, Suppressions};

pub struct State<S, Q, G> {
    pub store: Store,
    pub templates: Templates,
    pub orders: S,
    /// For the bank details mail of an order paid by transfer.
    pub queue: Q,
    /// Opens the payment session of a form checkout, which then goes straight to it.
    pub gateway: G,
    /// The public base URL, or `None` to take it from each request's `Host`.
    pub urls: Option<Urls>,
    pub token_key: SecretString,
}

#[derive(Deserialize)]
struct JsonCheckout {
    items: Vec<JsonItem>,
    email: String,
    name: String,
    #[serde(default)]
    payment_method: String,
    #[serde(default)]
    address: AddressForm,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    sms_consent: bool,
    #[serde(default)]
    remind_me: bool,
}

#[derive(Deserialize)]
struct JsonItem {
    sku: String,
    quantity: u32,
}

pub async fn handle<S: OrderStore + Suppressions, Q: Queue, G: PaymentGateway>(
    state: &State<S, Q, G>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let urls = Urls::configured_or_from(&state.urls, request.headers());
    let path = request.uri().path().trim_end_matches('/');
    let response = match (request.method().as_str(), path) {
        ("POST", "/checkout") => checkout(state, &urls, &request).await,
        ("GET", p) if p.starts_with("/buy/") => buy(state, &urls, &p["/buy/".len()..]).await,
        ("GET", p) if p.starts_with("/recover/") => {
            crate::recovery::recover(state, &urls, &p["/recover/".len()..]).await
        }
        ("GET" | "POST", p) if p.starts_with("/unsubscribe/") => {
            crate::recovery::unsubscribe_page(state, &request, &p["/unsubscribe/".len()..]).await
        }
        _ => Problem::not_found("No such route.").into_response(),
    };
    let response = for_browser(&state.store, &state.templates, request.headers(), response);
    Ok(response.map(Body::from))
}

async fn checkout<S: OrderStore, Q: Queue, G: PaymentGateway>(
    state: &State<S, Q, G>,
    urls: &Urls,
    request: &Request,
) -> http::Response<String> {
    let is_json = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (form, quote) = if is_json {
        match serde_json::from_slice::<JsonCheckout>(request.body()) {
            Ok(c) => (
                CheckoutForm {
                    items: c
                        .items
                        .into_iter()
                        .map(|i| (i.sku, i.quantity.to_string()))
                        .collect(),
                    email: c.email,
                    name: c.name,
                    payment_method: c.payment_method,
                    address: c.address,
                    phone: c.phone,
                    sms_consent: c.sms_consent,
                    remind_me: c.remind_me,
                },
                false,
            ),
            Err(e) => return bad_request(format!("the body is not a checkout: {e}")),
        }
    } else {
        from_form(request.body())
    };
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if key.is_some_and(|k| k.is_empty() || k.len() > 255) {
        return bad_request("Idempotency-Key must be 1 to 255 characters".into());
    }
    let ctx = CheckoutContext {
        store: &state.store,
        urls,
        clock: &SystemClock,
        entropy: &OsEntropy,
        token_key: state.token_key.expose_secret().as_bytes(),
        session_seconds: state.gateway.minimum_session_seconds(),
    };
    // A browser's form is answered with pages: the buy page again, with what was typed.
    let browser = !is_json && is_form(request.headers()) && wants_html(request.headers());
    if browser && quote {
        return form_page(state, urls, &form, Vec::new()).await;
    }
    let checkout = match Checkout::parse_all(&form) {
        Ok(checkout) => checkout,
        Err(problems) if browser => return form_page(state, urls, &form, problems).await,
        Err(mut problems) => return problem(problems.swap_remove(0)).into_response(),
    };
    // A JSON client gets the pay link to use when it likes; a browser goes to the gateway.
    let placed = if is_json {
        place_order(&ctx, &state.orders, &state.queue, &checkout, key)
            .await
            .map(|receipt| json(StatusCode::CREATED, &receipt))
    } else {
        place_order_and_pay(
            &ctx,
            &state.orders,
            &state.queue,
            &state.gateway,
            &checkout,
            key,
        )
        .await
        .map(|(_, destination)| redirect(&destination))
    };
    match placed {
        Ok(response) => response,
        Err(e) if browser => form_page(state, urls, &form, vec![e]).await,
        Err(e) => problem(e).into_response(),
    }
}

/// The buy page of the form's product again, holding what the buyer typed, with the
/// checkout's problems (if any) beside the fields they concern.
async fn form_page<S: OrderStore, Q: Queue, G: PaymentGateway>(
    state: &State<S, Q, G>,
    urls: &Urls,
    form: &CheckoutForm,
    problems: Vec<CheckoutError>,
) -> http::Response<String> {
    let status = problems.first().map_or(StatusCode::OK, |e| {
        StatusCode::from_u16(problem_status(e)).unwrap_or(StatusCode::BAD_REQUEST)
    });
    let sku = form.items.first().map_or("", |(sku, _)| sku.as_str());
    buy_answer(state, urls, sku, Some(form), &problems, status).await
}

/// The status of a refused form: the API's, but a failure on our side asks to try again.
fn problem_status(error: &CheckoutError) -> u16 {
    match problem_of(error).status {
        500 => 503,
        status => status,
    }
}

/// A buy page as an HTTP answer.
pub(crate) async fn buy_answer<S: OrderStore, Q: Queue, G: PaymentGateway>(
    state: &State<S, Q, G>,
    urls: &Urls,
    sku: &str,
    form: Option<&CheckoutForm>,
    problems: &[CheckoutError],
    status: StatusCode,
) -> http::Response<String> {
    let rendered = current_buy_page(
        &state.store,
        &state.templates,
        urls,
        &state.orders,
        BuyRequest {
            sku,
            form,
            problems,
        },
        HoldWindows::at(
            SystemClock.now(),
            &state.store,
            state.gateway.minimum_session_seconds(),
        ),
    )
    .await;
    match rendered {
        Ok(body) => html(status, body),
        Err(BuyPageError::UnknownProduct) => page(
            StatusCode::NOT_FOUND,
            not_found_page(&state.store, &state.templates),
        ),
        Err(BuyPageError::Store(e)) => {
            tracing::error!(error = %e, "stock unavailable");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "Please try again",
                "This page could not be opened just now. Please try again in a moment.",
            )
            .into_response()
        }
        Err(BuyPageError::Render(e)) => page(StatusCode::INTERNAL_SERVER_ERROR, Err(e)),
    }
}

fn page(
    status: StatusCode,
    rendered: Result<String, shared::app::render::RenderError>,
) -> http::Response<String> {
    match rendered {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "page failed to render");
            Problem::internal().into_response()
        }
    }
}

/// The HTML form: `sku` and `quantity` repeat, one pair per item.
/// The form's checkout, and whether its button asked only for a quote (`action=quote`).
fn from_form(body: &[u8]) -> (CheckoutForm, bool) {
    let mut form = CheckoutForm::default();
    let (mut skus, mut quantities) = (Vec::new(), Vec::new());
    let mut quote = false;
    for (key, value) in form_pairs(body) {
        match key.as_str() {
            "action" => quote = value == "quote",
            "sku" => skus.push(value),
            "quantity" => quantities.push(value),
            "email" => form.email = value,
            "name" => form.name = value,
            "payment_method" => form.payment_method = value,
            "address_name" => form.address.name = value,
            "address_line1" => form.address.line1 = value,
            "address_line2" => form.address.line2 = value,
            "address_postal_code" => form.address.postal_code = value,
            "address_city" => form.address.city = value,
            "address_region" => form.address.region = value,
            "address_country" => form.address.country = value,
            "phone" => form.phone = value,
            // A ticked box sends its value; an unticked one sends nothing.
            "sms_consent" => form.sms_consent = true,
            "remind_me" => form.remind_me = true,
            _ => {}
        }
    }
    form.items = skus
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s, quantities.get(i).cloned().unwrap_or("1".into())))
        .collect();
    (form, quote)
}

fn bad_request(detail: String) -> http::Response<String> {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-request",
        "Invalid request",
        detail,
    )
    .into_response()
}

/// The one place checkout errors become HTTP answers.
fn problem(error: CheckoutError) -> Problem {
    problem_of(&error)
}

fn problem_of(error: &CheckoutError) -> Problem {
    match error {
        CheckoutError::Invalid { .. } => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            error.to_string(),
        ),
        CheckoutError::UnknownProduct(_) => Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-product",
            "Unknown product",
            error.to_string(),
        ),
        CheckoutError::OncePerOrder(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "once-per-order",
            "Bought once per order",
            error.to_string(),
        ),
        CheckoutError::SoldOut(_) => Problem::new(
            StatusCode::CONFLICT,
            "sold-out",
            "Sold out",
            error.to_string(),
        ),
        CheckoutError::CannotShip(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot-ship",
            "Cannot ship there",
            error.to_string(),
        ),
        CheckoutError::KeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            error.to_string(),
        ),
        CheckoutError::Store(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "checkout failed");
            Problem::internal()
        }
        CheckoutError::Queue(e) => {
            tracing::error!(error = %e, "the bank details mail could not be queued");
            Problem::internal()
        }
    }
}

async fn buy<S: OrderStore, Q: Queue, G: PaymentGateway>(
    state: &State<S, Q, G>,
    urls: &Urls,
    sku: &str,
) -> http::Response<String> {
    buy_answer(state, urls, sku, None, &[], StatusCode::OK).await
}
