//! Use cases: every business decision lives here, generic over the ports it uses.

pub mod batch;
pub mod checkout;
pub mod downloads;
pub mod fulfil;
pub mod licenses;
pub mod mail;
pub mod notify;
pub mod pages;
pub mod payment;
pub mod render;
pub mod shipping;

use crate::domain::{OrderToken, Sku};

/// The store's public URLs, from its base (`https://shop.example.com`, no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    base: String,
}

impl Urls {
    pub fn new(base: &str) -> Self {
        Urls {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The configured URLs, or else the store's URLs as this request reached them.
    pub fn configured_or_from(configured: &Option<Urls>, headers: &http::HeaderMap) -> Urls {
        configured
            .clone()
            .unwrap_or_else(|| Urls::new(&crate::http::request_base(headers)))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn order(&self, token: &OrderToken) -> String {
        format!("{}/orders/{}", self.base, token.as_str())
    }

    pub fn pay(&self, token: &OrderToken) -> String {
        format!("{}/orders/{}/pay", self.base, token.as_str())
    }

    pub fn buy(&self, sku: &Sku) -> String {
        format!("{}/buy/{}", self.base, sku)
    }

    pub fn checkout(&self) -> String {
        format!("{}/checkout", self.base)
    }

    pub fn download(&self, token: &crate::domain::DownloadToken) -> String {
        format!("{}/downloads/{}", self.base, token.as_str())
    }

    pub fn webhook(&self, gateway: &str) -> String {
        format!("{}/payments/{gateway}/webhook", self.base)
    }
}
