//! Translates a scheduled invocation into one run of the due work, and its summary back.

use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::system::SystemClock;
use shared::app::schedule::{run_due_work, Ran};
use shared::config::Store;
use shared::ports::{DueOrders, OrderStore};

pub struct State<S> {
    pub store: Store,
    pub orders: S,
}

/// The event's content is not used: each run does what is due at the time it runs.
pub async fn handle<S: OrderStore + DueOrders>(
    state: &State<S>,
    _event: LambdaEvent<serde_json::Value>,
) -> Result<Ran, Error> {
    // A failure is reported to Lambda (and so to its errors alarm); the next run tries again.
    let ran = run_due_work(&state.store, &state.orders, &SystemClock).await?;
    if ran.failed > 0 {
        return Err(format!(
            "{} of {} due orders failed; see the log",
            ran.failed, ran.due
        )
        .into());
    }
    Ok(ran)
}
