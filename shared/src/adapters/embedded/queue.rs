//! The embedded queue: an in-process stand-in for SQS with redelivery and a dead-letter
//! list.

use crate::ports::{Message, Queue, QueueError, QueueName};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A message handed to a consumer, as SQS would hand it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

/// An in-process stand-in for SQS: messages wait in memory; a consumer takes batches and
/// gives back the ones that failed, which return after a delay and go to a dead-letter list
/// after `MAX_RECEIVES` attempts.
#[derive(Clone, Default)]
pub struct EmbeddedQueue {
    inner: Arc<QueueInner>,
}

#[derive(Default)]
struct QueueInner {
    queues: Mutex<HashMap<QueueName, VecDeque<Delivery>>>,
    dead: Mutex<Vec<(QueueName, Delivery)>>,
    sent: AtomicU64,
    fulfillment: Notify,
    mail: Notify,
}

impl EmbeddedQueue {
    /// As the SQS redrive policy in the template: the fifth failure sends a message to the DLQ.
    pub const MAX_RECEIVES: u32 = 5;

    fn notify(&self, queue: QueueName) -> &Notify {
        match queue {
            QueueName::Fulfillment => &self.inner.fulfillment,
            QueueName::Mail => &self.inner.mail,
        }
    }

    fn push(&self, queue: QueueName, delivery: Delivery) {
        let mut queues = self.inner.queues.lock().expect("queue lock");
        queues.entry(queue).or_default().push_back(delivery);
        drop(queues);
        self.notify(queue).notify_one();
    }

    /// Waits for messages and takes up to `max` of them.
    pub async fn receive(&self, queue: QueueName, max: usize) -> Vec<Delivery> {
        loop {
            let notified = self.notify(queue).notified();
            {
                let mut queues = self.inner.queues.lock().expect("queue lock");
                let waiting = queues.entry(queue).or_default();
                if !waiting.is_empty() {
                    let n = max.min(waiting.len());
                    return waiting
                        .drain(..n)
                        .map(|mut d| {
                            d.receive_count += 1;
                            d
                        })
                        .collect();
                }
            }
            notified.await;
        }
    }

    /// Takes whatever is waiting without blocking (tests drive consumers this way).
    pub fn try_receive(&self, queue: QueueName, max: usize) -> Vec<Delivery> {
        let mut queues = self.inner.queues.lock().expect("queue lock");
        let waiting = queues.entry(queue).or_default();
        let n = max.min(waiting.len());
        waiting
            .drain(..n)
            .map(|mut d| {
                d.receive_count += 1;
                d
            })
            .collect()
    }

    /// Gives back a message its consumer failed: it returns later, or goes to the dead letters.
    pub fn failed(&self, queue: QueueName, delivery: Delivery) {
        if delivery.receive_count >= Self::MAX_RECEIVES {
            tracing::error!(message_id = %delivery.message_id, ?queue, "message moved to the dead-letter list");
            self.inner
                .dead
                .lock()
                .expect("queue lock")
                .push((queue, delivery));
        } else {
            self.push(queue, delivery);
        }
    }

    pub fn dead_letters(&self) -> Vec<(QueueName, Delivery)> {
        self.inner.dead.lock().expect("queue lock").clone()
    }

    pub fn waiting(&self, queue: QueueName) -> usize {
        self.inner
            .queues
            .lock()
            .expect("queue lock")
            .get(&queue)
            .map_or(0, VecDeque::len)
    }
}

impl Queue for EmbeddedQueue {
    async fn send_after(&self, message: &Message, delay_seconds: u32) -> Result<(), QueueError> {
        let (queue, message) = (self.clone(), message.clone());
        // Kept in memory only, like the rest of this queue; a restart re-derives due work.
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(u64::from(
                delay_seconds.min(900),
            )))
            .await;
            let _ = queue.send(&message).await;
        });
        Ok(())
    }

    async fn send(&self, message: &Message) -> Result<(), QueueError> {
        let id = self.inner.sent.fetch_add(1, Ordering::Relaxed) + 1;
        self.push(
            message.queue(),
            Delivery {
                message_id: format!("local-{id}"),
                body: message.to_json(),
                receive_count: 0,
            },
        );
        Ok(())
    }
}
