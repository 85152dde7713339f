//! Warm handler latency in process: the functions' own handlers on the embedded adapters
//! (redb in memory, the in-process queue), timed call by call after a warm-up.

use crate::flow::{Functions, Record};
use crate::stats::{millis, percentile};
use shared::adapters::embedded::{EmbeddedQueue, EmbeddedStore};
use shared::config::Store;
use shared::ports::{Message, QueueName};
use std::future::Future;
use std::time::{Duration, Instant};

pub struct Timings {
    pub name: &'static str,
    pub samples: Vec<Duration>,
}

impl Timings {
    pub fn p(&self, p: f64) -> f64 {
        percentile(&self.samples, p).map(millis).unwrap_or(f64::NAN)
    }
}

/// Runs `step` and adds its time to `timings` once past the warm-up.
async fn timed<T>(
    timings: &mut Timings,
    measured: bool,
    step: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    let out = step.await?;
    if measured {
        timings.samples.push(started.elapsed());
    }
    Ok(out)
}

/// Times `n` calls of each handler after `warmup` unmeasured ones.
pub async fn run(
    store_toml: &std::path::Path,
    n: usize,
    warmup: usize,
) -> anyhow::Result<Vec<Timings>> {
    let store = Store::load(store_toml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let orders = EmbeddedStore::in_memory();
    let queue = EmbeddedQueue::default();
    let functions = Functions::new(&store, orders.clone(), queue.clone(), orders.outbox())?;
    let [mut checkout, mut callback, mut page, mut fulfil] = [
        "checkout",
        "payment callback",
        "order page",
        "fulfilment (one order)",
    ]
    .map(|name| Timings {
        name,
        samples: Vec::with_capacity(n),
    });
    for i in 0..n + warmup {
        let measured = i >= warmup;
        let placed = timed(&mut checkout, measured, functions.checkout(i)).await?;
        timed(
            &mut callback,
            measured,
            functions.webhook(&placed, &format!("evt_{i}")),
        )
        .await?;
        let message = Message::FulfilOrder {
            order_id: shared::domain::OrderId::parse(&placed.order_id)?,
        };
        let record = Record {
            message_id: format!("m{i}"),
            body: message.to_json(),
            receive_count: 1,
        };
        timed(&mut fulfil, measured, functions.fulfil(&[record])).await?;
        let page_json = timed(&mut page, measured, functions.view(&placed, true)).await?;
        anyhow::ensure!(
            page_json.contains("\"password\""),
            "no login on the order page: {page_json}"
        );
        // Keep the queues from growing: this bench calls the consumers itself.
        let _ = queue.try_receive(QueueName::Fulfillment, 100);
        let _ = queue.try_receive(QueueName::Mail, 100);
    }
    Ok(vec![checkout, callback, page, fulfil])
}
