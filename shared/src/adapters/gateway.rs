//! The card gateway the store is configured with, chosen once at start-up.

use super::stripe::{self, Stripe};
use super::testpay::Testpay;
use crate::app::Urls;
use crate::config::{GatewayName, Store};
use crate::domain::{Order, PaymentEvent};
use crate::environment::{self as env, Secrets};
use crate::ports::{GatewayError, PaymentGateway, PaymentSession, Refunds, WebhookError};
use std::sync::Arc;

pub enum Gateway {
    Testpay(Arc<Testpay>),
    Stripe(Stripe),
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    #[error("testpay takes no real money and this is stage `prod`: set `payments.gateway = \"stripe\"` in store.toml, or `payments.allow_testpay_in_prod = true` if you really mean it")]
    TestpayInProd,
    #[error("{0}")]
    MissingSecret(String),
}

/// What building a gateway needs besides the store.
pub struct GatewaySetup<'a> {
    pub secrets: &'a Secrets,
    /// Where testpay's pages live and its webhooks go.
    pub urls: Urls,
    pub http: reqwest::Client,
    pub stage: &'a str,
    /// Stripe's API base URL (`STRIPE_API_BASE`; tests point it at a fake).
    pub stripe_api_base: String,
}

impl Gateway {
    /// The store's gateway; refuses testpay on stage `prod` unless the store allows it.
    pub fn from_store(
        store: &Store,
        setup: GatewaySetup<'_>,
    ) -> Result<Gateway, GatewayConfigError> {
        refuse_testpay_in_prod(store, setup.stage)?;
        let secret = |name: &str| {
            setup
                .secrets
                .require(name)
                .map_err(GatewayConfigError::MissingSecret)
        };
        Ok(match store.payments.gateway {
            GatewayName::Testpay => Gateway::Testpay(Arc::new(Testpay::new(
                secret(env::TESTPAY_SECRET)?,
                setup.urls,
                store.payments.testpay.deliver_twice_out_of_order,
            ))),
            GatewayName::Stripe => Gateway::Stripe(Stripe::new(
                &setup.stripe_api_base,
                secret(env::STRIPE_SECRET_KEY_SECRET)?,
                secret(env::STRIPE_WEBHOOK_SECRET_SECRET)?,
                setup.http,
            )),
        })
    }

    /// testpay, when it is the gateway: its card page is served beside the order page.
    pub fn testpay(&self) -> Option<Arc<Testpay>> {
        match self {
            Gateway::Testpay(t) => Some(t.clone()),
            Gateway::Stripe(_) => None,
        }
    }
}

/// testpay approves any test card, so a production store must not run it by accident.
pub fn refuse_testpay_in_prod(store: &Store, stage: &str) -> Result<(), GatewayConfigError> {
    if store.payments.gateway == GatewayName::Testpay
        && stage.eq_ignore_ascii_case("prod")
        && !store.payments.allow_testpay_in_prod
    {
        return Err(GatewayConfigError::TestpayInProd);
    }
    Ok(())
}

/// Stripe's API base: `STRIPE_API_BASE` when set, else Stripe's own.
pub fn stripe_api_base() -> String {
    std::env::var(env::STRIPE_API_BASE)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| stripe::DEFAULT_API_BASE.to_owned())
}

impl PaymentGateway for Gateway {
    fn name(&self) -> &'static str {
        match self {
            Gateway::Testpay(t) => t.name(),
            Gateway::Stripe(s) => s.name(),
        }
    }

    fn minimum_session_seconds(&self) -> i64 {
        match self {
            Gateway::Testpay(t) => t.minimum_session_seconds(),
            Gateway::Stripe(s) => s.minimum_session_seconds(),
        }
    }

    async fn open_session(
        &self,
        order: &Order,
        return_url: &str,
    ) -> Result<PaymentSession, GatewayError> {
        match self {
            Gateway::Testpay(t) => t.open_session(order, return_url).await,
            Gateway::Stripe(s) => s.open_session(order, return_url).await,
        }
    }

    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Option<PaymentEvent>, WebhookError> {
        match self {
            Gateway::Testpay(t) => t.verify_webhook(headers, body, now),
            Gateway::Stripe(s) => s.verify_webhook(headers, body, now),
        }
    }

    async fn returned(
        &self,
        order: &Order,
        query: &str,
    ) -> Result<Option<PaymentEvent>, GatewayError> {
        match self {
            Gateway::Testpay(t) => t.returned(order, query).await,
            Gateway::Stripe(s) => s.returned(order, query).await,
        }
    }

    async fn recent_events(&self, since: i64) -> Result<Vec<PaymentEvent>, GatewayError> {
        match self {
            Gateway::Testpay(t) => t.recent_events(since).await,
            Gateway::Stripe(s) => s.recent_events(since).await,
        }
    }

    fn remembers_sessions(&self) -> bool {
        match self {
            Gateway::Testpay(t) => t.remembers_sessions(),
            Gateway::Stripe(s) => s.remembers_sessions(),
        }
    }

    async fn close_session(
        &self,
        order: &Order,
        id: &str,
    ) -> Result<Option<PaymentEvent>, GatewayError> {
        match self {
            Gateway::Testpay(t) => t.close_session(order, id).await,
            Gateway::Stripe(s) => s.close_session(order, id).await,
        }
    }
}

impl Refunds for Gateway {
    async fn refund(&self, event: &PaymentEvent, key: &str) -> Result<(), GatewayError> {
        match self {
            Gateway::Testpay(t) => t.refund(event, key).await,
            Gateway::Stripe(s) => s.refund(event, key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn store(payments: &str) -> Store {
        let text = format!(
            "[store]\nname = \"S\"\ncurrency = \"EUR\"\nseller_email = \"s@example.com\"\nsender = \"s@example.com\"\n\n[payments]\n{payments}\n\n[products.a]\nname = \"A\"\nprice = \"1.00\"\nfulfillment = {{ kind = \"license_key\" }}\n"
        );
        Store::parse(&text, Path::new("store.toml")).unwrap()
    }

    #[test]
    fn testpay_is_refused_in_prod_unless_the_store_allows_it() {
        let testpay = store("gateway = \"testpay\"");
        assert!(matches!(
            refuse_testpay_in_prod(&testpay, "prod"),
            Err(GatewayConfigError::TestpayInProd)
        ));
        assert!(refuse_testpay_in_prod(&testpay, "PROD").is_err());
        assert!(refuse_testpay_in_prod(&testpay, "staging").is_ok());
        assert!(refuse_testpay_in_prod(&testpay, "dev").is_ok());
        let allowed = store("gateway = \"testpay\"\nallow_testpay_in_prod = true");
        assert!(refuse_testpay_in_prod(&allowed, "prod").is_ok());
        let stripe = store("gateway = \"stripe\"");
        assert!(refuse_testpay_in_prod(&stripe, "prod").is_ok());
    }

    #[test]
    fn building_the_gateway_applies_the_refusal_and_names_missing_secrets() {
        let setup = |secrets| GatewaySetup {
            secrets,
            urls: Urls::new("https://shop.example.com"),
            http: crate::adapters::course::http_client().unwrap(),
            stage: "prod",
            stripe_api_base: stripe::DEFAULT_API_BASE.into(),
        };
        let none = Secrets::default();
        let refused = Gateway::from_store(&store("gateway = \"testpay\""), setup(&none));
        assert!(matches!(refused, Err(GatewayConfigError::TestpayInProd)));
        let missing = Gateway::from_store(&store("gateway = \"stripe\""), setup(&none));
        assert!(
            matches!(missing, Err(GatewayConfigError::MissingSecret(ref m)) if m.contains("stripe-secret-key"))
        );
    }
}
