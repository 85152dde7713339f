//! Once-only work claims in the embedded store: one row per order and work, holding its
//! lease, its owner and, once done, its result.

use super::{corrupt, to_json, unavailable, EmbeddedStore, ONCE};
use crate::domain::OrderId;
use crate::ports::{Claim, Owner, StoreError, WorkClaims};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

/// Once-only work as kept in the store.
#[derive(Serialize, Deserialize)]
pub(super) struct OnceItem {
    done: bool,
    lease_until: i64,
    #[serde(default)]
    result: serde_json::Value,
    /// Who holds the lease (or finished the work).
    #[serde(default)]
    owner: String,
}

pub(super) fn claim_in(
    table: &mut redb::Table<&'static str, &'static [u8]>,
    key: &str,
    owner: &str,
    now: i64,
    lease_until: i64,
) -> Result<Claim, StoreError> {
    let existing: Option<OnceItem> = match table.get(key).map_err(unavailable)? {
        Some(v) => Some(serde_json::from_slice(v.value()).map_err(corrupt)?),
        None => None,
    };
    match existing {
        Some(item) if item.done => return Ok(Claim::Done(item.result)),
        Some(item) if item.lease_until > now => {
            return Ok(Claim::Busy {
                until: item.lease_until,
            })
        }
        _ => {}
    }
    let item = OnceItem {
        done: false,
        lease_until,
        result: serde_json::Value::Null,
        owner: owner.to_owned(),
    };
    table
        .insert(key, to_json(&item).as_slice())
        .map_err(unavailable)?;
    Ok(Claim::Acquired)
}

impl WorkClaims for EmbeddedStore {
    async fn claim(
        &self,
        order: &OrderId,
        key: &str,
        owner: &Owner,
        now: i64,
        lease_until: i64,
    ) -> Result<Claim, StoreError> {
        let mut claims = self
            .claim_all(order, &[key.to_owned()], owner, now, lease_until)
            .await?;
        Ok(claims.pop().unwrap_or(Claim::Busy { until: lease_until }))
    }

    async fn unfinished(
        &self,
        order: &OrderId,
        works: &[String],
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let table = tx.open_table(ONCE).map_err(unavailable)?;
        let mut left = Vec::new();
        for work in works {
            let item: Option<OnceItem> = match table
                .get(format!("{order}#{work}").as_str())
                .map_err(unavailable)?
            {
                Some(v) => Some(serde_json::from_slice(v.value()).map_err(corrupt)?),
                None => None,
            };
            if item.is_none_or(|i| !i.done && i.lease_until <= now) {
                left.push(work.clone());
            }
        }
        Ok(left)
    }

    /// Every claim in one write transaction: one commit, one sync to disk (the dev stack's
    /// throughput is bound by those syncs).
    async fn claim_all(
        &self,
        order: &OrderId,
        keys: &[String],
        owner: &Owner,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let keys: Vec<String> = keys.iter().map(|k| format!("{order}#{k}")).collect();
        let owner = owner.as_str().to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            let mut claims = Vec::with_capacity(keys.len());
            {
                let mut table = tx.open_table(ONCE).map_err(unavailable)?;
                for key in &keys {
                    claims.push(claim_in(&mut table, key, &owner, now, lease_until)?);
                }
            }
            if claims.contains(&Claim::Acquired) {
                db.commit(tx)?;
            }
            Ok(claims)
        })
        .await
    }

    async fn complete(
        &self,
        order: &OrderId,
        key: &str,
        owner: &Owner,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.complete_all(order, owner, &[(key.to_owned(), result.clone())])
            .await
    }

    /// Every completion in one write transaction; a work no longer `owner`'s is left alone.
    async fn complete_all(
        &self,
        order: &OrderId,
        owner: &Owner,
        done: &[(String, serde_json::Value)],
    ) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let items: Vec<(String, Vec<u8>)> = done
            .iter()
            .map(|(key, result)| {
                let item = OnceItem {
                    done: true,
                    lease_until: 0,
                    result: result.clone(),
                    owner: owner.as_str().to_owned(),
                };
                (format!("{order}#{key}"), to_json(&item))
            })
            .collect();
        let owner = owner.as_str().to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            let mut lost = false;
            {
                let mut table = tx.open_table(ONCE).map_err(unavailable)?;
                for (key, item) in &items {
                    if !held_by(&table, key, &owner)? {
                        lost = true;
                        continue;
                    }
                    table
                        .insert(key.as_str(), item.as_slice())
                        .map_err(unavailable)?;
                }
            }
            db.commit(tx)?;
            if lost {
                Err(StoreError::LeaseLost)
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn release(&self, order: &OrderId, key: &str, owner: &Owner) -> Result<(), StoreError> {
        let key = format!("{order}#{key}");
        let owner = owner.as_str().to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut table = tx.open_table(ONCE).map_err(unavailable)?;
                if !held_by(&table, &key, &owner)? {
                    return Err(StoreError::LeaseLost);
                }
                table.remove(key.as_str()).map_err(unavailable)?;
            }
            db.commit(tx)
        })
        .await
    }
}

/// Whether `key` is claimed, not done, by `owner`.
fn held_by(
    table: &redb::Table<&'static str, &'static [u8]>,
    key: &str,
    owner: &str,
) -> Result<bool, StoreError> {
    Ok(match table.get(key).map_err(unavailable)? {
        Some(v) => {
            let item: OnceItem = serde_json::from_slice(v.value()).map_err(corrupt)?;
            !item.done && item.owner == owner
        }
        None => false,
    })
}
