//! Translates an SQS batch into fulfil-order calls, concurrently, and reports the records to
//! retry. A record that can never succeed is logged and left to reach the DLQ.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::system::SystemClock;
use shared::app::fulfil::fulfil_order;
use shared::config::Store;
use shared::ports::{CourseEnroller, Message, OrderStore, Queue};
use tracing::Instrument;

pub struct State<S, Q, L> {
    pub store: Store,
    pub orders: S,
    pub queue: Q,
    pub enroller: L,
}

pub async fn handle<S: OrderStore, Q: Queue, L: CourseEnroller>(
    state: &State<S, Q, L>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let results = futures::future::join_all(event.payload.records.iter().map(|record| {
        let id = record.message_id.clone().unwrap_or_default();
        process(state, record).instrument(tracing::info_span!("message", message_id = %id))
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (record, ok) in event.payload.records.iter().zip(results) {
        if !ok {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

/// Whether the record is done with.
async fn process<S: OrderStore, Q: Queue, L: CourseEnroller>(
    state: &State<S, Q, L>,
    record: &SqsMessage,
) -> bool {
    let message = match Message::from_json(record.body.as_deref().unwrap_or_default()) {
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
        &state.enroller,
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
