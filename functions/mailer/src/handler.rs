//! Translates an SQS batch into send-mail calls, concurrently, and reports the records to
//! retry. A record that can never succeed is logged and left to reach the DLQ.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use secrecy::{ExposeSecret, SecretString};
use shared::adapters::system::SystemClock;
use shared::app::batch::{come_back_later, failed_message_ids};
use shared::app::mail::{send_order_mails, Mailing, SendMailError};
use shared::app::render::Templates;
use shared::app::texts::{send_order_texts, SendTextError};
use shared::config::Store;
use shared::ports::{Clock, MailSender, Message, OrderStore, Queue, TextSender, WorkClaims};

pub struct State<S, M, Q, T> {
    pub store: Store,
    pub templates: Templates,
    pub orders: S,
    pub sender: M,
    /// Text messages, to buyers who agreed to them.
    pub texts: T,
    /// Brings a message back later when another worker holds its mails.
    pub queue: Q,
    /// Rebuilds each order page's address, which every buyer mail links to.
    pub token_key: SecretString,
}

pub async fn handle<S: OrderStore + WorkClaims, M: MailSender, Q: Queue, T: TextSender>(
    state: &State<S, M, Q, T>,
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

async fn process<S: OrderStore + WorkClaims, M: MailSender, Q: Queue, T: TextSender>(
    state: &State<S, M, Q, T>,
    body: &str,
) -> bool {
    let message = Message::from_json(body);
    let order_id = match &message {
        Ok(Message::SendMail { order_id }) => order_id.clone(),
        Ok(other) => {
            tracing::error!(?other, "not a mail message; it will reach the DLQ");
            return false;
        }
        Err(e) => {
            tracing::error!(error = %e, "malformed message; it will reach the DLQ");
            return false;
        }
    };
    let mailing = Mailing {
        store: &state.store,
        templates: &state.templates,
        token_key: state.token_key.expose_secret().as_bytes(),
    };
    match send_order_mails(
        &mailing,
        &state.orders,
        &state.sender,
        &SystemClock,
        &order_id,
    )
    .await
    {
        Ok(_) => texts(state, &mailing, &message, &order_id).await,
        Err(SendMailError::Busy { until, .. }) => match &message {
            Ok(message) => come_back_later(&state.queue, message, until, SystemClock.now()).await,
            Err(_) => false,
        },
        Err(e) if e.is_retryable() => {
            tracing::warn!(order_id = %order_id, error = %e, "mail will be retried");
            false
        }
        Err(e) => {
            tracing::error!(order_id = %order_id, error = %e, "mail cannot be sent; it will reach the DLQ");
            false
        }
    }
}

/// The order's texts, once its mails are out.
async fn texts<S: OrderStore + WorkClaims, M: MailSender, Q: Queue, T: TextSender>(
    state: &State<S, M, Q, T>,
    mailing: &Mailing<'_>,
    message: &Result<Message, serde_json::Error>,
    order_id: &shared::domain::OrderId,
) -> bool {
    match send_order_texts(mailing, &state.orders, &state.texts, &SystemClock, order_id).await {
        Ok(_) => true,
        Err(SendTextError::Busy { until, .. }) => match message {
            Ok(message) => come_back_later(&state.queue, message, until, SystemClock.now()).await,
            Err(_) => false,
        },
        Err(e) => {
            tracing::warn!(order_id = %order_id, error = %e, "text will be retried");
            false
        }
    }
}
