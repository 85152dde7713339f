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
