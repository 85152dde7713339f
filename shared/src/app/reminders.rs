//! Reminders to a buyer whose bank transfer has not arrived: at the times `[reminders]
//! bank_transfer` sets before the deadline, each once, and never after the order is paid.

use super::payment::PaymentError;
use super::{update_order_from, Updated};
use crate::config::Store;
use crate::domain::{Order, OrderStatus};
use crate::ports::{Clock, Message, OrderStore, Queue, StoreError};

/// Counts the order's next reminder as due, if its time has come, and queues its mail (and
/// text). The count moves in one conditional write of the order, so of two runs that find
/// the same reminder due, one counts it; the mailer then sends each counted reminder once,
/// and none once the order is paid. Says whether a reminder was counted.
pub async fn remind_if_due<S: OrderStore, Q: Queue, C: Clock>(
    store: &Store,
    orders: &S,
    queue: &Q,
    clock: &C,
    order: Order,
) -> Result<bool, PaymentError> {
    let now = clock.now();
    let id = order.id.clone();
    let updated = update_order_from(orders, &id, Some(order), |o| {
        if o.status != OrderStatus::AwaitingTransfer || o.next_reminder_at.is_none_or(|t| t > now) {
            return Ok::<_, StoreError>(None);
        }
        let mut next = o.clone();
        next.reminders_sent += 1;
        next.check_later(now);
        // A run that came late skips the reminders it missed: one reminder, the latest.
        next.next_reminder_at = store
            .reminders
            .next_transfer_reminder(o.reserved_until, now);
        Ok(Some(next))
    })
    .await?;
    match updated {
        Updated::Saved(order) => {
            queue
                .send(&Message::SendMail {
                    order_id: order.id.clone(),
                })
                .await?;
            tracing::info!(order_id = %order.id, reminder = order.reminders_sent, "transfer reminder due");
            Ok(true)
        }
        Updated::Contended => Err(PaymentError::Contended),
        Updated::Unchanged(_) | Updated::Missing => Ok(false),
    }
}
