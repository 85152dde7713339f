//! The end of an unpaid order's reservation, and money that comes after it.
//!
//! An order is expired (its stock given back) only once nothing can pay it any more: each
//! payment session the gateway keeps for it is asked first, and closed. A session found
//! paid pays the order, through the same path as its webhook. Money that still arrives after
//! expiry (a webhook that came late, a transfer confirmed after the deadline) is never lost:
//! the store's `late_payment` policy takes the stock again and fulfils the order, refunds the
//! money with a mail to the buyer, or holds it for the seller.

use super::payment::{apply_payment_event, follow_up, reservations, Applied, PaymentError};
use crate::config::{LatePayment as Policy, Store};
use crate::domain::{Order, OrderId, OrderStatus, PaymentEvent, SeenEvent};
use crate::ports::{
    Clock, GatewayError, OrderStore, PaymentGateway, PlaceError, Queue, Refunds, StoreError,
};

/// Lost races an expiry retries before giving up.
const RACE_RETRIES: usize = 16;

/// What expiring orders needs.
pub struct Expiry<'a, S, Q, G, C> {
    pub store: &'a Store,
    pub orders: &'a S,
    pub queue: &'a Q,
    pub gateway: &'a G,
    pub clock: &'a C,
}

impl<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds, C: Clock> Expiry<'_, S, Q, G, C> {
    /// Reads the order and, if it is unpaid past its reservation, expires it and gives its
    /// stock back, unless its gateway says it was paid. Gives the order as it now is.
    pub async fn expire_if_due(&self, id: &OrderId) -> Result<Option<Order>, PaymentError> {
        match self.orders.order(id).await? {
            Some(order) => self.expire_read_order_if_due(order).await,
            None => Ok(None),
        }
    }

    /// As [`Expiry::expire_if_due`], for an order the caller has just read (one read fewer);
    /// it is read again only if it changed before it could be expired.
    pub async fn expire_read_order_if_due(
        &self,
        mut order: Order,
    ) -> Result<Option<Order>, PaymentError> {
        let mut asked = false;
        for _ in 0..RACE_RETRIES {
            if !order.status.can_expire() || order.reservation_holds(self.clock.now()) {
                return Ok(Some(order));
            }
            if !asked && !order.gateway_sessions.is_empty() {
                asked = true;
                if let Some(paid) = self.paid_session(&order).await? {
                    return Ok(Some(paid));
                }
            }
            let expired = Order {
                status: order.status.move_to(OrderStatus::Expired)?,
                version: order.version + 1,
                ..order.clone()
            };
            match self
                .orders
                .release_order(&expired, order.version, &reservations(self.store, &order))
                .await
            {
                Ok(()) => return Ok(Some(expired)),
                Err(StoreError::Conflict) => match self.orders.order(&order.id).await? {
                    Some(again) => order = again,
                    None => return Ok(None),
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(PaymentError::Contended)
    }

    /// Asks the gateway about each session opened for the order, newest first, closing the
    /// open ones. A payment found is applied (as its webhook would be) and the order as it
    /// then is returned; `None` when no session took money.
    async fn paid_session(&self, order: &Order) -> Result<Option<Order>, PaymentError> {
        for id in order.gateway_sessions.iter().rev() {
            let Some(event) = self.gateway.close_session(order, id).await? else {
                continue;
            };
            tracing::info!(order_id = %order.id, event_id = %event.event_id, "a payment found before expiry");
            apply_payment_event(
                self.store,
                self.orders,
                self.queue,
                self.gateway,
                self.clock,
                &event,
            )
            .await?;
            return Ok(self.orders.order(&order.id).await?);
        }
        Ok(None)
    }
}

/// What a payment for an expired order needs.
pub(super) struct LatePayment<'a, S, Q, R, C> {
    pub store: &'a Store,
    pub orders: &'a S,
    pub queue: &'a Q,
    pub refunds: &'a R,
    pub clock: &'a C,
}

impl<S: OrderStore, Q: Queue, R: Refunds, C: Clock> LatePayment<'_, S, Q, R, C> {
    /// Applies `event`, the whole total paid for `order` after it expired, as the store's
    /// policy says, recording the event in the same write. `None`: the order changed since
    /// it was read; read it again.
    pub async fn apply(
        &self,
        order: &Order,
        event: &PaymentEvent,
    ) -> Result<Option<Applied>, PaymentError> {
        let mut next = order.clone();
        next.version = order.version + 1;
        next.events.push(SeenEvent {
            id: SeenEvent::key(event),
            at: self.clock.now(),
        });
        let why = match self.store.payments.late_payment {
            Policy::FulfilIfInStock => {
                let mut paid = next.clone();
                paid.status = order.status.move_to(OrderStatus::Paid)?;
                paid.check_later(self.clock.now());
                let stock = reservations(self.store, order);
                match self
                    .orders
                    .save_late_paid_order(&paid, order.version, &stock)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(order_id = %order.id, event_id = %event.event_id, "a late payment took its stock again");
                        follow_up(self.store, self.queue, &paid, true).await?;
                        return Ok(Some(Applied::Moved(OrderStatus::Paid)));
                    }
                    Err(PlaceError::SoldOut(sku)) => format!(
                        "{} is no longer in stock, so the money is held: ship it when you can, or refund it",
                        sku
                    ),
                    Err(PlaceError::Store(StoreError::Conflict)) => return Ok(None),
                    Err(PlaceError::Store(e)) => return Err(e.into()),
                    Err(PlaceError::KeyUsed(_)) => return Ok(None),
                }
            }
            Policy::Refund => {
                let key = format!("nightshift-late-refund-{}", SeenEvent::key(event));
                match self.refunds.refund(event, &key).await {
                    Ok(()) => {
                        next.late_refund = Some(event_amount(event, order));
                        return self
                            .save(order, next, event, "refunded: it came after the order expired")
                            .await;
                    }
                    // Nothing is recorded: the gateway retries its webhook, and this with it.
                    Err(e @ GatewayError::Unavailable(_)) => return Err(e.into()),
                    Err(GatewayError::Refused(why)) => {
                        format!("the refund was refused ({why}), so the money is held: refund it by hand")
                    }
                }
            }
            Policy::Hold => {
                "the store holds late payments (`late_payment = \"hold\"`): fulfil the order by hand, or refund it".to_owned()
            }
        };
        let note = format!(
            "{} payment {} of {} arrived after order {} expired; {why}.",
            event.gateway,
            event.event_id,
            event_amount(event, order),
            order.id
        );
        next.payment_issues.push(note.clone());
        self.save(order, next, event, &note).await
    }

    /// Writes the order as the late payment leaves it (unpaid), and queues its mails.
    async fn save(
        &self,
        order: &Order,
        mut next: Order,
        event: &PaymentEvent,
        note: &str,
    ) -> Result<Option<Applied>, PaymentError> {
        next.check_later(self.clock.now());
        match self.orders.save_order(&next, order.version).await {
            Ok(()) => {
                tracing::warn!(order_id = %order.id, event_id = %event.event_id, note, "a payment came after expiry");
                follow_up(self.store, self.queue, &next, true).await?;
                Ok(Some(Applied::Recorded(note.to_owned())))
            }
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The money an approved event brought (the order's total, which the caller checked).
fn event_amount(event: &PaymentEvent, order: &Order) -> crate::domain::Money {
    match &event.outcome {
        crate::domain::PaymentOutcome::Approved { amount } => *amount,
        _ => order.total,
    }
}
