//! The dev stack's SMS outbox: text messages are kept in the store's database instead of
//! being sent (`GET /dev/sms`, `/dev/sms.json`).

use super::{corrupt, to_json, unavailable, Db, TEXTS};
use crate::ports::{OutgoingText, StoreError, TextError, TextSender};
use redb::{ReadableTable, ReadableTableMetadata};
use std::sync::Arc;

#[derive(Clone)]
pub struct TextOutbox {
    pub(super) db: Arc<Db>,
}

impl TextOutbox {
    /// Every text sent so far, oldest first.
    pub fn texts(&self) -> Result<Vec<OutgoingText>, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let table = tx.open_table(TEXTS).map_err(unavailable)?;
        let mut texts = Vec::new();
        for row in table.iter().map_err(unavailable)? {
            let (_, value) = row.map_err(unavailable)?;
            texts.push(serde_json::from_slice(value.value()).map_err(corrupt)?);
        }
        Ok(texts)
    }
}

impl TextSender for TextOutbox {
    async fn send(&self, text: &OutgoingText) -> Result<(), TextError> {
        let (db, text) = (self.db.clone(), text.clone());
        let write = move || -> Result<(), StoreError> {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut table = tx.open_table(TEXTS).map_err(unavailable)?;
                let next = table.len().map_err(unavailable)?;
                table
                    .insert(next, to_json(&text).as_slice())
                    .map_err(unavailable)?;
            }
            db.commit(tx)
        };
        match tokio::task::spawn_blocking(write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(TextError(Box::new(e))),
            Err(e) => Err(TextError(Box::new(e))),
        }
    }
}
