//! The card gateway the store is configured with, chosen once at start-up.

use super::stripe::{self, Stripe};
use super::testpay::Testpay;
use crate::app::Urls;
use crate::config::{GatewayName, Store};
use crate::domain::{Order, PaymentEvent};
use crate::environment::{self as env, Secrets};
use crate::ports::{GatewayError, PaymentGateway, PaymentSession, WebhookError};
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
}
