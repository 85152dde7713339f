//! Timed work, found through the due index and done through the same use cases as
//! everything else: the scheduler function runs it every minute on AWS, the dev stack on a
//! timer: unpaid orders whose reservation ran out are expired and their stock released
//! (once their gateway says nothing was paid), and bank transfers get their reminders.

use super::expiry::Expiry;
use super::payment::PaymentError;
use super::reminders::remind_if_due;
use crate::domain::OrderStatus;
use crate::ports::{
    Clock, DueOrders, OrderStore, PaymentGateway, Queue, Refunds, StoreError, Suppressions,
    WorkClaims,
};
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
    /// Recovery mails queued for abandoned checkouts.
    pub recovery_mails: usize,
    /// Review requests queued after delivery.
    pub review_requests: usize,
    /// Work left undone that the reconciler queued again (a paid order not delivered, a mail
    /// or text not sent, a claim whose worker died).
    pub repaired: usize,
    /// Gateway events the store had missed, applied now (by an events sweep).
    pub missed_events: usize,
    /// Of those, left for the next run after an error.
    pub failed: usize,
}

/// Does the work due by now. Two overlapping runs do nothing twice: each expiry is one
/// conditional write of the order and its stock, which only one of them wins.
pub async fn run_due_work<S, Q, G, C>(work: &Expiry<'_, S, Q, G, C>) -> Result<Ran, StoreError>
where
    S: OrderStore + DueOrders + WorkClaims + Suppressions,
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
                match remind_if_due(work.store, work.orders, work.queue, work.clock, order).await {
                    Ok(reminded) => {
                        ran.reminded += usize::from(reminded);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        // The recovery mail of an abandoned checkout, whatever its order's state.
        let done = match done {
            Ok(()) => recover(work, id).await.map(|queued| {
                ran.recovery_mails += usize::from(queued);
            }),
            Err(e) => Err(e),
        };
        // The review request of a delivered order.
        let done = match done {
            Ok(()) => ask_review(work, id).await.map(|queued| {
                ran.review_requests += usize::from(queued);
            }),
            Err(e) => Err(e),
        };
        // Then the reconciler's look, on the order as it now is.
        let done = match done {
            Ok(()) => check(work, id).await.map(|repaired| {
                ran.repaired += usize::from(repaired);
            }),
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
            repaired = ran.repaired,
            failed = ran.failed,
            "due work done"
        );
    }
    Ok(ran)
}

/// The reconciler's look at one due order, read fresh (expiry or a reminder may have just
/// written it); says whether it repaired something.
async fn check<S, Q, G, C>(
    work: &Expiry<'_, S, Q, G, C>,
    id: &crate::domain::OrderId,
) -> Result<bool, PaymentError>
where
    S: OrderStore + WorkClaims,
    Q: Queue,
    C: Clock,
{
    let Some(order) = work.orders.order(id).await? else {
        return Ok(false);
    };
    let repaired =
        super::reconcile::check_if_due(work.store, work.orders, work.queue, work.clock, order)
            .await?;
    Ok(repaired.is_some())
}

/// The order's recovery mail, if due (read fresh); says whether it was queued.
async fn recover<S, Q, G, C>(
    work: &Expiry<'_, S, Q, G, C>,
    id: &crate::domain::OrderId,
) -> Result<bool, PaymentError>
where
    S: OrderStore + Suppressions,
    Q: Queue,
    C: Clock,
{
    match work.orders.order(id).await? {
        Some(order) if order.recovery_at.is_some() => {
            super::recovery::recover_if_due(work.orders, work.queue, work.clock, order).await
        }
        _ => Ok(false),
    }
}

/// The order's review request, if due (read fresh); says whether it was queued.
async fn ask_review<S, Q, G, C>(
    work: &Expiry<'_, S, Q, G, C>,
    id: &crate::domain::OrderId,
) -> Result<bool, PaymentError>
where
    S: OrderStore + Suppressions,
    Q: Queue,
    C: Clock,
{
    match work.orders.order(id).await? {
        Some(order) if order.review_at.is_some() => {
            super::reviews::review_if_due(work.orders, work.queue, work.clock, order).await
        }
        _ => Ok(false),
    }
}

/// Whether a run at `now` also sweeps the gateway's events: the first run of each hour.
pub fn sweeps_events_at(now: i64) -> bool {
    now.rem_euclid(3600) < 60
}

/// The reconciler's sweep of the gateway's recent events (see
/// [`super::reconcile::apply_missed_events`]), counted into `ran`.
pub async fn sweep_events<S, Q, G, C>(work: &Expiry<'_, S, Q, G, C>, ran: &mut Ran)
where
    S: OrderStore,
    Q: Queue,
    G: PaymentGateway + Refunds,
    C: Clock,
{
    match super::reconcile::apply_missed_events(
        work.store,
        work.orders,
        work.queue,
        work.gateway,
        work.clock,
    )
    .await
    {
        Ok(missed) => ran.missed_events += missed,
        Err(e) => {
            tracing::warn!(error = %e, "the gateway's events could not be swept; the next hour tries again");
            ran.failed += 1;
        }
    }
}

impl Ran {
    /// Everything the reconciler put right in this run.
    pub fn repairs(&self) -> usize {
        self.repaired + self.missed_events
    }

    /// The run as one CloudWatch embedded-metric-format log line: a `Repaired` count in the
    /// `Nightshift` namespace, by stage. Written only when something was repaired, so that a
    /// store where nothing goes wrong pays for no custom metric at all.
    pub fn metric_line(&self, stage: &str, now_millis: i64) -> Option<String> {
        if self.repairs() == 0 {
            return None;
        }
        Some(
            serde_json::json!({
                "_aws": {
                    "Timestamp": now_millis,
                    "CloudWatchMetrics": [{
                        "Namespace": "Nightshift",
                        "Dimensions": [["Stage"]],
                        "Metrics": [{ "Name": "Repaired", "Unit": "Count" }],
                    }],
                },
                "Stage": stage,
                "Repaired": self.repairs(),
                "RepairedWork": self.repaired,
                "MissedEvents": self.missed_events,
            })
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_line_is_embedded_metric_format_and_only_written_for_repairs() {
        assert_eq!(Ran::default().metric_line("prod", 1), None);
        let ran = Ran {
            repaired: 2,
            missed_events: 1,
            ..Ran::default()
        };
        let line: serde_json::Value =
            serde_json::from_str(&ran.metric_line("prod", 1_700_000_000_000).unwrap()).unwrap();
        assert_eq!(line["Repaired"], 3);
        assert_eq!(line["Stage"], "prod");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Nightshift");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Stage"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "Repaired");
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000_i64);
    }

    #[test]
    fn the_events_sweep_is_the_first_run_of_each_hour() {
        assert!(sweeps_events_at(7200));
        assert!(sweeps_events_at(7259));
        assert!(!sweeps_events_at(7260));
        assert!(!sweeps_events_at(10_799));
    }
}
