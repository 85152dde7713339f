//! Seller webhooks: every paid order is POSTed, signed, to each URL in the store's
//! `[[webhooks]]`. Each goes through the fulfilment queue as its own message; a failed try is
//! sent again with a growing delay, and after the last one (or at once, for an answer that
//! retrying cannot change) the seller gets an alert mail.

use super::{update_order, Updated};
use crate::config::Store;
use crate::domain::{Order, OrderId};
use crate::ports::{
    Claim, Clock, Message, NotifyError, OrderStore, Owner, Queue, QueueError, SellerNotifier,
    StoreError, WorkClaims,
};
use serde_json::json;

/// Tries before giving up: the delays between them are 5 s, 20 s, 80 s, 320 s, then 15 min
/// (SQS's longest delay) three times, about 52 minutes in all.
pub const MAX_ATTEMPTS: u32 = 8;
const LEASE_SECONDS: i64 = 60;

/// The delay before try `attempt + 1` (tries count from 0).
pub fn backoff_seconds(attempt: u32) -> u32 {
    5u32.saturating_mul(4u32.saturating_pow(attempt)).min(900)
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyFailure {
    #[error("there is no order {0}")]
    UnknownOrder(OrderId),
    #[error("the store has no webhook number {0}")]
    UnknownWebhook(u32),
    /// Another worker holds this delivery until `until` (Unix seconds): look again then.
    #[error("another worker is delivering this webhook until {until}")]
    Busy { until: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl NotifyFailure {
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            NotifyFailure::UnknownOrder(_) | NotifyFailure::UnknownWebhook(_)
        )
    }
}

/// What one try came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notified {
    Delivered,
    /// Delivered (or given up) before.
    AlreadyDone,
    /// Failed for now; the next try is queued after this many seconds.
    Rescheduled(u32),
    /// Given up; the seller is being told.
    GaveUp(String),
}

fn once_key(webhook: usize) -> String {
    format!("WEBHOOK#{webhook}")
}

/// Queues one message per seller webhook for a paid order, once per order and webhook
/// (a repeated call finds them queued).
pub async fn queue_seller_webhooks<S: OrderStore + WorkClaims, Q: Queue, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    clock: &C,
    order: &Order,
) -> Result<(), NotifyFailure> {
    let owner = Owner::new();
    for webhook in 0..store.webhooks.len() {
        let key = format!("{}#queued", once_key(webhook));
        let now = clock.now();
        match orders
            .claim(&order.id, &key, &owner, now, now + LEASE_SECONDS)
            .await?
        {
            Claim::Done(_) | Claim::Busy { .. } => continue,
            Claim::Acquired => {}
        }
        let message = Message::NotifySeller {
            order_id: order.id.clone(),
            webhook: u32::try_from(webhook).unwrap_or(u32::MAX),
            attempt: 0,
        };
        if let Err(e) = queue.send(&message).await {
            orders.release(&order.id, &key, &owner).await?;
            return Err(e.into());
        }
        orders
            .complete(&order.id, &key, &owner, &json!({ "queued_at": now }))
            .await?;
    }
    Ok(())
}

/// The JSON a seller webhook receives: the paid order as it was bought (so every try sends
/// the same bytes), without anything that gives access (passwords, keys and links stay
/// with the buyer).
pub fn payload(order: &Order) -> serde_json::Value {
    let money = |m: crate::domain::Money| json!({ "amount_minor": m.minor(), "currency": m.currency().code(), "display": m.to_string() });
    json!({
        "v": 1,
        "type": "order.paid",
        "order": {
            "order_id": order.id,
            "created_at": order.created_at,
            "email": order.email,
            "name": order.name,
            "payment_method": order.payment_method,
            "total": money(order.total),
            "lines": order.lines.iter().map(|l| json!({
                "sku": l.sku,
                "name": l.name,
                "kind": l.kind.as_str(),
                "quantity": l.quantity.get(),
                "unit_price": money(l.unit_price),
                "subtotal": money(l.subtotal()),
            })).collect::<Vec<_>>(),
            "shipping": order.shipping.as_ref().map(|s| json!({
                "address": s.address,
                "price": money(s.price),
                "weight_grams": s.weight_grams,
            })),
        },
    })
}

/// One try of one seller webhook for one order.
#[allow(clippy::too_many_arguments)]
pub async fn notify_seller<S: OrderStore + WorkClaims, Q: Queue, C: Clock, N: SellerNotifier>(
    store: &Store,
    orders: &S,
    queue: &Q,
    clock: &C,
    notifier: &N,
    order_id: &OrderId,
    webhook: u32,
    attempt: u32,
) -> Result<Notified, NotifyFailure> {
    let index = usize::try_from(webhook).unwrap_or(usize::MAX);
    let hook = store
        .webhooks
        .get(index)
        .ok_or(NotifyFailure::UnknownWebhook(webhook))?;
    let key = once_key(index);
    let now = clock.now();
    let owner = Owner::new();
    match orders
        .claim(order_id, &key, &owner, now, now + LEASE_SECONDS)
        .await?
    {
        Claim::Done(_) => return Ok(Notified::AlreadyDone),
        Claim::Busy { until } => return Err(NotifyFailure::Busy { until }),
        Claim::Acquired => {}
    }
    // Read only once the work is ours: a repeated message costs no order read.
    let Some(order) = orders.order(order_id).await? else {
        orders.release(order_id, &key, &owner).await?;
        return Err(NotifyFailure::UnknownOrder(order_id.clone()));
    };
    let body = serde_json::to_vec(&payload(&order)).expect("payloads serialise");
    let idempotency_key = format!("{order_id}:order.paid");
    let reason = match notifier
        .notify(&hook.url, &hook.secret, &body, &idempotency_key)
        .await
    {
        Ok(()) => {
            orders
                .complete(
                    order_id,
                    &key,
                    &owner,
                    &json!({ "delivered_at": clock.now() }),
                )
                .await?;
            tracing::info!(order_id = %order_id, webhook, attempt, "seller webhook delivered");
            return Ok(Notified::Delivered);
        }
        Err(NotifyError::Transient(reason)) if attempt + 1 < MAX_ATTEMPTS => {
            orders.release(order_id, &key, &owner).await?;
            let delay = backoff_seconds(attempt);
            let next = Message::NotifySeller {
                order_id: order_id.clone(),
                webhook,
                attempt: attempt + 1,
            };
            queue.send_after(&next, delay).await?;
            tracing::warn!(order_id = %order_id, webhook, attempt, delay, %reason, "seller webhook failed; trying again later");
            return Ok(Notified::Rescheduled(delay));
        }
        Err(NotifyError::Transient(reason)) => {
            format!("{reason}, after {MAX_ATTEMPTS} tries over about an hour")
        }
        Err(NotifyError::Permanent(reason)) => reason,
    };
    let reason = format!("{}: {reason}", hook.url);
    orders
        .complete(order_id, &key, &owner, &json!({ "failed": reason }))
        .await?;
    record_failure(orders, order_id, &reason).await?;
    queue
        .send(&Message::SendMail {
            order_id: order_id.clone(),
        })
        .await?;
    tracing::error!(order_id = %order_id, webhook, attempt, %reason, "seller webhook gave up");
    Ok(Notified::GaveUp(reason))
}

/// Keeps the failure on the order, once, for the seller's alert mail.
async fn record_failure<S: OrderStore>(
    orders: &S,
    order_id: &OrderId,
    reason: &str,
) -> Result<(), NotifyFailure> {
    let recorded = update_order(orders, order_id, |order| {
        if order.webhook_failures.iter().any(|r| r == reason) {
            return Ok::<_, NotifyFailure>(None);
        }
        let mut next = order.clone();
        next.webhook_failures.push(reason.to_owned());
        Ok(Some(next))
    })
    .await?;
    match recorded {
        Updated::Saved(_) | Updated::Unchanged(_) => Ok(()),
        Updated::Missing => Err(NotifyFailure::UnknownOrder(order_id.clone())),
        Updated::Contended => Err(StoreError::Conflict.into()),
    }
}
