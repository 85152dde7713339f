//! Stripe Checkout: hosted payment sessions created over Stripe's form-encoded API, webhooks
//! verified as Stripe specifies (`Stripe-Signature`), and the success page's fast path that
//! asks Stripe for the session the buyer returned from.
//!
//! Every Stripe fact about a session becomes one payment event whose id names the session and
//! the fact (`cs_…:paid`), so the webhook, its retries and the success page's lookup of the
//! same payment are one event, applied once.

use crate::domain::{Currency, Money, Order, OrderId, PaymentEvent, PaymentOutcome};
use crate::ports::{GatewayError, PaymentGateway, PaymentSession, WebhookError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

pub const NAME: &str = "stripe";
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// Stripe refuses `expires_at` less than 30 minutes after the session is created.
pub const MINIMUM_SESSION_SECONDS: i64 = 30 * 60;
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Stripe {
    api_base: String,
    secret_key: SecretString,
    webhook_secret: SecretString,
    http: reqwest::Client,
}

impl Stripe {
    pub fn new(
        api_base: &str,
        secret_key: SecretString,
        webhook_secret: SecretString,
        http: reqwest::Client,
    ) -> Self {
        Stripe {
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key,
            webhook_secret,
            http,
        }
    }

    /// `Idempotency-Key` for opening a session: one per reservation and payment events seen,
    /// so a double click gets the same session (remembering it on the order changes
    /// neither), while a longer reservation or a retry after a decline gets a new one.
    pub fn idempotency_key(order: &Order) -> String {
        format!(
            "nightshift-{}-r{}-e{}",
            order.id,
            order.reserved_until,
            order.events.len()
        )
    }

    /// `POST` a form to Stripe under an idempotency key.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        form: &[(String, String)],
    ) -> Result<T, GatewayError> {
        let response = self
            .http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(self.secret_key.expose_secret())
            .header("Idempotency-Key", key)
            .form(form)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(e.into()))?;
        answer(response).await
    }

    async fn retrieve(&self, session_id: &str) -> Result<Session, GatewayError> {
        let response = self
            .http
            .get(format!(
                "{}/v1/checkout/sessions/{session_id}",
                self.api_base
            ))
            .bearer_auth(self.secret_key.expose_secret())
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(e.into()))?;
        answer(response).await
    }
}

/// The form fields of `POST /v1/checkout/sessions` for an order.
pub fn session_form(order: &Order, return_url: &str) -> Vec<(String, String)> {
    let currency = order.total.currency().code().to_ascii_lowercase();
    let separator = if return_url.contains('?') { '&' } else { '?' };
    let mut form = vec![
        ("mode".to_owned(), "payment".to_owned()),
        ("client_reference_id".into(), order.id.to_string()),
        ("customer_email".into(), order.email.to_string()),
        ("metadata[order_id]".into(), order.id.to_string()),
        (
            "payment_intent_data[metadata][order_id]".into(),
            order.id.to_string(),
        ),
        (
            "success_url".into(),
            format!("{return_url}{separator}session_id={{CHECKOUT_SESSION_ID}}"),
        ),
        ("cancel_url".into(), return_url.to_owned()),
        ("expires_at".into(), order.reserved_until.to_string()),
    ];
    for (i, line) in order.lines.iter().enumerate() {
        let item = |field: &str| format!("line_items[{i}]{field}");
        form.push((item("[quantity]"), line.quantity.get().to_string()));
        form.push((item("[price_data][currency]"), currency.clone()));
        form.push((
            item("[price_data][unit_amount]"),
            line.unit_price.minor().to_string(),
        ));
        form.push((item("[price_data][product_data][name]"), line.name.clone()));
    }
    // Shipping is part of the order's total, so it is a line of the session too.
    if let Some(shipping) = order.shipping.as_ref().filter(|s| s.price.minor() > 0) {
        let i = order.lines.len();
        let item = |field: &str| format!("line_items[{i}]{field}");
        form.push((item("[quantity]"), "1".into()));
        form.push((item("[price_data][currency]"), currency.clone()));
        form.push((
            item("[price_data][unit_amount]"),
            shipping.price.minor().to_string(),
        ));
        form.push((
            item("[price_data][product_data][name]"),
            format!(
                "Shipping to {}",
                crate::domain::country_name(&shipping.address.country)
                    .unwrap_or(&shipping.address.country)
            ),
        ));
    }
    form
}

/// Checks `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` against the raw body: HMAC-SHA256
/// of `"<t>." + body` with the endpoint's secret must equal one of the `v1` values (several
/// while a secret is rolled), compared in constant time, and `t` must be within 300 seconds
/// of `now`. Nightshift's own signature uses the same scheme, so one implementation serves
/// both.
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookError> {
    crate::signature::verify(secret, header, body, now)
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// The parts of a Checkout Session Nightshift reads.
#[derive(Debug, Deserialize)]
struct Session {
    id: String,
    #[serde(default)]
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    amount_total: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    payment_status: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    payment_intent: Option<String>,
}

/// The parts of a Charge Nightshift reads.
#[derive(Debug, Deserialize)]
struct Charge {
    #[serde(default)]
    metadata: HashMap<String, String>,
    amount_refunded: i64,
    currency: String,
    #[serde(default)]
    payment_intent: Option<String>,
}

/// What a session says about its payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    Paid,
    Processing,
    Failed,
    Expired,
}

impl Fact {
    fn as_str(self) -> &'static str {
        match self {
            Fact::Paid => "paid",
            Fact::Processing => "processing",
            Fact::Failed => "failed",
            Fact::Expired => "expired",
        }
    }
}

fn order_id(
    client_reference_id: Option<&str>,
    metadata: &HashMap<String, String>,
) -> Option<OrderId> {
    client_reference_id
        .or(metadata.get("order_id").map(String::as_str))
        .and_then(|id| OrderId::parse(id).ok())
}

fn money(minor: i64, currency: &str) -> Option<Money> {
    Currency::parse(&currency.to_ascii_uppercase())
        .ok()
        .map(|c| Money::from_minor(minor, c))
}

impl Session {
    /// The fact a retrieved session states, if it has settled on one.
    fn fact(&self) -> Option<Fact> {
        match (self.status.as_deref(), self.payment_status.as_deref()) {
            (Some("complete"), Some("paid" | "no_payment_required")) => Some(Fact::Paid),
            (Some("complete"), Some("unpaid")) => Some(Fact::Processing),
            (Some("expired"), _) => Some(Fact::Expired),
            _ => None,
        }
    }

    /// The payment event for a fact about this session; `None` for sessions Nightshift did
    /// not create (no order id) or in a currency it does not know.
    fn event(&self, fact: Fact) -> Option<PaymentEvent> {
        let order_id = order_id(self.client_reference_id.as_deref(), &self.metadata)?;
        let outcome = match fact {
            Fact::Paid => PaymentOutcome::Approved {
                amount: money(self.amount_total?, self.currency.as_deref()?)?,
            },
            Fact::Processing => PaymentOutcome::Processing,
            Fact::Failed => PaymentOutcome::Declined {
                reason: "the asynchronous payment failed".into(),
            },
            Fact::Expired => PaymentOutcome::Expired,
        };
        Some(PaymentEvent {
            gateway: NAME.into(),
            event_id: format!("{}:{}", self.id, fact.as_str()),
            order_id,
            outcome,
            payment_ref: self.payment_intent.clone(),
        })
    }
}

/// A verified event's payload as a payment event, or `None` for types that change nothing.
fn parse_event(body: &[u8]) -> Result<Option<PaymentEvent>, WebhookError> {
    let malformed = |e: serde_json::Error| WebhookError::MalformedBody(e.to_string());
    let event: Event = serde_json::from_slice(body).map_err(malformed)?;
    let fact = match event.kind.as_str() {
        "checkout.session.completed" => None,
        "checkout.session.async_payment_succeeded" => Some(Fact::Paid),
        "checkout.session.async_payment_failed" => Some(Fact::Failed),
        "checkout.session.expired" => Some(Fact::Expired),
        "charge.refunded" => {
            let charge: Charge = serde_json::from_value(event.data.object).map_err(malformed)?;
            let Some(order_id) = order_id(None, &charge.metadata) else {
                tracing::warn!(event_id = %event.id, "charge.refunded for a charge without an order id");
                return Ok(None);
            };
            let Some(total) = money(charge.amount_refunded, &charge.currency) else {
                return Ok(None);
            };
            return Ok(Some(PaymentEvent {
                gateway: NAME.into(),
                event_id: event.id,
                order_id,
                outcome: PaymentOutcome::Refunded { total },
                payment_ref: charge.payment_intent,
            }));
        }
        _ => return Ok(None),
    };
    let session: Session = serde_json::from_value(event.data.object).map_err(malformed)?;
    let fact = match fact {
        Some(fact) => fact,
        // `completed` pays at once for cards; for bank debits the money follows later.
        None => match session.payment_status.as_deref() {
            Some("paid" | "no_payment_required") => Fact::Paid,
            Some("unpaid") => Fact::Processing,
            other => {
                return Err(WebhookError::MalformedBody(format!(
                    "unknown payment_status {other:?}"
                )))
            }
        },
    };
    let parsed = session.event(fact);
    if parsed.is_none() {
        tracing::warn!(event_id = %event.id, session = %session.id, "Stripe session without a Nightshift order id or in an unknown currency");
    }
    Ok(parsed)
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
}

/// A Stripe answer: the object on 2xx; a refusal (4xx, with Stripe's message) or an outage.
async fn answer<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| GatewayError::Unavailable(e.into()))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| GatewayError::Unavailable(e.into()));
    }
    let message = serde_json::from_slice::<ErrorBody>(&bytes)
        .map(|b| b.error.message)
        .unwrap_or_default();
    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(GatewayError::Refused(format!("{status}: {message}")))
    } else {
        Err(GatewayError::Unavailable(
            format!("Stripe answered {status}: {message}").into(),
        ))
    }
}

/// Session ids are `cs_` and letters, digits and underscores; anything else is not looked up.
fn session_id_is_plausible(id: &str) -> bool {
    id.starts_with("cs_")
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl PaymentGateway for Stripe {
    fn name(&self) -> &'static str {
        NAME
    }

    fn minimum_session_seconds(&self) -> i64 {
        MINIMUM_SESSION_SECONDS
    }

    async fn open_session(
        &self,
        order: &Order,
        return_url: &str,
    ) -> Result<PaymentSession, GatewayError> {
        let session: Session = self
            .post(
                "/v1/checkout/sessions",
                &Stripe::idempotency_key(order),
                &session_form(order, return_url),
            )
            .await?;
        let url = session.url.ok_or_else(|| {
            GatewayError::Unavailable("Stripe sent a session without a url".into())
        })?;
        Ok(PaymentSession {
            id: session.id,
            url,
        })
    }

    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Option<PaymentEvent>, WebhookError> {
        crate::signature::verify_header(
            self.webhook_secret.expose_secret().as_bytes(),
            headers,
            SIGNATURE_HEADER,
            body,
            now,
        )?;
        parse_event(body)
    }

    async fn returned(
        &self,
        order: &Order,
        query: &str,
    ) -> Result<Option<PaymentEvent>, GatewayError> {
        let pairs = crate::http::form_pairs(query.as_bytes());
        let Some((_, session_id)) = pairs.iter().find(|(k, _)| k == "session_id") else {
            return Ok(None);
        };
        if !session_id_is_plausible(session_id) {
            return Ok(None);
        }
        let session = match self.retrieve(session_id).await {
            Ok(s) => s,
            // An unknown session id is the buyer's typo, not an outage.
            Err(GatewayError::Refused(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let event = session.fact().and_then(|fact| session.event(fact));
        // The session must belong to this order: a buyer cannot pay one order with another's.
        Ok(event.filter(|e| e.order_id == order.id))
    }

    fn remembers_sessions(&self) -> bool {
        true
    }

    async fn recent_events(&self, since: i64) -> Result<Vec<PaymentEvent>, GatewayError> {
        self.list_events(since).await
    }

    async fn close_session(
        &self,
        order: &Order,
        id: &str,
    ) -> Result<Option<PaymentEvent>, GatewayError> {
        if !session_id_is_plausible(id) {
            return Ok(None);
        }
        let mut session = self.retrieve(id).await?;
        if session.status.as_deref() == Some("open") {
            // Only an open session can be expired; one completed meanwhile is read again.
            let path = format!("/v1/checkout/sessions/{id}/expire");
            match self
                .post::<Session>(&path, &format!("nightshift-expire-{id}"), &[])
                .await
            {
                Ok(expired) => session = expired,
                Err(GatewayError::Refused(_)) => session = self.retrieve(id).await?,
                Err(e) => return Err(e),
            }
        }
        match session.fact() {
            Some(fact @ (Fact::Paid | Fact::Processing)) => {
                Ok(session.event(fact).filter(|e| e.order_id == order.id))
            }
            Some(Fact::Expired | Fact::Failed) => Ok(None),
            None => Err(GatewayError::Unavailable(
                format!("Stripe session {id} is still open after it was expired").into(),
            )),
        }
    }
}

impl crate::ports::Refunds for Stripe {
    /// `POST /v1/refunds` for the session's PaymentIntent, all of it.
    async fn refund(&self, event: &PaymentEvent, key: &str) -> Result<(), GatewayError> {
        let Some(payment_intent) = &event.payment_ref else {
            return Err(GatewayError::Refused(
                "the payment names no PaymentIntent to refund".into(),
            ));
        };
        let form = [
            ("payment_intent".to_owned(), payment_intent.clone()),
            ("metadata[order_id]".to_owned(), event.order_id.to_string()),
        ];
        let _: serde_json::Value = self.post("/v1/refunds", key, &form).await?;
        Ok(())
    }
}

mod events;

#[cfg(test)]
mod tests;
