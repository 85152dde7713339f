//! testpay, the built-in test gateway. It behaves like a hosted-page gateway: a session is a
//! page the buyer pays on, and the verdict reaches the store as a signed webhook over HTTP.
//! Sessions are stateless: the session id carries its details, signed with the gateway's secret.

use crate::app::Urls;
use crate::domain::{Money, Order, OrderId, PaymentEvent, PaymentOutcome};
use crate::ports::{GatewayError, PaymentGateway, PaymentSession, WebhookError};
use crate::signature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;

pub const NAME: &str = "testpay";
pub const APPROVE_CARD: &str = "4242424242424242";
pub const DECLINE_CARD: &str = "4000000000000002";

/// What a session id carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub order_id: OrderId,
    pub amount: Money,
    pub lines: Vec<SessionLine>,
    /// Shipping, shown as its own line: where to and its price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<(String, Money)>,
    pub return_url: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLine {
    pub name: String,
    pub quantity: u32,
    /// The price of one unit, and of the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtotal: Option<Money>,
}

/// The webhook body testpay sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestpayEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub order_id: OrderId,
    pub amount: Money,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("This payment page is not valid.")]
    BadSession,
    #[error("This payment page has expired.")]
    Expired,
    #[error("Use test card 4242 4242 4242 4242 (approved) or 4000 0000 0000 0002 (declined).")]
    UnknownCard,
    #[error("Enter the expiry as MM/YY.")]
    BadExpiry,
    #[error("This card has expired: check the expiry date.")]
    CardExpired,
    #[error("Enter the 3 or 4 digit CVC.")]
    BadCvc,
}

impl CardError {
    /// The card page's field the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            CardError::UnknownCard => Some("card_number"),
            CardError::BadExpiry | CardError::CardExpired => Some("exp"),
            CardError::BadCvc => Some("cvc"),
            CardError::BadSession | CardError::Expired => None,
        }
    }
}

pub struct Testpay {
    secret: SecretString,
    urls: Urls,
    /// Events already sent per order, replayed in test mode.
    history: Mutex<HashMap<OrderId, Vec<TestpayEvent>>>,
    deliver_twice_out_of_order: bool,
}

impl Testpay {
    pub fn new(secret: SecretString, urls: Urls, deliver_twice_out_of_order: bool) -> Self {
        Testpay {
            secret,
            urls,
            history: Mutex::default(),
            deliver_twice_out_of_order,
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length")
    }

    fn session_id(&self, session: &Session) -> String {
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).expect("sessions serialise"));
        let mut mac = self.mac();
        mac.update(b"session:");
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16]);
        format!("ts_{payload}.{tag}")
    }

    /// Reads a session id back, refusing any that testpay did not sign.
    pub fn session(&self, id: &str) -> Result<Session, CardError> {
        let (payload, tag) = id
            .strip_prefix("ts_")
            .and_then(|s| s.split_once('.'))
            .ok_or(CardError::BadSession)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CardError::BadSession)?;
        let mut mac = self.mac();
        mac.update(b"session:");
        mac.update(payload.as_bytes());
        mac.verify_truncated_left(&tag)
            .map_err(|_| CardError::BadSession)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CardError::BadSession)?;
        serde_json::from_slice(&json).map_err(|_| CardError::BadSession)
    }

    /// The buyer submitted the card form: the event the gateway will send.
    pub fn charge(
        &self,
        session: &Session,
        card_number: &str,
        exp: &str,
        cvc: &str,
        now: i64,
    ) -> Result<TestpayEvent, CardError> {
        if now >= session.expires_at {
            return Err(CardError::Expired);
        }
        let digits: String = card_number.chars().filter(|c| !c.is_whitespace()).collect();
        let kind = match digits.as_str() {
            APPROVE_CARD => "payment.approved",
            DECLINE_CARD => "payment.declined",
            _ => return Err(CardError::UnknownCard),
        };
        let (month, year) = exp
            .trim()
            .split_once('/')
            .and_then(|(m, y)| {
                let month = m
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|m| (1..=12).contains(m))?;
                let y = y.trim();
                (y.len() == 2 && y.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| y.parse::<u32>().ok())
                    .flatten()
                    .map(|y| (month, 2000 + y))
            })
            .ok_or(CardError::BadExpiry)?;
        // A card works to the end of its expiry month.
        let today = crate::app::render::utc_date(now);
        let this_year: u32 = today[..4].parse().unwrap_or(0);
        let this_month: u32 = today[5..7].parse().unwrap_or(0);
        if (year, month) < (this_year, this_month) {
            return Err(CardError::CardExpired);
        }
        let cvc = cvc.trim();
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::BadCvc);
        }
        let mut id = [0u8; 12];
        rand::rng().fill_bytes(&mut id);
        Ok(TestpayEvent {
            id: format!("evt_{}", hex::encode(id)),
            kind: kind.into(),
            order_id: session.order_id.clone(),
            amount: session.amount,
            created: now,
        })
    }

    /// The deliveries for a new event, in order: the event itself, or in test mode the event
    /// twice with every earlier event of the order replayed between the copies.
    pub fn deliveries(&self, event: &TestpayEvent) -> Vec<TestpayEvent> {
        let mut history = self.history.lock().expect("history lock");
        let earlier = history.entry(event.order_id.clone()).or_default();
        let mut out = vec![event.clone()];
        if self.deliver_twice_out_of_order {
            out.extend(earlier.iter().rev().cloned());
            out.push(event.clone());
        }
        earlier.push(event.clone());
        out
    }

    /// Body and `Nightshift-Signature` header for an event.
    pub fn signed(&self, event: &TestpayEvent, now: i64) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(event).expect("events serialise");
        let header = signature::sign(self.secret.expose_secret().as_bytes(), now, &body);
        (body, header)
    }
}

/// testpay takes no money, so there is none to give back: a refund always succeeds.
impl crate::ports::Refunds for Testpay {
    async fn refund(&self, event: &PaymentEvent, key: &str) -> Result<(), GatewayError> {
        tracing::info!(order_id = %event.order_id, key, "testpay refund (no money moves)");
        Ok(())
    }
}

impl PaymentGateway for Testpay {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn open_session(
        &self,
        order: &Order,
        return_url: &str,
    ) -> Result<PaymentSession, GatewayError> {
        let session = Session {
            order_id: order.id.clone(),
            amount: order.total,
            lines: order
                .lines
                .iter()
                .map(|l| SessionLine {
                    name: l.name.clone(),
                    quantity: l.quantity.get(),
                    unit_price: Some(l.unit_price),
                    subtotal: Some(l.subtotal()),
                })
                .collect(),
            shipping: order.shipping.as_ref().map(|s| {
                let country = &s.address.country;
                let name = crate::domain::country_name(country).unwrap_or(country);
                (format!("Shipping to {name}"), s.price)
            }),
            return_url: return_url.to_owned(),
            expires_at: order.reserved_until,
        };
        let id = self.session_id(&session);
        let url = format!("{}/testpay/sessions/{id}", self.urls.base());
        Ok(PaymentSession { id, url })
    }

    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Option<PaymentEvent>, WebhookError> {
        signature::verify_header(
            self.secret.expose_secret().as_bytes(),
            headers,
            signature::HEADER,
            body,
            now,
        )?;
        let event: TestpayEvent =
            serde_json::from_slice(body).map_err(|e| WebhookError::MalformedBody(e.to_string()))?;
        let outcome = match event.kind.as_str() {
            "payment.approved" => PaymentOutcome::Approved {
                amount: event.amount,
            },
            "payment.declined" => PaymentOutcome::Declined {
                reason: "card declined".into(),
            },
            _ => return Ok(None),
        };
        Ok(Some(PaymentEvent {
            gateway: NAME.into(),
            event_id: event.id,
            order_id: event.order_id,
            outcome,
            payment_ref: None,
        }))
    }
}

/// A real gateway retries failed deliveries for days; testpay tries a few times quickly.
const DELIVERY_ATTEMPTS: u32 = 5;

#[derive(Serialize)]
struct PageContext<'a> {
    store: crate::app::render::StoreView<'a>,
    title: &'a str,
    lines: Vec<PageLine<'a>>,
    shipping: Option<(&'a str, String)>,
    total: String,
    action: String,
    /// Back to the store without paying.
    back_url: &'a str,
    error: Option<String>,
    /// The field the error is about (its input is marked invalid and described by it).
    error_field: Option<&'static str>,
    /// The card fields as typed (after a refusal) or the approving test card.
    card: CardFields<'a>,
}

#[derive(Serialize)]
struct PageLine<'a> {
    name: &'a str,
    quantity: u32,
    unit_price: Option<String>,
    subtotal: Option<String>,
}

#[derive(Serialize)]
struct CardFields<'a> {
    number: &'a str,
    exp: &'a str,
    cvc: &'a str,
}

/// What the hosted page needs: the store's look, its templates, an HTTP client to deliver
/// webhooks with, and the store's public URLs as this request reached them.
pub struct HostedPage<'a> {
    pub store: &'a crate::config::Store,
    pub templates: &'a crate::app::render::Templates,
    pub http: &'a reqwest::Client,
    pub urls: &'a Urls,
}

impl Testpay {
    /// testpay's hosted card page: `GET` shows it; `POST` takes the card, delivers the signed
    /// webhook over HTTP to the store's webhook URL as a real gateway would, and sends the
    /// buyer back to the order page.
    pub async fn hosted_page(
        &self,
        page: &HostedPage<'_>,
        method: &http::Method,
        session_id: &str,
        body: &[u8],
        now: i64,
    ) -> http::Response<String> {
        use crate::http::{form_pairs, html, redirect, Problem};
        use http::{Method, StatusCode};
        let session = match self.session(session_id) {
            Ok(s) => s,
            Err(e) => return Problem::not_found(e.to_string()).into_response(),
        };
        let action = format!("{}/testpay/sessions/{session_id}", page.urls.base());
        let render = |error: Option<&CardError>, status: StatusCode, card: CardFields<'_>| {
            let context = PageContext {
                store: crate::app::render::StoreView::new(page.store),
                title: "Pay",
                lines: session
                    .lines
                    .iter()
                    .map(|l| PageLine {
                        name: &l.name,
                        quantity: l.quantity,
                        unit_price: l.unit_price.map(|m| m.to_string()),
                        subtotal: l.subtotal.map(|m| m.to_string()),
                    })
                    .collect(),
                shipping: session
                    .shipping
                    .as_ref()
                    .map(|(label, price)| (label.as_str(), price.to_string())),
                total: session.amount.to_string(),
                action: action.clone(),
                back_url: &session.return_url,
                error: error.map(ToString::to_string),
                error_field: error.and_then(CardError::field),
                card,
            };
            match page.templates.render("testpay.html", context) {
                Ok(body) => html(status, body),
                Err(_) => Problem::internal().into_response(),
            }
        };
        match *method {
            Method::GET => render(
                None,
                StatusCode::OK,
                CardFields {
                    number: "4242 4242 4242 4242",
                    exp: "12/34",
                    cvc: "123",
                },
            ),
            Method::POST => {
                let pairs = form_pairs(body);
                let field = |name: &str| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or_default()
                };
                let typed = CardFields {
                    number: field("card_number"),
                    exp: field("exp"),
                    cvc: field("cvc"),
                };
                match self.charge(&session, typed.number, typed.exp, typed.cvc, now) {
                    Ok(event) => {
                        self.deliver(page.http, &page.urls.webhook(NAME), self.deliveries(&event))
                            .await;
                        redirect(&session.return_url)
                    }
                    Err(e @ CardError::Expired) => render(Some(&e), StatusCode::GONE, typed),
                    Err(e) => render(Some(&e), StatusCode::BAD_REQUEST, typed),
                }
            }
            _ => Problem::method_not_allowed("Use GET or POST.").into_response(),
        }
    }

    /// Sends each delivery concurrently (so duplicates race, as they do in production), each
    /// retried until the store answers 2xx.
    async fn deliver(&self, http: &reqwest::Client, url: &str, events: Vec<TestpayEvent>) {
        let sends = events.into_iter().map(|event| async move {
            for attempt in 0..DELIVERY_ATTEMPTS {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                let (body, signature) = self.signed(&event, now);
                let sent = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header(signature::HEADER, signature)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    _ => {
                        tokio::time::sleep(std::time::Duration::from_millis(
                            100 * 2u64.pow(attempt),
                        ))
                        .await
                    }
                }
            }
            tracing::error!(event_id = %event.id, "testpay gave up delivering an event");
        });
        futures::future::join_all(sends).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: i64) -> Session {
        Session {
            order_id: OrderId::from_random([1; 10]),
            amount: Money::from_minor(4900, crate::domain::Currency::parse("EUR").unwrap()),
            lines: Vec::new(),
            shipping: None,
            return_url: "http://127.0.0.1/orders/x".into(),
            expires_at,
        }
    }

    fn testpay() -> Testpay {
        Testpay::new(
            "secret".to_owned().into(),
            Urls::new("http://127.0.0.1"),
            false,
        )
    }

    // 2026-12-07 12:00 UTC.
    const NOW: i64 = 1_796_644_800;

    #[test]
    fn a_card_works_to_the_end_of_its_expiry_month_and_not_after() {
        let pay = testpay();
        let s = session(NOW + 600);
        assert!(pay.charge(&s, APPROVE_CARD, "12/26", "123", NOW).is_ok());
        assert!(pay.charge(&s, APPROVE_CARD, "01/27", "123", NOW).is_ok());
        assert_eq!(
            pay.charge(&s, APPROVE_CARD, "11/26", "123", NOW),
            Err(CardError::CardExpired)
        );
        assert_eq!(
            pay.charge(&s, APPROVE_CARD, "12/25", "123", NOW),
            Err(CardError::CardExpired)
        );
        assert_eq!(
            pay.charge(&s, APPROVE_CARD, "13/27", "123", NOW),
            Err(CardError::BadExpiry)
        );
        assert_eq!(
            pay.charge(&s, APPROVE_CARD, "1227", "123", NOW),
            Err(CardError::BadExpiry)
        );
    }

    #[test]
    fn a_session_past_its_end_takes_no_card() {
        let pay = testpay();
        assert_eq!(
            pay.charge(&session(NOW), APPROVE_CARD, "12/30", "123", NOW),
            Err(CardError::Expired)
        );
    }
}
