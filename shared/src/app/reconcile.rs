//! The reconciler: it sees that work queued for an order was done, and puts back on its
//! queue what was not (a paid order left unfulfilled, a mail or text left unsent, a claim
//! whose worker died), and it asks the gateway for payment events the store never got.
//! Whatever it repairs it counts, so that a seller sees something went wrong and was fixed.

use super::payment::{apply_payment_event, Applied, PaymentError};
use super::{update_order_from, Updated};
use crate::config::Store;
use crate::domain::{Order, OrderStatus, CHECK_AFTER_SECONDS};
use crate::ports::{
    Clock, Message, OrderStore, PaymentGateway, Queue, Refunds, StoreError, WorkClaims,
};
use serde::Serialize;

/// Looks after which the reconciler stops looking at an order (the last some 5 hours after
/// the first): what is still undone then needs the seller, and was logged as such.
const MAX_CHECKS: u32 = 6;

/// How far back the gateway is asked for events: Stripe keeps retrying a webhook for three
/// days, so anything older was either delivered or given up by Stripe itself.
pub const EVENTS_LOOKBACK_SECONDS: i64 = 3 * 86_400;

/// What the reconciler put back on a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// A paid order whose delivery nobody is doing.
    Fulfilment,
    /// Mails or texts due that nobody sent.
    Messages,
}

/// Looks at the order if its check is due: puts back what was left undone, and sets the next
/// look (later each time) or none once all is done. Gives what it repaired, if anything.
pub async fn check_if_due<S: OrderStore + WorkClaims, Q: Queue, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    clock: &C,
    order: Order,
) -> Result<Option<Repair>, PaymentError> {
    let now = clock.now();
    let Some(at) = order.check_at.filter(|at| *at <= now) else {
        return Ok(None);
    };
    let (repair, in_progress) = left_undone(store, orders, &order, now).await?;
    if let Some(repair) = repair {
        let order_id = order.id.clone();
        let message = match repair {
            Repair::Fulfilment => Message::FulfilOrder { order_id },
            Repair::Messages => Message::SendMail { order_id },
        };
        queue.send(&message).await?;
        tracing::warn!(order_id = %order.id, ?repair, "reconciler: work left undone was queued again");
    }
    let id = order.id.clone();
    let updated = update_order_from(orders, &id, Some(order), |o| {
        // New work queued since this look was planned has its own check: leave it.
        if o.check_at != Some(at) {
            return Ok::<_, StoreError>(None);
        }
        let mut next = o.clone();
        if repair.is_none() && !in_progress {
            next.check_at = None;
            next.checks = 0;
        } else if o.checks + 1 >= MAX_CHECKS {
            tracing::error!(order_id = %o.id, "reconciler: work still undone after every look; the seller must see to it");
            next.check_at = None;
        } else {
            next.checks = o.checks + 1;
            next.check_at = Some(now + (CHECK_AFTER_SECONDS << next.checks));
        }
        Ok(Some(next))
    })
    .await?;
    match updated {
        Updated::Contended => Err(PaymentError::Contended),
        _ => Ok(repair),
    }
}

/// What of the order's queued work nobody is doing (and so must be queued again), and
/// whether some is still in progress.
async fn left_undone<S: OrderStore + WorkClaims>(
    store: &Store,
    orders: &S,
    order: &Order,
    now: i64,
) -> Result<(Option<Repair>, bool), StoreError> {
    if order.status == OrderStatus::Paid && order.lines.iter().any(|l| !l.state.is_settled()) {
        let steps = super::fulfil::outside_steps(store, order);
        // Steps inside Nightshift finish within a run; ones outside hold a claim meanwhile.
        if steps.is_empty() || !orders.unfinished(&order.id, &steps, now).await?.is_empty() {
            return Ok((Some(Repair::Fulfilment), false));
        }
        return Ok((None, true));
    }
    let mut keys: Vec<String> = super::mail::plan(store, order)
        .into_iter()
        .map(|m| m.key)
        .collect();
    keys.extend(super::texts::plan(order).into_iter().map(|(key, _)| key));
    if keys.is_empty() {
        return Ok((None, false));
    }
    let left = orders.unfinished(&order.id, &keys, now).await?;
    Ok(((!left.is_empty()).then_some(Repair::Messages), false))
}

/// Asks the gateway for the payment events of the last three days and applies each through
/// the normal path: one the store never got is applied now, the rest are repeats that change
/// nothing. Gives how many were new.
pub async fn apply_missed_events<S, Q, G, C>(
    store: &Store,
    orders: &S,
    queue: &Q,
    gateway: &G,
    clock: &C,
) -> Result<usize, PaymentError>
where
    S: OrderStore,
    Q: Queue,
    G: PaymentGateway + Refunds,
    C: Clock,
{
    let events = gateway
        .recent_events(clock.now() - EVENTS_LOOKBACK_SECONDS)
        .await?;
    let mut missed = 0;
    for event in &events {
        match apply_payment_event(store, orders, queue, gateway, clock, event).await? {
            Applied::Duplicate | Applied::UnknownOrder => {}
            applied => {
                tracing::warn!(order_id = %event.order_id, event_id = %event.event_id, ?applied, "reconciler: a payment event the store had missed was applied");
                missed += 1;
            }
        }
    }
    Ok(missed)
}

/// After the dev stack restarts on its data folder: every order whose work may have been in
/// flight when it stopped is queued again at once (a paid order not yet delivered, an order
/// with mail or texts due), not only when its check comes due. Queued work that was in fact
/// done finds its claims done and does nothing.
pub async fn requeue_after_restart<Q: Queue>(
    store: &Store,
    orders: &[Order],
    queue: &Q,
) -> Result<usize, crate::ports::QueueError> {
    let mut queued = 0;
    for order in orders {
        let order_id = order.id.clone();
        let message = if order.status == OrderStatus::Paid
            && order.lines.iter().any(|l| !l.state.is_settled())
        {
            Message::FulfilOrder { order_id }
        } else if !super::mail::plan(store, order).is_empty()
            || !super::texts::plan(order).is_empty()
        {
            Message::SendMail { order_id }
        } else {
            continue;
        };
        queue.send(&message).await?;
        queued += 1;
    }
    Ok(queued)
}
