//! Embedded adapters for the dev stack and tests: a durable store on redb (its write
//! transactions are serialised, so every conditional write is atomic), an in-process queue
//! with redelivery and a dead-letter list, and an outbox that keeps sent mail.

use crate::domain::{Order, OrderId, PaymentMethod, Sku, TokenHash};
use crate::ports::{
    DownloadGrant, DownloadTake, IdempotencyRecord, MailError, MailSender, NewOrder, OrderStore,
    OutgoingMail, PlaceError, Reservation, StockLevel, StoreError,
};
use redb::{
    Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

mod claims;
mod index;
mod queue;
mod suppressions;
mod texts;

use index::{held_key, hold, index_due, unhold};
pub use queue::{Delivery, EmbeddedQueue};
pub use texts::TextOutbox;

const ORDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("orders");
const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
const STOCK_TAKEN: TableDefinition<&str, u64> = TableDefinition::new("stock_taken");
/// Orders with timed work, keyed `{due_at:020}#{order id}` (see `Order::due_at`).
const DUE: TableDefinition<&str, &str> = TableDefinition::new("due");
/// Units held by unpaid orders, keyed `{sku}#{payment method}`.
const STOCK_HELD: TableDefinition<&str, u64> = TableDefinition::new("stock_held");
const ONCE: TableDefinition<&str, &[u8]> = TableDefinition::new("once");
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// The dev stack's text messages, numbered in the order they were sent.
const TEXTS: TableDefinition<u64, &[u8]> = TableDefinition::new("texts");
/// Digests of addresses that unsubscribed from reminder mail → when.
const SUPPRESSED: TableDefinition<&str, i64> = TableDefinition::new("suppressed");
/// Revoked licence id → when it was revoked.
const REVOKED: TableDefinition<&str, i64> = TableDefinition::new("revoked_licenses");
/// Download token hash → its grant and the downloads taken so far.
const DOWNLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("downloads");

#[derive(Serialize, Deserialize)]
struct DownloadItem {
    grant: DownloadGrant,
    used: u32,
}

fn unavailable(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(Box::new(e.into()))
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(Box::new(e))
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("stored items serialise")
}

/// The embedded state store: one redb file in the data folder (or memory, for tests).
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Db>,
}

/// The database, and the group commit that makes its writes durable.
struct Db {
    redb: Database,
    /// On a file (not in memory): writes are synced to disk, in groups.
    on_disk: bool,
    /// How many writes have committed so far (each without syncing to disk).
    committed: AtomicU64,
    synced: Mutex<SyncState>,
    synced_changed: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Every write up to this count is on disk.
    durable: u64,
    /// A writer is syncing for everyone.
    syncing: bool,
}

impl std::ops::Deref for Db {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.redb
    }
}

impl Db {
    fn new(redb: Database, on_disk: bool) -> Db {
        Db {
            redb,
            on_disk,
            committed: AtomicU64::new(0),
            synced: Mutex::new(SyncState::default()),
            synced_changed: Condvar::new(),
        }
    }

    /// Commits `tx` and returns once it is on disk, as a commit with redb's default
    /// durability would, but concurrent writers share one sync to disk (a group commit): each
    /// commits without syncing, then one of them syncs every write so far with one durable
    /// empty commit while the others wait for it. The dev stack's throughput is bound by
    /// those syncs; readers may see a write a moment before it is on disk.
    fn commit(&self, mut tx: WriteTransaction) -> Result<(), StoreError> {
        if !self.on_disk {
            return tx.commit().map_err(unavailable);
        }
        tx.set_durability(Durability::None);
        tx.commit().map_err(unavailable)?;
        // Counted after the commit: a sync that starts after reading this count covers it.
        let mine = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.synced.lock().expect("sync lock");
        loop {
            if state.durable >= mine {
                return Ok(());
            }
            if state.syncing {
                state = self.synced_changed.wait(state).expect("sync lock");
                continue;
            }
            state.syncing = true;
            drop(state);
            let upto = self.committed.load(Ordering::SeqCst);
            let synced = self
                .redb
                .begin_write()
                .map_err(unavailable)
                .and_then(|tx| tx.commit().map_err(unavailable));
            state = self.synced.lock().expect("sync lock");
            state.syncing = false;
            if synced.is_ok() {
                state.durable = state.durable.max(upto);
            }
            self.synced_changed.notify_all();
            synced?;
        }
    }
}

impl EmbeddedStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(unavailable)?;
        Self::with_tables(db, true)
    }

    /// Opens `nightshift.redb` in the folder named by `NIGHTSHIFT_DATA_DIR` (default
    /// `/tmp/nightshift`), creating the folder.
    pub fn open_from_env() -> Result<Self, StoreError> {
        let dir = std::env::var(crate::environment::DATA_DIR)
            .unwrap_or_else(|_| "/tmp/nightshift".into());
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Self::open(&Path::new(&dir).join("nightshift.redb"))
    }

    pub fn in_memory() -> Self {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("an in-memory database opens");
        Self::with_tables(db, false).expect("tables are created in memory")
    }

    fn with_tables(db: Database, on_disk: bool) -> Result<Self, StoreError> {
        let tx = db.begin_write().map_err(unavailable)?;
        tx.open_table(ORDERS).map_err(unavailable)?;
        tx.open_table(IDEMPOTENCY).map_err(unavailable)?;
        tx.open_table(STOCK_TAKEN).map_err(unavailable)?;
        tx.open_table(STOCK_HELD).map_err(unavailable)?;
        tx.open_table(ONCE).map_err(unavailable)?;
        tx.open_table(OUTBOX).map_err(unavailable)?;
        tx.open_table(TEXTS).map_err(unavailable)?;
        tx.open_table(SUPPRESSED).map_err(unavailable)?;
        tx.open_table(REVOKED).map_err(unavailable)?;
        tx.open_table(DOWNLOADS).map_err(unavailable)?;
        // A data folder from before the due index: index its orders once.
        if tx
            .open_table(DUE)
            .map_err(unavailable)?
            .is_empty()
            .map_err(unavailable)?
        {
            let orders: Vec<Order> = {
                let table = tx.open_table(ORDERS).map_err(unavailable)?;
                let mut orders = Vec::new();
                for row in table.iter().map_err(unavailable)? {
                    let (_, value) = row.map_err(unavailable)?;
                    orders.push(serde_json::from_slice(value.value()).map_err(corrupt)?);
                }
                orders
            };
            for order in orders.iter().filter(|o| o.due_at().is_some()) {
                index_due(&tx, None, order)?;
            }
        }
        tx.commit().map_err(unavailable)?;
        Ok(EmbeddedStore {
            db: Arc::new(Db::new(db, on_disk)),
        })
    }

    /// Runs blocking database work off the async runtime's threads (in memory, where nothing
    /// blocks on the disk, on the caller's).
    async fn blocking<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        if !self.db.on_disk {
            return work(&self.db);
        }
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || work(&db)).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Unavailable(Box::new(e)).into()),
        }
    }

    /// Every order, for recovery at start-up and for the dev tools.
    pub async fn orders(&self) -> Result<Vec<Order>, StoreError> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let table = tx.open_table(ORDERS).map_err(unavailable)?;
            let mut orders = Vec::new();
            for row in table.iter().map_err(unavailable)? {
                let (_, value) = row.map_err(unavailable)?;
                orders.push(serde_json::from_slice(value.value()).map_err(corrupt)?);
            }
            Ok(orders)
        })
        .await
    }

    /// The mail outbox kept in the same database.
    pub fn outbox(&self) -> Outbox {
        Outbox {
            db: self.db.clone(),
        }
    }

    /// The text message outbox kept in the same database.
    pub fn texts(&self) -> TextOutbox {
        TextOutbox {
            db: self.db.clone(),
        }
    }
}

/// Claims once-only work `key` in an open table: done, leased to another, or taken now.
fn read_order(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Order>, StoreError> {
    match table.get(id).map_err(unavailable)? {
        Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(corrupt)?)),
        None => Ok(None),
    }
}

/// Gives reserved units back to the stock, inside an open write transaction.
fn give_back(tx: &redb::WriteTransaction, reservations: &[Reservation]) -> Result<(), StoreError> {
    let mut stock = tx.open_table(STOCK_TAKEN).map_err(unavailable)?;
    for r in reservations {
        let taken = stock
            .get(r.sku.as_str())
            .map_err(unavailable)?
            .map_or(0, |v| v.value());
        stock
            .insert(r.sku.as_str(), taken.saturating_sub(u64::from(r.quantity)))
            .map_err(unavailable)?;
    }
    unhold(tx, reservations)
}

/// Takes the reservations' units from the stock, or refuses (the caller drops the
/// transaction uncommitted, which leaves everything as it was).
fn take(tx: &redb::WriteTransaction, reservations: &[Reservation]) -> Result<(), PlaceError> {
    let mut stock = tx.open_table(STOCK_TAKEN).map_err(unavailable)?;
    for r in reservations {
        let taken = stock
            .get(r.sku.as_str())
            .map_err(unavailable)?
            .map_or(0, |v| v.value());
        if taken + u64::from(r.quantity) > u64::from(r.limit) {
            return Err(PlaceError::SoldOut(r.sku.clone()));
        }
        stock
            .insert(r.sku.as_str(), taken + u64::from(r.quantity))
            .map_err(unavailable)?;
    }
    Ok(())
}

fn write_order_if(
    tx: &redb::WriteTransaction,
    order: &Order,
    expected_version: u64,
) -> Result<(), StoreError> {
    let mut table = tx.open_table(ORDERS).map_err(unavailable)?;
    let current = match read_order(&table, order.id.as_str())? {
        Some(current) if current.version == expected_version => current,
        _ => return Err(StoreError::Conflict),
    };
    table
        .insert(order.id.as_str(), to_json(order).as_slice())
        .map_err(unavailable)?;
    index_due(tx, Some(&current), order)
}

impl EmbeddedStore {
    /// Writes `order` if unchanged since `expected_version`, with `stock`'s change of the
    /// reservations' rows, in one transaction.
    async fn write_order_with(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
        stock: fn(&WriteTransaction, &[Reservation]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (order, reservations) = (order.clone(), reservations.to_vec());
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            write_order_if(&tx, &order, expected_version)?;
            stock(&tx, &reservations)?;
            db.commit(tx)
        })
        .await
    }
}

impl OrderStore for EmbeddedStore {
    async fn place_order(&self, new: &NewOrder) -> Result<(), PlaceError> {
        let new = new.clone();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                if let Some(record) = &new.idempotency {
                    let mut table = tx.open_table(IDEMPOTENCY).map_err(unavailable)?;
                    if let Some(existing) =
                        table.get(record.key_hash.as_str()).map_err(unavailable)?
                    {
                        let existing: IdempotencyRecord =
                            serde_json::from_slice(existing.value()).map_err(corrupt)?;
                        return Err(PlaceError::KeyUsed(existing));
                    }
                    table
                        .insert(record.key_hash.as_str(), to_json(record).as_slice())
                        .map_err(unavailable)?;
                }
                take(&tx, &new.reservations)?;
                hold(&tx, &new.reservations)?;
                let mut orders = tx.open_table(ORDERS).map_err(unavailable)?;
                if orders
                    .get(new.order.id.as_str())
                    .map_err(unavailable)?
                    .is_some()
                {
                    return Err(PlaceError::Store(StoreError::Conflict));
                }
                orders
                    .insert(new.order.id.as_str(), to_json(&new.order).as_slice())
                    .map_err(unavailable)?;
                index_due(&tx, None, &new.order)?;
            }
            db.commit(tx)?;
            Ok(())
        })
        .await
    }

    async fn idempotency_record(
        &self,
        key_hash: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        // Single-item reads run on the caller's thread: redb serves them from memory in
        // microseconds, less than a hand-over to a blocking thread costs.
        let tx = self.db.begin_read().map_err(unavailable)?;
        let table = tx.open_table(IDEMPOTENCY).map_err(unavailable)?;
        match table.get(key_hash).map_err(unavailable)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let table = tx.open_table(ORDERS).map_err(unavailable)?;
        read_order(&table, id.as_str())
    }

    async fn stock(&self, sku: &Sku) -> Result<StockLevel, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let count = |table: TableDefinition<&str, u64>, key: &str| -> Result<u32, StoreError> {
            let table = tx.open_table(table).map_err(unavailable)?;
            let n = table
                .get(key)
                .map_err(unavailable)?
                .map_or(0, |v| v.value());
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        };
        Ok(StockLevel {
            taken: count(STOCK_TAKEN, sku.as_str())?,
            held_by_card: count(STOCK_HELD, &held_key(sku, PaymentMethod::Card))?,
            held_by_transfer: count(STOCK_HELD, &held_key(sku, PaymentMethod::BankTransfer))?,
        })
    }

    async fn save_paid_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> Result<(), StoreError> {
        self.write_order_with(order, expected_version, reservations, unhold)
            .await
    }

    async fn save_late_paid_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> Result<(), PlaceError> {
        let (order, reservations) = (order.clone(), reservations.to_vec());
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            write_order_if(&tx, &order, expected_version)?;
            take(&tx, &reservations)?;
            db.commit(tx)?;
            Ok(())
        })
        .await
    }

    async fn save_order(&self, order: &Order, expected_version: u64) -> Result<(), StoreError> {
        self.write_order_with(order, expected_version, &[], |_, _| Ok(()))
            .await
    }

    async fn release_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> Result<(), StoreError> {
        self.write_order_with(order, expected_version, reservations, give_back)
            .await
    }

    async fn revoked_licenses(&self) -> Result<Vec<String>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let table = tx.open_table(REVOKED).map_err(unavailable)?;
            let mut ids = Vec::new();
            for entry in table.iter().map_err(unavailable)? {
                ids.push(entry.map_err(unavailable)?.0.value().to_owned());
            }
            Ok(ids)
        })
        .await
    }

    async fn is_license_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let table = tx.open_table(REVOKED).map_err(unavailable)?;
        Ok(table.get(id).map_err(unavailable)?.is_some())
    }

    async fn grant_download(
        &self,
        token: &TokenHash,
        grant: &DownloadGrant,
    ) -> Result<(), StoreError> {
        let key = token.as_str().to_owned();
        let item = to_json(&DownloadItem {
            grant: grant.clone(),
            used: 0,
        });
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut table = tx.open_table(DOWNLOADS).map_err(unavailable)?;
                if table.get(key.as_str()).map_err(unavailable)?.is_some() {
                    return Err(StoreError::Conflict);
                }
                table
                    .insert(key.as_str(), item.as_slice())
                    .map_err(unavailable)?;
            }
            db.commit(tx)
        })
        .await
    }

    async fn take_download(&self, token: &TokenHash, now: i64) -> Result<DownloadTake, StoreError> {
        let key = token.as_str().to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            let taken = {
                let mut table = tx.open_table(DOWNLOADS).map_err(unavailable)?;
                let stored = match table.get(key.as_str()).map_err(unavailable)? {
                    Some(v) => v.value().to_vec(),
                    None => return Ok(DownloadTake::Unknown),
                };
                let mut item: DownloadItem = serde_json::from_slice(&stored).map_err(corrupt)?;
                if now >= item.grant.expires_at {
                    return Ok(DownloadTake::Expired);
                }
                if item.used >= item.grant.max_downloads {
                    return Ok(DownloadTake::Exhausted);
                }
                item.used += 1;
                table
                    .insert(key.as_str(), to_json(&item).as_slice())
                    .map_err(unavailable)?;
                DownloadTake::Counted {
                    grant: item.grant,
                    used: item.used,
                }
            };
            db.commit(tx)?;
            Ok(taken)
        })
        .await
    }

    async fn downloads_used(&self, token: &TokenHash) -> Result<Option<u32>, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let table = tx.open_table(DOWNLOADS).map_err(unavailable)?;
        let Some(stored) = table.get(token.as_str()).map_err(unavailable)? else {
            return Ok(None);
        };
        let item: DownloadItem = serde_json::from_slice(stored.value()).map_err(corrupt)?;
        Ok(Some(item.used))
    }

    async fn revoke_licenses(&self, ids: &[String], now: i64) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut table = tx.open_table(REVOKED).map_err(unavailable)?;
                for id in &ids {
                    if table.get(id.as_str()).map_err(unavailable)?.is_none() {
                        table.insert(id.as_str(), now).map_err(unavailable)?;
                    }
                }
            }
            db.commit(tx)
        })
        .await
    }
}

/// Sent mail, kept in the store's database so it survives restarts.
#[derive(Clone)]
pub struct Outbox {
    db: Arc<Db>,
}

impl Outbox {
    pub fn mails(&self) -> Result<Vec<OutgoingMail>, StoreError> {
        self.mails_from(0)
    }

    /// The mails after the first `skip`, oldest first.
    pub fn mails_from(&self, skip: u64) -> Result<Vec<OutgoingMail>, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let table = tx.open_table(OUTBOX).map_err(unavailable)?;
        let mut mails = Vec::new();
        for row in table.range(skip..).map_err(unavailable)? {
            let (_, value) = row.map_err(unavailable)?;
            mails.push(serde_json::from_slice(value.value()).map_err(corrupt)?);
        }
        Ok(mails)
    }
}

impl MailSender for Outbox {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let db = self.db.clone();
        let mail = mail.clone();
        let write = move || -> Result<(), StoreError> {
            let mut tx = db.begin_write().map_err(unavailable)?;
            // Not synced to disk on its own: the mail's completion, written next, makes it
            // durable. A crash before that loses both, and the mail is sent again, as it
            // would be if it had never gone out.
            tx.set_durability(redb::Durability::None);
            {
                let mut table = tx.open_table(OUTBOX).map_err(unavailable)?;
                let next = table.len().map_err(unavailable)?;
                table
                    .insert(next, to_json(&mail).as_slice())
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        };
        match tokio::task::spawn_blocking(write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(MailError(Box::new(e))),
            Err(e) => Err(MailError(Box::new(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Claim, Owner, WorkClaims};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_syncs_and_every_one_is_on_disk_when_it_returns() {
        let dir = std::env::temp_dir().join(format!(
            "nightshift-group-commit-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nightshift.redb");
        let order = OrderId::from_random([5; 10]);
        {
            let store = EmbeddedStore::open(&path).unwrap();
            let writes = (0..40).map(|i| {
                let (store, order) = (store.clone(), order.clone());
                tokio::spawn(async move {
                    let (key, owner) = (format!("MAIL#{i}"), Owner::new());
                    assert_eq!(
                        store.claim(&order, &key, &owner, 0, 60).await?,
                        Claim::Acquired
                    );
                    store
                        .complete(&order, &key, &owner, &serde_json::json!(i))
                        .await
                })
            });
            for write in futures::future::join_all(writes).await {
                write.unwrap().unwrap();
            }
            let synced = store.db.synced.lock().unwrap();
            assert!(!synced.syncing);
            assert_eq!(synced.durable, store.db.committed.load(Ordering::SeqCst));
        }
        let reopened = EmbeddedStore::open(&path).unwrap();
        for i in 0..40 {
            assert_eq!(
                reopened
                    .claim(&order, &format!("MAIL#{i}"), &Owner::new(), 0, 60)
                    .await
                    .unwrap(),
                Claim::Done(serde_json::json!(i))
            );
        }
        drop(reopened);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
