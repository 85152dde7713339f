//! The queue consumers, as Lambda's event source mapping would run them: batches of up to
//! ten records handed to the function's handler; the records it reports as failed come back
//! later, and reach a dead-letter queue after five receives.

use super::adapters::{Adapters, Inbox, Received};
use super::Stack;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Context, LambdaEvent};
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::adapters::system::SystemClock;
use shared::app::expiry::Expiry;
use shared::app::schedule::{run_due_work, sweep_events, Ran};
use shared::ports::{Clock, QueueName, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Batches handled at once per queue, like a function's concurrency.
const CONCURRENCY: usize = 8;
/// How often the timed work runs (the scheduler function runs every minute on AWS).
const SCHEDULE_EVERY: Duration = Duration::from_secs(15);

pub fn start<A: Adapters>(stack: Arc<Stack<A>>) {
    for queue in [QueueName::Fulfillment, QueueName::Mail] {
        let stack = stack.clone();
        tokio::spawn(async move {
            let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
            loop {
                let permit = permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore stays open");
                let batch = stack.inbox.receive(queue).await;
                let stack = stack.clone();
                tokio::spawn(async move {
                    run_batch(&stack, queue, batch).await;
                    drop(permit);
                });
            }
        });
    }
}

async fn run_batch<A: Adapters>(
    stack: &Stack<A>,
    queue: QueueName,
    batch: Vec<Received<<A::Inbox as Inbox>::Handle>>,
) {
    let event = sqs_event(&batch);
    let result = match queue {
        QueueName::Fulfillment => fulfillment::handle(&stack.fulfillment, event).await,
        QueueName::Mail => mailer::handle(&stack.mailer, event).await,
    };
    let failed: Vec<String> = match result {
        Ok(SqsBatchResponse {
            batch_item_failures,
            ..
        }) => batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect(),
        // The whole invocation failed: every record comes back.
        Err(_) => batch.iter().map(|d| d.message_id.clone()).collect(),
    };
    for message in batch {
        let ok = !failed.contains(&message.message_id);
        stack.inbox.settle(queue, message, ok).await;
    }
}

fn sqs_event<T>(batch: &[Received<T>]) -> LambdaEvent<SqsEvent> {
    let records: Vec<serde_json::Value> = batch
        .iter()
        .map(|d| {
            serde_json::json!({
                "messageId": d.message_id,
                "body": d.body,
                "attributes": { "ApproximateReceiveCount": d.receive_count.to_string() },
                "eventSource": "aws:sqs",
            })
        })
        .collect();
    let payload: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records }))
        .expect("SQS events parse");
    LambdaEvent::new(payload, Context::default())
}

/// Runs the timed work (expiry today) on a timer, through the same use case the scheduler
/// function runs every minute on AWS.
pub fn start_schedule<A: Adapters>(stack: Arc<Stack<A>>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SCHEDULE_EVERY);
        let mut last_sweep = None;
        loop {
            tick.tick().await;
            // The gateway's events once an hour, as on AWS (and once at start).
            let hour = SystemClock.now() / 3600;
            let sweep = last_sweep != Some(hour);
            last_sweep = Some(hour);
            if let Err(e) = run_due_now(&stack, sweep).await {
                tracing::warn!(error = %e, "due work failed; retrying on the next tick");
            }
        }
    });
}

/// One run of the timed work, as the scheduler function does it; with `sweep`, also the
/// reconciler's sweep of the gateway's recent events.
pub async fn run_due_now<A: Adapters>(stack: &Stack<A>, sweep: bool) -> Result<Ran, StoreError> {
    let callback = &stack.payment_callback;
    let work = Expiry {
        store: &stack.store,
        orders: &callback.orders,
        queue: &callback.queue,
        gateway: &callback.gateway,
        clock: &SystemClock,
    };
    let mut ran = run_due_work(&work).await?;
    if sweep {
        sweep_events(&work, &mut ran).await;
    }
    Ok(ran)
}

/// After a restart, puts back on the queues the work that was in flight (the reconciler's
/// rule, `shared::app::reconcile::requeue_after_restart`).
pub async fn recover(
    store: &shared::config::Store,
    orders: &EmbeddedStore,
    queue: &EmbeddedQueue,
) -> anyhow::Result<()> {
    let all = orders.orders().await?;
    shared::app::reconcile::requeue_after_restart(store, &all, queue).await?;
    Ok(())
}
