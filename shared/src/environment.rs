//! Every environment variable Nightshift reads, and the named secrets it resolves.
//! Read once at start-up; a bad value fails fast with a message naming the variable.

use secrecy::SecretString;
use std::collections::HashMap;

/// The DynamoDB table (Lambda).
pub const TABLE_NAME: &str = "NIGHTSHIFT_TABLE";
/// SQS queue URLs (Lambda).
pub const FULFILLMENT_QUEUE_URL: &str = "NIGHTSHIFT_FULFILLMENT_QUEUE_URL";
pub const MAIL_QUEUE_URL: &str = "NIGHTSHIFT_MAIL_QUEUE_URL";
/// The bucket the downloads function may read (the template's `DownloadsBucket`).
pub const DOWNLOADS_BUCKET: &str = "NIGHTSHIFT_DOWNLOADS_BUCKET";
/// Deployment stage (`dev`, `prod`, …).
pub const STAGE: &str = "NIGHTSHIFT_STAGE";
/// SSM path under which the named secrets are SecureString parameters, e.g. `/nightshift/prod/`.
pub const SECRETS_PREFIX: &str = "NIGHTSHIFT_SECRETS_PREFIX";

#[derive(thiserror::Error)]
#[error("the environment variable {0} is not set")]
pub struct MissingVariable(pub &'static str);

/// As the message: a `main` that returns this error prints it with `Debug`.
impl std::fmt::Debug for MissingVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// A variable the process cannot run without.
pub fn required(name: &'static str) -> Result<String, MissingVariable> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(MissingVariable(name))
}

/// Folder of the embedded store (the dev stack's `--data-dir`).
pub const DATA_DIR: &str = "NIGHTSHIFT_DATA_DIR";
/// The store's public base URL; without it, each request's `Host` decides.
pub const PUBLIC_URL: &str = "NIGHTSHIFT_PUBLIC_URL";
/// A named secret `lms-main` is read from `NIGHTSHIFT_SECRET_LMS_MAIN`.
pub const SECRET_PREFIX: &str = "NIGHTSHIFT_SECRET_";

/// Secret that signs testpay's sessions and webhooks.
pub const TESTPAY_SECRET: &str = "testpay";
/// Secret that derives order tokens for idempotent checkouts.
pub const ORDER_TOKEN_SECRET: &str = "order-tokens";
/// Stripe's secret API key (`sk_live_…`), SSM parameter `<prefix>stripe-secret-key`.
pub const STRIPE_SECRET_KEY_SECRET: &str = "stripe-secret-key";
/// The Stripe webhook endpoint's signing secret (`whsec_…`), `<prefix>stripe-webhook-secret`.
pub const STRIPE_WEBHOOK_SECRET_SECRET: &str = "stripe-webhook-secret";
/// The Ed25519 seed (64 hex digits) that signs licence keys, `<prefix>license-signing-key`.
pub const LICENSE_SIGNING_KEY_SECRET: &str = "license-signing-key";
/// In the dev stack, the Stripe secrets come from these variables.
pub const STRIPE_SECRET_KEY: &str = "STRIPE_SECRET_KEY";
pub const STRIPE_WEBHOOK_SECRET: &str = "STRIPE_WEBHOOK_SECRET";
/// Stripe's API base URL; default `https://api.stripe.com`.
pub const STRIPE_API_BASE: &str = "STRIPE_API_BASE";

/// The secrets the store's card gateway needs.
pub fn gateway_secret_names(store: &crate::config::Store) -> Vec<String> {
    match store.payments.gateway {
        crate::config::GatewayName::Testpay => vec![TESTPAY_SECRET.to_owned()],
        crate::config::GatewayName::Stripe => vec![
            STRIPE_SECRET_KEY_SECRET.to_owned(),
            STRIPE_WEBHOOK_SECRET_SECRET.to_owned(),
        ],
    }
}

/// The secrets the order page reads: its gateway's, and the licence signing key (for the
/// licence endpoints) when the store sells licence keys.
pub fn order_page_secret_names(store: &crate::config::Store) -> Vec<String> {
    let mut names = gateway_secret_names(store);
    names.extend(license_secret_name(store));
    names
}

pub fn secret_variable(name: &str) -> String {
    format!(
        "{SECRET_PREFIX}{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// Named secrets, never logged.
#[derive(Clone, Default)]
pub struct Secrets(HashMap<String, SecretString>);

impl Secrets {
    pub fn new(map: HashMap<String, SecretString>) -> Self {
        Secrets(map)
    }

    /// Reads each named secret from its environment variable; names without one are skipped.
    pub fn from_env(names: &[String]) -> Self {
        Secrets(
            names
                .iter()
                .filter_map(|n| {
                    std::env::var(secret_variable(n))
                        .ok()
                        .map(|v| (n.clone(), SecretString::from(v)))
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.get(name)
    }

    /// The secret, or an error naming the variable that should hold it.
    pub fn require(&self, name: &str) -> Result<SecretString, String> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| format!("set {} (secret `{name}`)", secret_variable(name)))
    }

    pub fn insert(&mut self, name: &str, value: SecretString) {
        self.0.insert(name.to_owned(), value);
    }

    pub fn into_map(self) -> HashMap<String, SecretString> {
        self.0
    }
}

/// The secret names a store needs that the dev stack can make up itself: the built-in ones
/// and each LMS webhook's. (Stripe's keys come from Stripe: see [`gateway_secret_names`].)
pub fn secret_names(store: &crate::config::Store) -> Vec<String> {
    let mut names = vec![TESTPAY_SECRET.to_owned(), ORDER_TOKEN_SECRET.to_owned()];
    names.extend(fulfillment_secret_names(store));
    names
}

/// The secrets the fulfilment function reads: each LMS's, the licence signing key when the
/// store sells licence keys, and each seller webhook's.
pub fn fulfillment_secret_names(store: &crate::config::Store) -> Vec<String> {
    let mut names = lms_secret_names(store);
    names.extend(license_secret_name(store));
    for hook in &store.webhooks {
        if !names.contains(&hook.secret) {
            names.push(hook.secret.clone());
        }
    }
    names
}

/// The licence signing key, when the store sells licence keys.
fn license_secret_name(store: &crate::config::Store) -> Option<String> {
    store
        .sells_license_keys()
        .then(|| LICENSE_SIGNING_KEY_SECRET.to_owned())
}

/// The secrets the store's LMS webhooks sign with and its Moodle sites' tokens.
pub fn lms_secret_names(store: &crate::config::Store) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for product in store.products.values() {
        if let crate::config::Fulfillment::Course {
            provider:
                crate::config::CourseProvider::Webhook { secret, .. }
                | crate::config::CourseProvider::Moodle { token: secret, .. },
            ..
        } = &product.fulfillment
        {
            if !names.contains(secret) {
                names.push(secret.clone());
            }
        }
    }
    names
}
