//! Queue batches: every record is processed concurrently, each in a span named by its
//! message id; the ids of the records to retry come back (SQS partial batch responses).

use std::future::Future;
use tracing::Instrument;

/// `records` are `(message id, body)`; `process` says whether a record is done with.
pub async fn failed_message_ids<'a, F, Fut>(
    records: impl IntoIterator<Item = (&'a str, &'a str)>,
    process: F,
) -> Vec<String>
where
    F: Fn(&'a str) -> Fut,
    Fut: Future<Output = bool>,
{
    let records: Vec<(&str, &str)> = records.into_iter().collect();
    let results = futures::future::join_all(records.iter().map(|(id, body)| {
        process(body).instrument(tracing::info_span!("message", message_id = %id))
    }))
    .await;
    records
        .iter()
        .zip(results)
        .filter(|(_, done)| !done)
        .map(|((id, _), _)| (*id).to_owned())
        .collect()
}

/// A message whose work another worker holds until `until` (Unix seconds): it is sent again
/// to arrive just after that lease ends, and the record in hand is done with. A new message
/// starts its receive count afresh, so waiting for another worker never counts toward the
/// dead-letter limit. Whether it was sent (if not, the record should be retried as usual).
pub async fn come_back_later<Q: crate::ports::Queue>(
    queue: &Q,
    message: &crate::ports::Message,
    until: i64,
    now: i64,
) -> bool {
    // SQS delays a message at most 15 minutes; leases are shorter.
    let delay = u32::try_from((until - now).clamp(0, 899) + 1).unwrap_or(900);
    match queue.send_after(message, delay).await {
        Ok(()) => {
            tracing::info!(
                delay,
                "another worker holds this work; the message comes back when its lease ends"
            );
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not delay the message; it will be retried");
            false
        }
    }
}
