//! Abandoned checkout recovery: a buyer who ticked "Remind me by email" and left the order
//! unpaid gets one mail, `[recovery] after` the checkout, with a link that opens payment for
//! the same cart at the catalogue's prices of the day, and a signed one-click unsubscribe
//! link that is honoured for every later reminder to that address.

use super::checkout::{place_order_and_pay, CheckoutContext, CheckoutError, CheckoutForm};
use super::payment::PaymentError;
use super::{order_token, update_order_from, Updated, Urls};
use crate::config::Store;
use crate::domain::{AddressForm, Email, Order, OrderId, OrderStatus};
use crate::ports::{
    Clock, Entropy, Message, OrderStore, PaymentGateway, Queue, StoreError, Suppressions,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};

/// Decides, once the time has come, whether the order gets its recovery mail: only if it is
/// still unpaid and the address has not unsubscribed. Queues it; says whether it did.
pub async fn recover_if_due<S: OrderStore + Suppressions, Q: Queue, C: Clock>(
    orders: &S,
    queue: &Q,
    clock: &C,
    order: Order,
) -> Result<bool, PaymentError> {
    let now = clock.now();
    if order.recovery_at.is_none_or(|at| at > now) {
        return Ok(false);
    }
    let wanted = wants_recovery(&order) && !orders.is_suppressed(&order.email.digest()).await?;
    let id = order.id.clone();
    let updated = update_order_from(orders, &id, Some(order), |o| {
        if o.recovery_at.is_none_or(|at| at > now) {
            return Ok::<_, StoreError>(None);
        }
        let mut next = o.clone();
        next.recovery_at = None;
        // Paid meanwhile: no mail.
        next.recovery_mailed = wanted && wants_recovery(o);
        if next.recovery_mailed {
            next.check_later(now);
        }
        Ok(Some(next))
    })
    .await?;
    match updated {
        Updated::Saved(order) if order.recovery_mailed => {
            queue
                .send(&Message::SendMail {
                    order_id: order.id.clone(),
                })
                .await?;
            Ok(true)
        }
        Updated::Contended => Err(PaymentError::Contended),
        _ => Ok(false),
    }
}

/// An order its buyer can still be reminded of: not paid, not being paid, not cancelled.
pub fn wants_recovery(order: &Order) -> bool {
    matches!(
        order.status,
        OrderStatus::PendingPayment | OrderStatus::Declined | OrderStatus::Expired
    )
}

fn mac(key: &[u8], purpose: &[u8], value: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(purpose);
    mac.update(value);
    let digest = mac.finalize().into_bytes();
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// `{order id}.{mac}`: the recovery link's token, from the order-token key.
pub fn recovery_token(key: &[u8], order: &OrderId) -> String {
    format!(
        "{order}.{}",
        mac(key, b"nightshift recovery\0", order.as_str().as_bytes())
    )
}

/// `{base64url(address)}.{mac}`: the unsubscribe link's token.
pub fn unsubscribe_token(key: &[u8], email: &Email) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(email.as_str()),
        mac(key, b"nightshift unsubscribe\0", email.as_str().as_bytes())
    )
}

/// The order a recovery token names, if the token is ours.
pub fn recovery_order(key: &[u8], token: &str) -> Option<OrderId> {
    let (id, _) = token.split_once('.')?;
    let id = OrderId::parse(id).ok()?;
    equal(&recovery_token(key, &id), token).then_some(id)
}

/// The address an unsubscribe token names, if the token is ours.
pub fn unsubscribe_address(key: &[u8], token: &str) -> Option<Email> {
    let (encoded, _) = token.split_once('.')?;
    let address = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    let email = Email::parse(&address).ok()?;
    equal(&unsubscribe_token(key, &email), token).then_some(email)
}

/// The links a recovery mail carries: back to payment, and out of reminders.
pub fn recovery_links(key: &[u8], order: &Order) -> Option<(String, String)> {
    let base = order.store_url.as_deref()?;
    Some((
        format!("{base}/recover/{}", recovery_token(key, &order.id)),
        format!(
            "{base}/unsubscribe/{}",
            unsubscribe_token(key, &order.email)
        ),
    ))
}

/// Where a recovery link takes the buyer.
#[derive(Debug)]
pub enum Reopened {
    /// To the gateway's page for a new order of the same cart (or its pay link).
    Pay(String),
    /// The old order was paid after all: to its page.
    Paid(String),
    /// The cart cannot be bought as it was (sold out, a product gone): the buy page again,
    /// with the cart filled in and what stands in the way.
    Refused {
        form: Box<CheckoutForm>,
        problems: Vec<CheckoutError>,
    },
    /// Not a link of ours, or no such order.
    Unknown,
}

/// Follows a recovery link: a new order for the same cart, priced from today's catalogue, at
/// most once per old order (a second click goes to the same new order's payment).
pub async fn reopen<S, Q, G, C, E>(
    ctx: &CheckoutContext<'_, C, E>,
    orders: &S,
    queue: &Q,
    gateway: &G,
    token: &str,
) -> Result<Reopened, CheckoutError>
where
    S: OrderStore,
    Q: Queue,
    G: PaymentGateway,
    C: Clock,
    E: Entropy,
{
    let Some(id) = recovery_order(ctx.token_key, token) else {
        return Ok(Reopened::Unknown);
    };
    let Some(old) = orders.order(&id).await? else {
        return Ok(Reopened::Unknown);
    };
    if old.status.is_paid() || old.status == OrderStatus::PaymentProcessing {
        let page = Urls::new(old.store_url.as_deref().unwrap_or(ctx.urls.base()))
            .order(&order_token(ctx.token_key, &old.id));
        return Ok(Reopened::Paid(page));
    }
    let form = cart_of(ctx.store, &old);
    let checkout = match super::checkout::Checkout::parse_all(&form) {
        Ok(checkout) => checkout,
        Err(problems) => {
            return Ok(Reopened::Refused {
                form: Box::new(form),
                problems,
            })
        }
    };
    let key = format!("recover:{}", old.id);
    match place_order_and_pay(ctx, orders, queue, gateway, &checkout, Some(&key)).await {
        Ok((_, destination)) => Ok(Reopened::Pay(destination)),
        Err(
            e @ (CheckoutError::SoldOut(_)
            | CheckoutError::UnknownProduct(_)
            | CheckoutError::CannotShip(_)
            | CheckoutError::Invalid { .. }
            | CheckoutError::OncePerOrder(_)),
        ) => Ok(Reopened::Refused {
            form: Box::new(form),
            problems: vec![e],
        }),
        Err(e) => Err(e),
    }
}

/// The old order's cart as a checkout form: same items, buyer and address, paid by card.
fn cart_of(_store: &Store, order: &Order) -> CheckoutForm {
    let address = order
        .shipping
        .as_ref()
        .map(|s| AddressForm::from(&s.address))
        .unwrap_or_default();
    CheckoutForm {
        items: order
            .lines
            .iter()
            .map(|l| (l.sku.to_string(), l.quantity.get().to_string()))
            .collect(),
        email: order.email.to_string(),
        name: order.name.to_string(),
        payment_method: "card".into(),
        address,
        ..CheckoutForm::default()
    }
}

/// Follows an unsubscribe link (after the buyer confirmed): the address gets no more
/// reminder mail. `None` for a link that is not ours (nothing changes).
pub async fn unsubscribe<S: Suppressions, C: Clock>(
    orders: &S,
    clock: &C,
    key: &[u8],
    token: &str,
) -> Result<Option<Email>, StoreError> {
    let Some(email) = unsubscribe_address(key, token) else {
        return Ok(None);
    };
    orders.suppress(&email.digest(), clock.now()).await?;
    Ok(Some(email))
}
