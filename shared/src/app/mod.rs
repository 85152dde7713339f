//! Use cases: every business decision lives here, generic over the ports it uses.

pub mod batch;
pub mod checkout;
pub mod downloads;
pub mod expiry;
pub mod fulfil;
pub mod licenses;
pub mod mail;
pub mod notify;
pub mod pages;
pub mod payment;
pub mod reconcile;
pub mod recovery;
pub mod reminders;
pub mod render;
pub mod reviews;
pub mod schedule;
pub mod seats;
pub mod shipping;
pub mod texts;

use crate::domain::{Order, OrderId, OrderToken, Sku};
use crate::ports::{OrderStore, StoreError};

/// Lost races a read-change-save of one order retries before it gives up.
const RACE_RETRIES: usize = 16;

/// What [`update_order`] came to.
pub(crate) enum Updated {
    /// The change was saved; the order as it now is.
    Saved(Order),
    /// `change` had nothing to do; the order as it was read.
    Unchanged(Order),
    Missing,
    /// Other writers won every race.
    Contended,
}

/// Reads the order, asks `change` for its next state (`None`: nothing to do), and saves that
/// conditional on the version read (bumping it); a lost race reads again.
pub(crate) async fn update_order<S: OrderStore, E: From<StoreError>>(
    orders: &S,
    id: &OrderId,
    change: impl FnMut(&Order) -> Result<Option<Order>, E>,
) -> Result<Updated, E> {
    update_order_from(orders, id, None, change).await
}

/// As [`update_order`], starting from `known`, a copy the caller has just read, instead of
/// reading the order again: one read fewer when nothing changed it meanwhile, and the usual
/// failed write and re-read when something did.
pub(crate) async fn update_order_from<S: OrderStore, E: From<StoreError>>(
    orders: &S,
    id: &OrderId,
    mut known: Option<Order>,
    mut change: impl FnMut(&Order) -> Result<Option<Order>, E>,
) -> Result<Updated, E> {
    for _ in 0..RACE_RETRIES {
        let order = match known.take() {
            Some(order) => order,
            None => match orders.order(id).await? {
                Some(order) => order,
                None => return Ok(Updated::Missing),
            },
        };
        let Some(mut next) = change(&order)? else {
            return Ok(Updated::Unchanged(order));
        };
        next.version = order.version + 1;
        match orders.save_order(&next, order.version).await {
            Ok(()) => return Ok(Updated::Saved(next)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Updated::Contended)
}

/// The order page's token: the order id and a MAC of it under the store's order-token key.
/// Whoever holds the key (checkout, the mailer) can link to the page; the order keeps only
/// the token's digest.
pub fn order_token(key: &[u8], order: &OrderId) -> OrderToken {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"nightshift order page\0");
    mac.update(order.as_str().as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    OrderToken::new(order, bytes)
}

/// The order page's address, for mail: `None` for an order placed before its page had a
/// derived token (its page token is then not ours to rebuild) or without a store address.
pub fn order_page_url(key: &[u8], order: &Order) -> Option<String> {
    let token = order_token(key, &order.id);
    if !order.opened_by(&token) {
        return None;
    }
    Some(Urls::new(order.store_url.as_deref()?).order(&token))
}

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

    pub fn seat(&self, token: &crate::domain::SeatToken) -> String {
        format!("{}/seats/{}", self.base, token.as_str())
    }

    pub fn download(&self, token: &crate::domain::DownloadToken) -> String {
        format!("{}/downloads/{}", self.base, token.as_str())
    }

    pub fn webhook(&self, gateway: &str) -> String {
        format!("{}/payments/{gateway}/webhook", self.base)
    }
}
