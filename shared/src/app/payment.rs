//! Payment: open a hosted session for an order, apply verified gateway events at most once
//! and only forward, and expire orders whose reservation ran out.

use crate::config::Store;
use crate::domain::{Order, OrderId, OrderStatus, PaymentEvent, PaymentOutcome};
use crate::ports::{
    Clock, EventRecord, GatewayError, Message, OrderStore, PaymentGateway, Queue, QueueError,
    Recorded, Reservation, StoreError,
};

/// How often a write that lost a race is retried before giving up.
const RACE_RETRIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("the order kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// What became of a payment event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The order moved to this status.
    Moved(OrderStatus),
    /// Recorded, but the order stays as it is (the note says why).
    Recorded(String),
    /// Seen before; nothing changed.
    Duplicate,
    /// No such order; nothing recorded.
    UnknownOrder,
}

pub async fn apply_payment_event<S: OrderStore, Q: Queue, C: Clock>(
    orders: &S,
    queue: &Q,
    clock: &C,
    event: &PaymentEvent,
) -> Result<Applied, PaymentError> {
    for _ in 0..RACE_RETRIES {
        let Some(order) = orders.order(&event.order_id).await? else {
            return Ok(Applied::UnknownOrder);
        };
        let (target, note) = decide(&order, event);
        let updated = target.map(|status| Order {
            status,
            version: order.version + 1,
            ..order.clone()
        });
        let record = EventRecord {
            event: event.clone(),
            received_at: clock.now(),
            applied: target.is_some(),
            note: note.clone(),
        };
        match orders
            .record_payment_event(&record, updated.as_ref().map(|o| (o, order.version)))
            .await
        {
            Ok(Recorded::New) => {
                let status = updated.as_ref().map_or(order.status, |o| o.status);
                if status == OrderStatus::Paid {
                    queue
                        .send(&Message::FulfilOrder {
                            order_id: order.id.clone(),
                        })
                        .await?;
                }
                return Ok(match target {
                    Some(status) => Applied::Moved(status),
                    None => Applied::Recorded(note.unwrap_or_default()),
                });
            }
            Ok(Recorded::Duplicate) => {
                // A repeat may follow a delivery whose enqueue failed after the write: make
                // sure a paid order is on its way. Fulfilment is idempotent, so this is safe.
                if order.status == OrderStatus::Paid {
                    queue
                        .send(&Message::FulfilOrder {
                            order_id: order.id.clone(),
                        })
                        .await?;
                }
                return Ok(Applied::Duplicate);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(PaymentError::Contended)
}

/// The status an event moves the order to, or why it does not.
fn decide(order: &Order, event: &PaymentEvent) -> (Option<OrderStatus>, Option<String>) {
    match &event.outcome {
        PaymentOutcome::Approved { amount } if *amount != order.total => (
            None,
            Some(format!(
                "amount {amount} does not match the order total {}",
                order.total
            )),
        ),
        PaymentOutcome::Approved { .. } if order.status.can_move_to(OrderStatus::Paid) => {
            (Some(OrderStatus::Paid), None)
        }
        PaymentOutcome::Declined { .. } if order.status.can_move_to(OrderStatus::Declined) => {
            (Some(OrderStatus::Declined), None)
        }
        PaymentOutcome::Approved { .. } if order.status == OrderStatus::Expired => (
            None,
            Some("approved after the order expired: refund it".into()),
        ),
        _ => (
            None,
            Some(format!("no effect on an order that is {}", order.status)),
        ),
    }
}

/// Where to send a buyer who wants to pay (or retry): the gateway's page while the
/// reservation holds, else back to the order page.
pub async fn open_payment<S: OrderStore, G: PaymentGateway, C: Clock>(
    store: &Store,
    orders: &S,
    gateway: &G,
    clock: &C,
    order_id: &OrderId,
    order_url: &str,
) -> Result<String, PaymentError> {
    let Some(order) = expire_if_due(store, orders, clock, order_id).await? else {
        return Ok(order_url.to_owned());
    };
    if !order.status.awaits_payment() {
        return Ok(order_url.to_owned());
    }
    Ok(gateway.open_session(&order, order_url).await?.url)
}

/// Reads the order and, if it is unpaid past its reservation, expires it and releases its stock.
pub async fn expire_if_due<S: OrderStore, C: Clock>(
    store: &Store,
    orders: &S,
    clock: &C,
    order_id: &OrderId,
) -> Result<Option<Order>, PaymentError> {
    for _ in 0..RACE_RETRIES {
        let Some(order) = orders.order(order_id).await? else {
            return Ok(None);
        };
        if !order.status.awaits_payment() || order.reservation_holds(clock.now()) {
            return Ok(Some(order));
        }
        let expired = Order {
            status: OrderStatus::Expired,
            version: order.version + 1,
            ..order.clone()
        };
        match orders
            .release_order(&expired, order.version, &reservations(store, &order))
            .await
        {
            Ok(()) => return Ok(Some(expired)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(PaymentError::Contended)
}

/// The stock an order holds, from the catalogue's limits.
pub fn reservations(store: &Store, order: &Order) -> Vec<Reservation> {
    order
        .lines
        .iter()
        .filter_map(|line| {
            let limit = store.product(&line.sku)?.stock?;
            Some(Reservation {
                sku: line.sku.clone(),
                quantity: line.quantity.get(),
                limit,
            })
        })
        .collect()
}
