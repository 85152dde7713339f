//! Payment: open a hosted session for an order, apply verified gateway events at most once
//! and only forward, and expire orders whose reservation ran out.

use crate::config::Store;
use crate::domain::{Order, OrderId, OrderStatus, PaymentEvent, PaymentOutcome, SeenEvent};
use crate::ports::ByHand;
use crate::ports::{
    Clock, GatewayError, Message, OrderStore, PaymentGateway, Queue, QueueError, Refunds,
    Reservation, StoreError,
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
    #[error(transparent)]
    Transition(#[from] crate::domain::TransitionRefused),
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

/// Applies a verified payment event at most once. Money that arrives after its order expired
/// follows the store's `late_payment` policy, refunded through `refunds` when it says so.
pub async fn apply_payment_event<S: OrderStore, Q: Queue, R: Refunds, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    refunds: &R,
    clock: &C,
    event: &PaymentEvent,
) -> Result<Applied, PaymentError> {
    for _ in 0..RACE_RETRIES {
        let Some(order) = orders.order(&event.order_id).await? else {
            return Ok(Applied::UnknownOrder);
        };
        if order.has_seen(event) {
            // A repeat may follow a delivery whose enqueue failed after the write: send the
            // follow-up work again. Fulfilment and mail are idempotent, so this is safe.
            follow_up(store, queue, &order, true).await?;
            return Ok(Applied::Duplicate);
        }
        let decision = decide(&order, event, clock.now());
        if decision.late {
            let late = super::expiry::LatePayment {
                store,
                orders,
                queue,
                refunds,
                clock,
            };
            match late.apply(&order, event).await? {
                Some(applied) => return Ok(applied),
                None => continue,
            }
        }
        // The event is kept on the order in the same conditional write that applies it:
        // of two deliveries racing, one writes and the other re-reads it as a repeat.
        let mut updated = Order {
            version: order.version + 1,
            ..decision.order.clone()
        };
        updated.events.push(SeenEvent {
            id: SeenEvent::key(event),
            at: clock.now(),
        });
        let mails = decision.moved.is_some() || decision.alert;
        if queues_work(store, &updated, mails) {
            updated.check_later(clock.now());
        }
        // Stock moves in the same write as the payment: an expired order gives its units
        // back, a paid one stops holding them (they are sold).
        let written = match decision.moved {
            Some(OrderStatus::Expired) => {
                let release = reservations(store, &order);
                orders
                    .release_order(&updated, order.version, &release)
                    .await
            }
            Some(OrderStatus::Paid) => {
                let sold = reservations(store, &order);
                orders.save_paid_order(&updated, order.version, &sold).await
            }
            _ => orders.save_order(&updated, order.version).await,
        };
        match written {
            Ok(()) => {
                follow_up(store, queue, &updated, mails).await?;
                if let Some(note) = &decision.note {
                    tracing::warn!(order_id = %order.id, event_id = %event.event_id, note, "payment event not applied");
                }
                return Ok(match decision.moved {
                    Some(status) => Applied::Moved(status),
                    None => Applied::Recorded(decision.note.unwrap_or_default()),
                });
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(PaymentError::Contended)
}

/// The success page's fast path: a buyer back from the gateway (with its `query`) while the
/// order still awaits its webhook. The gateway's own answer is applied as the webhook's
/// would be (same event id, so at most once). Failures only log: the webhook still comes.
/// Gives the order as it now is, and whether the gateway recognised the return (or could not
/// be asked), so that the page knows to wait for the payment.
pub async fn apply_return<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    gateway: &G,
    clock: &C,
    order: Order,
    query: &str,
) -> (Order, bool) {
    if !order.status.takes_card_payment() {
        return (order, false);
    }
    let event = match gateway.returned(&order, query).await {
        Ok(Some(event)) => event,
        Ok(None) => return (order, false),
        Err(e) => {
            tracing::warn!(order_id = %order.id, error = %e, "could not ask the gateway about the return");
            return (order, true);
        }
    };
    match apply_payment_event(store, orders, queue, gateway, clock, &event).await {
        Ok(applied) => {
            tracing::info!(order_id = %order.id, event_id = %event.event_id, ?applied, "payment applied on return");
            match orders.order(&order.id).await {
                Ok(Some(fresh)) => (fresh, true),
                _ => (order, true),
            }
        }
        Err(e) => {
            tracing::warn!(order_id = %order.id, error = %e, "payment on return not applied");
            (order, true)
        }
    }
}

/// Whether [`follow_up`] queues anything for the order.
pub(super) fn queues_work(store: &Store, order: &Order, mail: bool) -> bool {
    order.status == OrderStatus::Paid || (mail && !super::mail::plan(store, order).is_empty())
}

/// Queues the work an order's payment state calls for: fulfilment once it is paid, and
/// (when `mail` is set) the mails it is due, such as the declined notice or a payment alert.
pub(super) async fn follow_up<Q: Queue>(
    store: &Store,
    queue: &Q,
    order: &Order,
    mail: bool,
) -> Result<(), QueueError> {
    let message = if order.status == OrderStatus::Paid {
        Message::FulfilOrder {
            order_id: order.id.clone(),
        }
    } else if mail && !super::mail::plan(store, order).is_empty() {
        Message::SendMail {
            order_id: order.id.clone(),
        }
    } else {
        return Ok(());
    };
    queue.send(&message).await
}

/// What an event does to an order.
struct Decision {
    /// The order as the event leaves it (before the version bump); written if it differs.
    order: Order,
    moved: Option<OrderStatus>,
    /// Why the event did not move the order.
    note: Option<String>,
    /// The note was added to the order's payment problems, for the seller.
    alert: bool,
    /// Money for an expired order: the store's `late_payment` policy decides.
    late: bool,
}

/// The status an event moves the order to, or why it does not. Money that arrives where it
/// cannot be applied (wrong amount, expired or already paid order) is a problem for the seller.
fn decide(order: &Order, event: &PaymentEvent, now: i64) -> Decision {
    use OrderStatus::*;
    let status = order.status;
    let to = |s: OrderStatus| (Some(s), None);
    let refused = |why: String| (None, Some(why));
    let (moved, note) = match &event.outcome {
        PaymentOutcome::Approved { amount } if *amount != order.total => refused(format!(
            "{} payment {} of {amount} does not match the order total {}; the order was not marked paid. Check the payment and refund it.",
            event.gateway, event.event_id, order.total
        )),
        PaymentOutcome::Approved { .. } if status == Expired => {
            refused("paid after the order expired".into())
        }
        PaymentOutcome::Approved { .. } if status.can_move_to(Paid) => to(Paid),
        PaymentOutcome::Approved { amount } if status.is_paid() => refused(format!(
            "a second {} payment {} of {amount} arrived for an order that is already paid; refund it.",
            event.gateway, event.event_id
        )),
        PaymentOutcome::Approved { amount } => refused(format!(
            "{} payment {} of {amount} arrived for an order that is {status}; its stock was released, so refund it or fulfil the order by hand.",
            event.gateway, event.event_id
        )),
        PaymentOutcome::Processing if status.can_move_to(PaymentProcessing) => {
            to(PaymentProcessing)
        }
        PaymentOutcome::Declined { .. } if status.can_move_to(Declined) => to(Declined),
        PaymentOutcome::Expired if status.can_expire() && !order.reservation_holds(now) => {
            to(Expired)
        }
        PaymentOutcome::Expired if status.can_expire() => refused(
            "an earlier payment session expired; the order's reservation still holds".into(),
        ),
        PaymentOutcome::Refunded { total } => refused(format!("refunded {total} in total")),
        _ => refused(format!("no effect on an order that is {status}")),
    };
    let mut next = order.clone();
    if let Some(status) = moved {
        next.status = status;
        // Reminders are only for a transfer still awaited, which no move returns to.
        next.next_reminder_at = None;
        next.decline_notice |= status == Declined && order.status == PaymentProcessing;
    }
    let late = status == Expired
        && matches!(&event.outcome, PaymentOutcome::Approved { amount } if *amount == order.total);
    let alert =
        !late && moved.is_none() && matches!(event.outcome, PaymentOutcome::Approved { .. });
    if alert {
        next.payment_issues.extend(note.clone());
    }
    if let PaymentOutcome::Refunded { total } = &event.outcome {
        // Stripe reports the total refunded so far; a late, smaller figure changes nothing.
        if order
            .refunded
            .is_none_or(|r| r.currency() != total.currency() || r.minor() < total.minor())
        {
            next.refunded = Some(*total);
        }
    }
    Decision {
        order: next,
        moved,
        note,
        alert,
        late,
    }
}

/// Where to send a buyer who wants to pay (or retry): the gateway's page while the
/// reservation holds, else back to the order page.
pub async fn open_payment<S: OrderStore, Q: Queue, G: PaymentGateway + Refunds, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    gateway: &G,
    clock: &C,
    order_id: &OrderId,
    order_url: &str,
) -> Result<String, PaymentError> {
    let expiry = super::expiry::Expiry {
        store,
        orders,
        queue,
        gateway,
        clock,
    };
    let Some(order) = expiry.expire_if_due(order_id).await? else {
        return Ok(order_url.to_owned());
    };
    open_payment_for(orders, gateway, clock, order, order_url).await
}

/// As [`open_payment`], for an order the caller has just read through
/// [`super::expiry::Expiry::expire_read_order_if_due`] (the order page has): one read fewer.
/// A copy gone stale costs a failed write and a re-read.
pub async fn open_payment_for<S: OrderStore, G: PaymentGateway, C: Clock>(
    orders: &S,
    gateway: &G,
    clock: &C,
    order: Order,
    order_url: &str,
) -> Result<String, PaymentError> {
    if !order.status.takes_card_payment() {
        return Ok(order_url.to_owned());
    }
    let order = cover_session(orders, clock, order, gateway.minimum_session_seconds()).await?;
    if !order.status.takes_card_payment() {
        return Ok(order_url.to_owned());
    }
    let session = gateway.open_session(&order, order_url).await?;
    remember_session(orders, gateway, order, &session.id).await?;
    Ok(session.url)
}

/// Most sessions an order remembers; the oldest are forgotten first (each expired by Stripe
/// when its own `expires_at` passed, which is never after the order's reservation).
const REMEMBERED_SESSIONS: usize = 20;

/// Keeps the id of a session just opened for the order, for a gateway that can be asked
/// about it before the order expires. A session the order knows already costs no write.
pub async fn remember_session<S: OrderStore, G: PaymentGateway>(
    orders: &S,
    gateway: &G,
    order: Order,
    session_id: &str,
) -> Result<(), PaymentError> {
    if !gateway.remembers_sessions() {
        return Ok(());
    }
    let updated = super::update_order_from(orders, &order.id.clone(), Some(order), |o| {
        if o.gateway_sessions.iter().any(|s| s == session_id) {
            return Ok::<_, StoreError>(None);
        }
        let mut next = o.clone();
        next.gateway_sessions.push(session_id.to_owned());
        let excess = next
            .gateway_sessions
            .len()
            .saturating_sub(REMEMBERED_SESSIONS);
        next.gateway_sessions.drain(..excess);
        Ok(Some(next))
    })
    .await?;
    match updated {
        super::Updated::Contended => Err(PaymentError::Contended),
        _ => Ok(()),
    }
}

/// How long a reservation extended for a gateway session stays long enough for another one:
/// a second click on the pay link inside this window reuses the first session (same order
/// version, same idempotency key, same parameters) instead of opening a second.
const SESSION_REUSE_SECONDS: i64 = 10 * 60;

/// Until when an order opening a session at `now` must hold its stock, for a gateway that
/// keeps sessions open at least `seconds`: the session's time plus a minute for clock skew,
/// and the reuse window. `now` itself for a gateway without a minimum.
pub fn session_hold_until(now: i64, seconds: i64) -> i64 {
    if seconds <= 0 {
        return now;
    }
    now + seconds + 60 + SESSION_REUSE_SECONDS
}

/// Extends the order's reservation, if need be, to outlast a session the gateway keeps open
/// for at least `seconds` (plus a minute for clock skew), so the session expires first.
async fn cover_session<S: OrderStore, C: Clock>(
    orders: &S,
    clock: &C,
    mut order: Order,
    seconds: i64,
) -> Result<Order, PaymentError> {
    if seconds <= 0 {
        return Ok(order);
    }
    for _ in 0..RACE_RETRIES {
        let needed = clock.now() + seconds + 60;
        if order.reserved_until >= needed || !order.status.takes_card_payment() {
            return Ok(order);
        }
        let extended = Order {
            reserved_until: session_hold_until(clock.now(), seconds),
            version: order.version + 1,
            ..order.clone()
        };
        match orders.save_order(&extended, order.version).await {
            Ok(()) => return Ok(extended),
            Err(StoreError::Conflict) => {
                order = match orders.order(&order.id).await? {
                    Some(o) => o,
                    None => return Ok(order),
                }
            }
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
                method: order.payment_method,
            })
        })
        .collect()
}

/// Name under which a seller's confirmation of a bank transfer is recorded.
pub const BANK_TRANSFER: &str = "bank_transfer";

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("there is no order {0}")]
    UnknownOrder(OrderId),
    #[error("order {0} is not paid by bank transfer")]
    NotATransfer(OrderId),
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// The seller saw the transfer arrive: the order's total is applied as a paid event, on the
/// same path as a gateway's (recorded once; an expired order is not revived but flagged).
pub async fn confirm_transfer<S: OrderStore, Q: Queue, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    clock: &C,
    order_id: &OrderId,
) -> Result<(Applied, Order), ConfirmError> {
    let order = orders
        .order(order_id)
        .await
        .map_err(PaymentError::from)?
        .ok_or_else(|| ConfirmError::UnknownOrder(order_id.clone()))?;
    if order.payment_method != crate::domain::PaymentMethod::BankTransfer {
        return Err(ConfirmError::NotATransfer(order_id.clone()));
    }
    let event = PaymentEvent {
        gateway: BANK_TRANSFER.into(),
        event_id: "confirmed".into(),
        order_id: order_id.clone(),
        outcome: PaymentOutcome::Approved {
            amount: order.total,
        },
        payment_ref: None,
    };
    let applied = apply_payment_event(store, orders, queue, &ByHand, clock, &event).await?;
    let order = orders
        .order(order_id)
        .await
        .map_err(PaymentError::from)?
        .unwrap_or(order);
    Ok((applied, order))
}
