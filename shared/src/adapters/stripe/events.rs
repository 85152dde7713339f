//! The reconciler's look at Stripe: the events of the last days, as the webhook would have
//! brought them.

use super::{answer, parse_event, Stripe, TIMEOUT};
use crate::domain::PaymentEvent;
use crate::ports::GatewayError;
use secrecy::ExposeSecret;
use serde::Deserialize;

/// The event types the webhook endpoint subscribes to, which the reconciler lists.
const EVENT_TYPES: [&str; 5] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
];

/// Pages of events one reconciler run reads at most.
const EVENT_PAGES: usize = 20;

/// A page of `GET /v1/events`.
#[derive(Deserialize)]
struct EventPage {
    data: Vec<serde_json::Value>,
    #[serde(default)]
    has_more: bool,
}

impl Stripe {
    /// `GET /v1/events` for the types Nightshift uses, created since `since`, page by page
    /// (at most [`EVENT_PAGES`] pages of 100).
    pub(super) async fn list_events(&self, since: i64) -> Result<Vec<PaymentEvent>, GatewayError> {
        let mut events = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..EVENT_PAGES {
            let mut query: Vec<(&str, String)> =
                vec![("created[gte]", since.to_string()), ("limit", "100".into())];
            query.extend(EVENT_TYPES.iter().map(|t| ("types[]", (*t).to_owned())));
            if let Some(id) = &after {
                query.push(("starting_after", id.clone()));
            }
            let response = self
                .http
                .get(format!("{}/v1/events", self.api_base))
                .bearer_auth(self.secret_key.expose_secret())
                .query(&query)
                .timeout(TIMEOUT)
                .send()
                .await
                .map_err(|e| GatewayError::Unavailable(e.into()))?;
            let page: EventPage = answer(response).await?;
            after = page
                .data
                .last()
                .and_then(|e| e.get("id")?.as_str().map(str::to_owned));
            for raw in &page.data {
                let bytes =
                    serde_json::to_vec(raw).map_err(|e| GatewayError::Unavailable(e.into()))?;
                match parse_event(&bytes) {
                    Ok(Some(event)) => events.push(event),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "a listed Stripe event could not be read"),
                }
            }
            if !page.has_more || after.is_none() {
                break;
            }
        }
        Ok(events)
    }
}
