//! One mail asking for a review, `[reviews] after_days` after a digital order was fulfilled
//! or a parcel delivered, to buyers who have not unsubscribed from reminders.

use super::payment::PaymentError;
use super::{update_order_from, Updated};
use crate::domain::Order;
use crate::ports::{Clock, Message, OrderStore, Queue, StoreError, Suppressions};

/// Decides, once the time has come, whether the order's buyer is asked for a review, and
/// queues the mail; says whether it did.
pub async fn review_if_due<S: OrderStore + Suppressions, Q: Queue, C: Clock>(
    orders: &S,
    queue: &Q,
    clock: &C,
    order: Order,
) -> Result<bool, PaymentError> {
    let now = clock.now();
    if order.review_at.is_none_or(|at| at > now) {
        return Ok(false);
    }
    let wanted = !orders.is_suppressed(&order.email.digest()).await?;
    let id = order.id.clone();
    let updated = update_order_from(orders, &id, Some(order), |o| {
        if o.review_at.is_none_or(|at| at > now) {
            return Ok::<_, StoreError>(None);
        }
        let mut next = o.clone();
        next.review_at = None;
        next.review_mailed = wanted;
        if wanted {
            next.check_later(now);
        }
        Ok(Some(next))
    })
    .await?;
    match updated {
        Updated::Saved(order) if order.review_mailed => {
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
