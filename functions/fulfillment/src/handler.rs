//! Translates an SQS batch into fulfil-order calls, concurrently, and reports the records to
//! retry. A record that can never succeed is logged and left to reach the DLQ.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::system::SystemClock;
use shared::app::batch::failed_message_ids;
use shared::app::fulfil::fulfil_order;
use shared::config::Store;
use shared::ports::{Fulfillers, Message, OrderStore, Queue};

pub struct State<S, Q, F> {
    pub store: Store,
    pub orders: S,
    pub queue: Q,
    pub fulfillers: F,
}

pub async fn handle<S: OrderStore, Q: Queue, F: Fulfillers>(
    state: &State<S, Q, F>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let records = event.payload.records.iter().map(|r| {
        (
            r.message_id.as_deref().unwrap_or_default(),
            r.body.as_deref().unwrap_or_default(),
        )
    });
    let failed = failed_message_ids(records, |body| process(state, body)).await;
    let mut response = SqsBatchResponse::default();
    failed.into_iter().for_each(|id| response.add_failure(id));
    Ok(response)
}

/// Whether the record is done with.
async fn process<S: OrderStore, Q: Queue, F: Fulfillers>(
    state: &State<S, Q, F>,
    body: &str,
) -> bool {
    let message = match Message::from_json(body) {
        Ok(Message::FulfilOrder { order_id }) => order_id,
        Ok(other) => {
            tracing::error!(?other, "not a fulfilment message; it will reach the DLQ");
            return false;
        }
        Err(e) => {
            tracing::error!(error = %e, "malformed message; it will reach the DLQ");
            return false;
        }
    };
    match fulfil_order(
        &state.store,
        &state.orders,
        &state.queue,
        &SystemClock,
        &state.fulfillers,
        &message,
    )
    .await
    {
        Ok(_) => true,
        Err(e) if e.is_retryable() => {
            tracing::warn!(order_id = %message, error = %e, "fulfilment will be retried");
            false
        }
        Err(e) => {
            tracing::error!(order_id = %message, error = %e, "fulfilment cannot succeed; it will reach the DLQ");
            false
        }
    }
}
