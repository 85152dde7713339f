//! The two sets of adapters the dev stack runs on: embedded (the default) and AWS (`--aws`,
//! usually an emulator such as moto), and how its in-process consumers take queue messages.

use shared::adapters::aws::{SesSender, SqsQueue};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::embedded::{Delivery, EmbeddedQueue, EmbeddedStore, Outbox, TextOutbox};
use shared::adapters::files::{LocalFiles, S3Links};
use shared::adapters::sms::AwsTexts;
use shared::ports::{
    DueOrders, FileLinks, MailSender, OrderStore, Queue, QueueName, Suppressions, TextSender,
    WorkClaims,
};
use std::future::Future;
use std::time::Duration;

/// A message taken by a consumer, and what settles it afterwards.
pub struct Received<T> {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
    pub handle: T,
}

/// Where the in-process consumers take messages from.
pub trait Inbox: Send + Sync + 'static {
    type Handle: Send + 'static;
    /// Waits for up to ten messages.
    fn receive(&self, queue: QueueName)
        -> impl Future<Output = Vec<Received<Self::Handle>>> + Send;
    /// The consumer is done with the message (`ok`), or it must come back later.
    fn settle(
        &self,
        queue: QueueName,
        message: Received<Self::Handle>,
        ok: bool,
    ) -> impl Future<Output = ()> + Send;
}

pub trait Adapters: Send + Sync + 'static {
    type Store: OrderStore + WorkClaims + DueOrders + Suppressions + Clone + 'static;
    type Queue: Queue + Clone + 'static;
    type Mail: MailSender + 'static;
    type Texts: TextSender + 'static;
    type Inbox: Inbox;
    type Files: FileLinks + 'static;
}

pub struct Embedded;

impl Adapters for Embedded {
    type Store = EmbeddedStore;
    type Queue = EmbeddedQueue;
    type Mail = Outbox;
    type Texts = TextOutbox;
    type Inbox = EmbeddedQueue;
    type Files = LocalFiles;
}

pub struct Aws;

impl Adapters for Aws {
    type Store = DynamoStore;
    type Queue = SqsQueue;
    type Mail = SesSender;
    type Texts = AwsTexts;
    type Inbox = SqsInbox;
    type Files = S3Links;
}

/// Base delay before a failed record is visible again (grows with each receive).
const RETRY_DELAY: Duration = Duration::from_millis(250);

impl Inbox for EmbeddedQueue {
    type Handle = Delivery;

    async fn receive(&self, queue: QueueName) -> Vec<Received<Delivery>> {
        EmbeddedQueue::receive(self, queue, 10)
            .await
            .into_iter()
            .map(|d| Received {
                message_id: d.message_id.clone(),
                body: d.body.clone(),
                receive_count: d.receive_count,
                handle: d,
            })
            .collect()
    }

    async fn settle(&self, queue: QueueName, message: Received<Delivery>, ok: bool) {
        if ok {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RETRY_DELAY * message.receive_count).await;
            this.failed(queue, message.handle);
        });
    }
}

/// SQS polled without long polling (the emulator answers one request at a time); failed
/// messages come back after their visibility timeout and reach the DLQ by the redrive policy.
pub struct SqsInbox {
    pub client: aws_sdk_sqs::Client,
    pub fulfillment_url: String,
    pub mail_url: String,
}

impl SqsInbox {
    fn url(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::Fulfillment => &self.fulfillment_url,
            QueueName::Mail => &self.mail_url,
        }
    }
}

impl Inbox for SqsInbox {
    type Handle = String;

    async fn receive(&self, queue: QueueName) -> Vec<Received<String>> {
        use aws_sdk_sqs::types::MessageSystemAttributeName;
        loop {
            let out = self
                .client
                .receive_message()
                .queue_url(self.url(queue))
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await;
            let messages = match out {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(error = %e, "SQS receive failed");
                    Vec::new()
                }
            };
            if !messages.is_empty() {
                return messages
                    .into_iter()
                    .map(|m| Received {
                        receive_count: m
                            .attributes()
                            .and_then(|a| {
                                a.get(&MessageSystemAttributeName::ApproximateReceiveCount)
                            })
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(1),
                        message_id: m.message_id.unwrap_or_default(),
                        body: m.body.unwrap_or_default(),
                        handle: m.receipt_handle.unwrap_or_default(),
                    })
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn settle(&self, queue: QueueName, message: Received<String>, ok: bool) {
        let url = self.url(queue);
        if ok {
            if let Err(e) = self
                .client
                .delete_message()
                .queue_url(url)
                .receipt_handle(message.handle)
                .send()
                .await
            {
                tracing::warn!(error = %e, "SQS delete failed");
            }
        } else {
            // Back soon, a little later each time; the redrive policy moves it to the DLQ.
            let delay = i32::try_from(message.receive_count)
                .unwrap_or(5)
                .clamp(1, 30);
            let change = self
                .client
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(message.handle);
            if let Err(e) = change.visibility_timeout(delay).send().await {
                tracing::warn!(error = %e, "SQS visibility change failed");
            }
        }
    }
}
