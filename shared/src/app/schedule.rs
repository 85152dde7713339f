//! Timed work, found through the due index and done through the same use cases as
//! everything else: the scheduler function runs it every minute on AWS, the dev stack on a
//! timer: unpaid orders whose reservation ran out are expired and their stock released
//! (once their gateway says nothing was paid), and bank transfers get their reminders.

use super::expiry::Expiry;
use super::payment::PaymentError;
use super::reminders::remind_if_due;
use crate::domain::OrderStatus;
use crate::ports::{Clock, DueOrders, OrderStore, PaymentGateway, Queue, Refunds, StoreError};
use serde::Serialize;

/// Due orders one run takes at most: a run stays short, and the rest wait for the next.
pub const RUN_LIMIT: usize = 200;

/// What one run did, for its log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ran {
    /// Orders that were due.
    pub due: usize,
    /// Of those, expired with their stock back (by this run, or one overlapping it).
    pub expired: usize,
    /// Of those, found paid by their gateway when asked before expiry.
    pub paid: usize,
    /// Transfer reminders that came due.
    pub reminded: usize,
    /// Of those, left for the next run after an error.
    pub failed: usize,
}

/// Does the work due by now. Two overlapping runs do nothing twice: each expiry is one
/// conditional write of the order and its stock, which only one of them wins.
pub async fn run_due_work<S, Q, G, C>(work: &Expiry<'_, S, Q, G, C>) -> Result<Ran, StoreError>
where
    S: OrderStore + DueOrders,
    Q: Queue,
    G: PaymentGateway + Refunds,
    C: Clock,
{
    let due = work.orders.orders_due(work.clock.now(), RUN_LIMIT).await?;
    let mut ran = Ran {
        due: due.len(),
        ..Ran::default()
    };
    for id in &due {
        let done = match work.expire_if_due(id).await {
            Ok(Some(order)) if order.status == OrderStatus::Expired => {
                ran.expired += 1;
                Ok(())
            }
            Ok(Some(order)) if order.status.is_paid() => {
                ran.paid += 1;
                Ok(())
            }
            Ok(Some(order)) => {
                remind_if_due(work.store, work.orders, work.queue, work.clock, order)
                    .await
                    .map(|reminded| ran.reminded += usize::from(reminded))
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => {}
            Err(
                e @ (PaymentError::Store(_) | PaymentError::Contended | PaymentError::Gateway(_)),
            ) => {
                tracing::warn!(order_id = %id, error = %e, "due work failed; the next run tries again");
                ran.failed += 1;
            }
            Err(e) => {
                tracing::error!(order_id = %id, error = %e, "due work failed");
                ran.failed += 1;
            }
        }
    }
    if ran.due > 0 {
        tracing::info!(
            due = ran.due,
            expired = ran.expired,
            paid = ran.paid,
            reminded = ran.reminded,
            failed = ran.failed,
            "due work done"
        );
    }
    Ok(ran)
}
