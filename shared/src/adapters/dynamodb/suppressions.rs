//! Addresses that unsubscribed from reminder mail, on DynamoDB: one item per address digest
//! (`UNSUB#<sha256>` / `UNSUB`).

use super::{key, n, DynamoStore};
use crate::ports::{StoreError, Suppressions};

impl Suppressions for DynamoStore {
    async fn suppress(&self, digest: &str, now: i64) -> Result<(), StoreError> {
        let mut item = key(format!("UNSUB#{digest}"), "UNSUB");
        item.insert("at".into(), n(now));
        // Again is harmless: the first time is kept.
        self.put_new(item).await.map(|_| ())
    }

    async fn is_suppressed(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(format!("UNSUB#{digest}"), "UNSUB")
            .await?
            .is_some())
    }
}
