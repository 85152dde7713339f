//! Translates a scheduled invocation into one run of the due work, and its summary back.

use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::system::SystemClock;
use shared::app::expiry::Expiry;
use shared::app::schedule::{run_due_work, sweep_events, sweeps_events_at, Ran};
use shared::config::Store;
use shared::ports::{
    Clock, DueOrders, OrderStore, PaymentGateway, Queue, Refunds, Suppressions, WorkClaims,
};

pub struct State<S, Q, G> {
    pub store: Store,
    pub orders: S,
    /// For the work due work leads to: fulfilment of a session found paid, mail.
    pub queue: Q,
    /// Asked about each payment session before its order expires, and for the events the
    /// store may have missed.
    pub gateway: G,
    /// Names the stage in the reconciler's metric.
    pub stage: String,
}

/// The event's content is not used: each run does what is due at the time it runs.
pub async fn handle<
    S: OrderStore + DueOrders + WorkClaims + Suppressions,
    Q: Queue,
    G: PaymentGateway + Refunds,
>(
    state: &State<S, Q, G>,
    _event: LambdaEvent<serde_json::Value>,
) -> Result<Ran, Error> {
    let work = Expiry {
        store: &state.store,
        orders: &state.orders,
        queue: &state.queue,
        gateway: &state.gateway,
        clock: &SystemClock,
    };
    // A failure is reported to Lambda (and so to its errors alarm); the next run tries again.
    let mut ran = run_due_work(&work).await?;
    let now = SystemClock.now();
    if sweeps_events_at(now) {
        sweep_events(&work, &mut ran).await;
    }
    // CloudWatch reads the repairs from this line (embedded metric format).
    if let Some(line) = ran.metric_line(&state.stage, now * 1000) {
        println!("{line}");
    }
    if ran.failed > 0 {
        return Err(format!(
            "{} of {} due orders failed; see the log",
            ran.failed, ran.due
        )
        .into());
    }
    Ok(ran)
}
