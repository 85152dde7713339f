//! Addresses that unsubscribed from reminder mail, in the embedded store: digest → when.

use super::{unavailable, EmbeddedStore, SUPPRESSED};
use crate::ports::{StoreError, Suppressions};
use redb::ReadableTable;

impl Suppressions for EmbeddedStore {
    async fn suppress(&self, digest: &str, now: i64) -> Result<(), StoreError> {
        let digest = digest.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut table = tx.open_table(SUPPRESSED).map_err(unavailable)?;
                if table.get(digest.as_str()).map_err(unavailable)?.is_none() {
                    table.insert(digest.as_str(), now).map_err(unavailable)?;
                }
            }
            db.commit(tx)
        })
        .await
    }

    async fn is_suppressed(&self, digest: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let table = tx.open_table(SUPPRESSED).map_err(unavailable)?;
        Ok(table.get(digest).map_err(unavailable)?.is_some())
    }
}
