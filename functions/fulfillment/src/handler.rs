//! Translates an SQS batch into fulfil-order and seller-webhook calls, concurrently, and reports the records to
//! retry. A record that can never succeed is logged and left to reach the DLQ.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use shared::adapters::system::SystemClock;
use shared::app::batch::{come_back_later, failed_message_ids};
use shared::app::fulfil::fulfil_order;
use shared::app::fulfil::FulfilError;
use shared::app::notify::notify_seller;
use shared::app::notify::NotifyFailure;
use shared::config::Store;
use shared::domain::OrderId;
use shared::ports::{Clock, Fulfillers, Message, OrderStore, Queue, WorkClaims};

pub struct State<S, Q, F> {
    pub store: Store,
    pub orders: S,
    pub queue: Q,
    pub fulfillers: F,
}

pub async fn handle<S: OrderStore + WorkClaims, Q: Queue, F: Fulfillers>(
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
async fn process<S: OrderStore + WorkClaims, Q: Queue, F: Fulfillers>(
    state: &State<S, Q, F>,
    body: &str,
) -> bool {
    let message = match Message::from_json(body) {
        Ok(message) => message,
        Err(e) => {
            tracing::error!(error = %e, "malformed message; it will reach the DLQ");
            return false;
        }
    };
    match &message {
        Message::FulfilOrder { order_id } => fulfil(state, order_id, &message).await,
        Message::NotifySeller {
            order_id,
            webhook,
            attempt,
        } => {
            let result = notify_seller(
                &state.store,
                &state.orders,
                &state.queue,
                &SystemClock,
                &state.fulfillers,
                order_id,
                *webhook,
                *attempt,
            )
            .await;
            match result {
                // A failed try has queued the next one itself (with its delay).
                Ok(_) => true,
                Err(NotifyFailure::Busy { until }) => {
                    come_back_later(&state.queue, &message, until, SystemClock.now()).await
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(order_id = %order_id, webhook, error = %e, "seller webhook will be retried");
                    false
                }
                Err(e) => {
                    tracing::error!(order_id = %order_id, webhook, error = %e, "seller webhook cannot succeed; it will reach the DLQ");
                    false
                }
            }
        }
        other => {
            tracing::error!(?other, "not a fulfilment message; it will reach the DLQ");
            false
        }
    }
}

async fn fulfil<S: OrderStore + WorkClaims, Q: Queue, F: Fulfillers>(
    state: &State<S, Q, F>,
    order_id: &OrderId,
    message: &Message,
) -> bool {
    match fulfil_order(
        &state.store,
        &state.orders,
        &state.queue,
        &SystemClock,
        &state.fulfillers,
        order_id,
    )
    .await
    {
        Ok(_) => true,
        Err(FulfilError::Busy { until }) => {
            come_back_later(&state.queue, message, until, SystemClock.now()).await
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(order_id = %order_id, error = %e, "fulfilment will be retried");
            false
        }
        Err(e) => {
            tracing::error!(order_id = %order_id, error = %e, "fulfilment cannot succeed; it will reach the DLQ");
            false
        }
    }
}
