//! The seller's side of a shipment: mark an order's physical lines shipped (with the carrier's
//! tracking link), then delivered. Each step mails the buyer once, and never goes backward.

use super::{update_order, Updated};
use crate::config::Store;
use crate::domain::{LineState, Order, OrderId, OrderStatus, Parcel};
use crate::ports::{Clock, Message, OrderStore, Queue, QueueError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("there is no order {0}")]
    UnknownOrder(OrderId),
    #[error("order {id} is {status}: only an order awaiting shipment can be shipped")]
    NotAwaitingShipment { id: OrderId, status: OrderStatus },
    #[error("order {id} is {status}: only a shipped order can be delivered")]
    NotShipped { id: OrderId, status: OrderStatus },
    #[error("order {0} was shipped with another parcel ({1})")]
    ShippedOtherwise(OrderId, String),
    #[error("unknown carrier `{0}`; the store's carriers are: {1}")]
    UnknownCarrier(String, String),
    #[error("the tracking number must be 1 to 64 letters, digits, spaces or `-`")]
    BadTracking,
    #[error("the order kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What a ship or deliver call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shipped {
    /// The order moved on; its mail is queued.
    Moved(Box<Order>),
    /// It was already there (a repeated command); nothing changed.
    Already(Box<Order>),
}

impl Shipped {
    pub fn order(&self) -> &Order {
        match self {
            Shipped::Moved(o) | Shipped::Already(o) => o,
        }
    }
}

/// Marks the order's physical lines shipped in one parcel, with its tracking link.
pub async fn ship_order<S: OrderStore, Q: Queue, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    clock: &C,
    id: &OrderId,
    carrier: &str,
    tracking: &str,
) -> Result<Shipped, ShipError> {
    let carrier = carrier.trim().to_ascii_lowercase();
    let tracking = tracking.trim();
    let valid = !tracking.is_empty()
        && tracking.len() <= 64
        && tracking
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ');
    if !valid {
        return Err(ShipError::BadTracking);
    }
    let carriers = store
        .shipping
        .as_ref()
        .map(|s| s.carriers.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    if !carriers.is_empty() && !carriers.contains(&carrier) {
        return Err(ShipError::UnknownCarrier(carrier, carriers.join(", ")));
    }
    let tracking_url = store
        .shipping
        .as_ref()
        .and_then(|s| s.tracking_url(&carrier, tracking));
    let parcel = Parcel {
        carrier: carrier.clone(),
        tracking: tracking.to_owned(),
        tracking_url,
        shipped_at: clock.now(),
    };
    advance(orders, queue, id, |order| {
        if order.status == OrderStatus::Shipped || order.status == OrderStatus::Delivered {
            let same = order
                .shipping
                .as_ref()
                .and_then(|s| s.parcel.as_ref())
                .is_some_and(|p| p.carrier == parcel.carrier && p.tracking == parcel.tracking);
            return if same {
                Ok(None)
            } else {
                Err(ShipError::ShippedOtherwise(
                    order.id.clone(),
                    order.status.to_string(),
                ))
            };
        }
        if order.status != OrderStatus::AwaitingShipment || order.shipping.is_none() {
            return Err(ShipError::NotAwaitingShipment {
                id: order.id.clone(),
                status: order.status,
            });
        }
        let mut next = order.clone();
        for line in &mut next.lines {
            if line.state == LineState::AwaitingShipment {
                line.state = LineState::Shipped;
            }
        }
        if let Some(shipping) = next.shipping.as_mut() {
            shipping.parcel = Some(parcel.clone());
        }
        next.status = OrderStatus::Shipped;
        Ok(Some(next))
    })
    .await
}

/// Marks a shipped order delivered.
pub async fn deliver_order<S: OrderStore, Q: Queue, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    clock: &C,
    id: &OrderId,
) -> Result<Shipped, ShipError> {
    let now = clock.now();
    advance(orders, queue, id, |order| match order.status {
        OrderStatus::Delivered => Ok(None),
        OrderStatus::Shipped => {
            let mut next = order.clone();
            for line in &mut next.lines {
                if line.state == LineState::Shipped {
                    line.state = LineState::Delivered;
                }
            }
            if let Some(shipping) = next.shipping.as_mut() {
                shipping.delivered_at = Some(now);
            }
            next.status = OrderStatus::Delivered;
            if !next.review_mailed {
                next.review_at = store.review_at(&next, now);
            }
            Ok(Some(next))
        }
        status => Err(ShipError::NotShipped {
            id: order.id.clone(),
            status,
        }),
    })
    .await
}

/// Moves the order on with `step` (`None`: already there), then queues the mail the step is
/// due; a repeat queues it too, since it goes out once whatever happens.
async fn advance<S: OrderStore, Q: Queue>(
    orders: &S,
    queue: &Q,
    id: &OrderId,
    step: impl Fn(&Order) -> Result<Option<Order>, ShipError>,
) -> Result<Shipped, ShipError> {
    let shipped = match update_order(orders, id, |order| {
        let next = step(order)?;
        debug_assert!(next
            .as_ref()
            .is_none_or(|n| order.status.can_move_to(n.status)));
        Ok::<_, ShipError>(next)
    })
    .await?
    {
        Updated::Saved(order) => Shipped::Moved(Box::new(order)),
        Updated::Unchanged(order) => Shipped::Already(Box::new(order)),
        Updated::Missing => return Err(ShipError::UnknownOrder(id.clone())),
        Updated::Contended => return Err(ShipError::Contended),
    };
    queue
        .send(&Message::SendMail {
            order_id: id.clone(),
        })
        .await?;
    Ok(shipped)
}
