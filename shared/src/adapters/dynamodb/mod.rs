//! The state store on DynamoDB: the single table of DESIGN.md. Every write that decides
//! something is conditional; what must change together changes in one TransactWriteItems.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `ORDER#<id>` | `ORDER` | the order (JSON in `data`, with its payment events and its page token's check), `version`, `status` |
//! | `ORDER#<id>` | `WORK` | once-only work (`STEP#…`, `MAIL#…`): one attribute each, a map of `done`, `lease_until`, `result` |
//! | `IDEM#<sha256>` | `IDEM` | an idempotency record, kept 24 hours |
//! | `SKU#<sku>` | `STOCK` | `taken`: units held by orders |
//! | `DOWNLOAD#<sha256>` | `DOWNLOAD` | a download link: its line, `link_expires_at`, `max_downloads`, `used` |
//! | `LICENSES#REVOKED` | `<licence id>` | the licence revocation list |

use crate::domain::{Order, OrderId, PaymentMethod, Sku, TokenHash};
use crate::ports::{
    DownloadGrant, DownloadTake, IdempotencyRecord, NewOrder, OrderStore, PlaceError, Reservation,
    StockLevel, StoreError,
};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use serde::Serialize;
use std::collections::HashMap;

mod claims;
mod suppressions;

const IDEMPOTENCY_HOURS: i64 = 24;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// The sort key of an order's once-only work: one item per order, one attribute per work
/// (a map of `done`, `lease_until` and `result`), so claiming or completing several works is
/// one small write.
const WORK_SK: &str = "WORK";
/// Most works one update claims or completes (expressions are limited to 4 KB).
const WORKS_PER_UPDATE: usize = 25;

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn json(value: &impl Serialize) -> AttributeValue {
    s(serde_json::to_string(value).expect("stored items serialise"))
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

fn corrupt(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Corrupt(Box::new(e))
}

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(Missing(name.to_owned())))
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// Whether a conditional single-item write wrote (`false`: its condition did not hold).
fn written<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

/// Whether a single-item write failed its condition (rather than DynamoDB failing).
fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

#[derive(Debug, thiserror::Error)]
#[error("the item has no attribute `{0}`")]
struct Missing(String);

/// The revocation list: one item per revoked licence, `sk` its id.
const REVOKED_PK: &str = "LICENSES#REVOKED";

/// A download link's record is dropped by TTL this long after the link expired (until then
/// an old link says "expired" rather than "unknown").
const DOWNLOAD_KEEP_DAYS: i64 = 90;

fn download_key(token: &TokenHash) -> Item {
    key(format!("DOWNLOAD#{}", token.as_str()), "DOWNLOAD")
}

fn download_grant(item: &Item) -> Result<DownloadGrant, StoreError> {
    let count = |name: &str| {
        number(item, name)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| corrupt(Missing(name.to_owned())))
    };
    Ok(DownloadGrant {
        order_id: OrderId::parse(text(item, "order_id")?).map_err(corrupt)?,
        line: count("line")?,
        sku: Sku::parse(text(item, "sku")?).map_err(corrupt)?,
        expires_at: number(item, "link_expires_at")
            .ok_or_else(|| corrupt(Missing("link_expires_at".into())))?,
        max_downloads: count("max_downloads")?,
    })
}

/// The stock item's attribute counting units held by unpaid orders paying this way.
/// How a write moves a sku's stock row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StockMove {
    /// Taken by an unpaid order, and held by it.
    Hold,
    /// Taken by a paid order (a late payment takes its stock again).
    TakeSold,
    /// Back in stock.
    GiveBack,
}

fn held_attribute(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Card => "held_card",
        PaymentMethod::BankTransfer => "held_bank_transfer",
    }
}

/// The sparse global secondary index of orders with timed work, by when it is due.
pub const DUE_INDEX: &str = "due";
const DUE_PK: &str = "due_pk";
const DUE_PK_VALUE: &str = "DUE";
const DUE_AT: &str = "due_at";

impl crate::ports::DueOrders for DynamoStore {
    async fn orders_due(&self, now: i64, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        while ids.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("#pk = :due AND #at <= :now")
                .expression_attribute_names("#pk", DUE_PK)
                .expression_attribute_names("#at", DUE_AT)
                .expression_attribute_values(":due", s(DUE_PK_VALUE))
                .expression_attribute_values(":now", n(now))
                .limit(i32::try_from(limit - ids.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                let key = text(item, "pk")?;
                let id = key.strip_prefix("ORDER#").unwrap_or(key);
                ids.push(OrderId::parse(id).map_err(|e| StoreError::Corrupt(Box::new(e)))?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(ids)
    }
}

fn order_key(id: &OrderId) -> String {
    format!("ORDER#{id}")
}

/// Whether a transaction was cancelled, and if so, which of its items failed their condition.
fn cancelled<E, R>(error: &SdkError<E, R>) -> Option<Vec<bool>>
where
    E: CancellationReasons,
{
    match error {
        SdkError::ServiceError(e) => e.err().reasons().map(|reasons| {
            reasons
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect()
        }),
        _ => None,
    }
}

trait CancellationReasons {
    fn reasons(&self) -> Option<&[CancellationReason]>;
}

impl CancellationReasons
    for aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError
{
    fn reasons(&self) -> Option<&[CancellationReason]> {
        match self {
            Self::TransactionCanceledException(e) => Some(e.cancellation_reasons()),
            _ => None,
        }
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        values: Option<Item>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_values(values)
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn order_item(order: &Order) -> Item {
        let mut item = key(order_key(&order.id), "ORDER");
        item.insert("data".into(), json(order));
        item.insert("version".into(), n(order.version));
        item.insert("status".into(), s(order.status.as_str()));
        item.insert("reserved_until".into(), n(order.reserved_until));
        // The sparse due index holds only orders with timed work.
        if let Some(due_at) = order.due_at() {
            item.insert(DUE_PK.into(), s(DUE_PK_VALUE));
            item.insert(DUE_AT.into(), n(due_at));
        }
        item
    }

    /// The order, written if the stored version is `expected_version`.
    fn put_order_if(
        &self,
        order: &Order,
        expected_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put(
            Self::order_item(order),
            Some("version = :expected"),
            Some(HashMap::from([(":expected".into(), n(expected_version))])),
        )
    }

    fn stock_change(
        &self,
        r: &Reservation,
        change: StockMove,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("SKU#{}", r.sku), "STOCK")));
        // Units held by unpaid orders are counted per way of paying, beside `taken`.
        let held = held_attribute(r.method);
        let update = if change != StockMove::GiveBack {
            // Room for the units: nothing taken yet, or at most limit - quantity taken.
            let max = i64::from(r.limit) - i64::from(r.quantity);
            let hold = if change == StockMove::Hold {
                format!(" ADD {held} :q")
            } else {
                String::new()
            };
            update
                .update_expression(format!(
                    "SET taken = if_not_exists(taken, :zero) + :q{hold}"
                ))
                .condition_expression("attribute_not_exists(taken) OR taken <= :max")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":q", n(r.quantity))
                .expression_attribute_values(":max", n(max))
        } else {
            update
                .update_expression(format!("SET taken = taken - :q ADD {held} :minus"))
                .condition_expression("taken >= :q")
                .expression_attribute_values(":q", n(r.quantity))
                .expression_attribute_values(":minus", n(-i64::from(r.quantity)))
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(unavailable)?)
            .build())
    }

    /// The write that counts a paid order's reserved units as sold, no longer held.
    fn sold(&self, r: &Reservation) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("SKU#{}", r.sku), "STOCK")))
            .update_expression(format!("ADD {} :minus", held_attribute(r.method)))
            .expression_attribute_values(":minus", n(-i64::from(r.quantity)));
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(unavailable)?)
            .build())
    }

    /// The writes that give reserved units back to the stock.
    fn give_back(
        &self,
        reservations: &[Reservation],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        reservations
            .iter()
            .map(|r| self.stock_change(r, StockMove::GiveBack))
            .collect()
    }

    /// Writes the item unless one with its key exists; says whether it wrote.
    async fn put_new(&self, item: Item) -> Result<bool, StoreError> {
        self.put_item(item, "attribute_not_exists(pk)").await
    }

    /// Writes the item if `condition` holds; says whether it wrote.
    async fn put_item(&self, item: Item, condition: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .send()
            .await;
        written(result)
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Vec<bool>>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(e) => match cancelled(&e) {
                Some(failed) => Ok(Err(failed)),
                None => Err(unavailable(e)),
            },
        }
    }
}

impl OrderStore for DynamoStore {
    async fn place_order(&self, new: &NewOrder) -> Result<(), PlaceError> {
        let mut items = Vec::new();
        if let Some(record) = &new.idempotency {
            let mut item = key(format!("IDEM#{}", record.key_hash), "IDEM");
            item.insert("data".into(), json(record));
            item.insert(
                "expires_at".into(),
                n(new.order.created_at + IDEMPOTENCY_HOURS * 3600),
            );
            items.push(self.put(item, Some("attribute_not_exists(pk)"), None)?);
        }
        let stock_from = items.len();
        for r in &new.reservations {
            items.push(self.stock_change(r, StockMove::Hold)?);
        }
        items.push(self.put(
            Self::order_item(&new.order),
            Some("attribute_not_exists(pk)"),
            None,
        )?);
        if items.len() == 1 {
            // The common case, nothing else to write with the order: one conditional put.
            return match self
                .put_item(Self::order_item(&new.order), "attribute_not_exists(pk)")
                .await?
            {
                true => Ok(()),
                false => Err(StoreError::Conflict.into()),
            };
        }
        let Err(failed) = self.transact(items).await? else {
            return Ok(());
        };
        if let Some(record) = &new.idempotency {
            if failed.first() == Some(&true) {
                return match self.idempotency_record(&record.key_hash).await? {
                    Some(existing) => Err(PlaceError::KeyUsed(existing)),
                    None => Err(StoreError::Conflict.into()),
                };
            }
        }
        for (i, r) in new.reservations.iter().enumerate() {
            if failed.get(stock_from + i) == Some(&true) {
                return Err(PlaceError::SoldOut(r.sku.clone()));
            }
        }
        Err(StoreError::Conflict.into())
    }

    async fn idempotency_record(
        &self,
        key_hash: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        match self.get(format!("IDEM#{key_hash}"), "IDEM").await? {
            Some(item) => Ok(Some(
                serde_json::from_str(text(&item, "data")?).map_err(corrupt)?,
            )),
            None => Ok(None),
        }
    }

    async fn order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        match self.get(order_key(id), "ORDER").await? {
            Some(item) => Ok(Some(
                serde_json::from_str(text(&item, "data")?).map_err(corrupt)?,
            )),
            None => Ok(None),
        }
    }

    async fn stock(&self, sku: &Sku) -> Result<StockLevel, StoreError> {
        let item = self.get(format!("SKU#{sku}"), "STOCK").await?;
        // Counts below zero (units held before they were counted, then given back) read as 0.
        let count = |name: &str| {
            item.as_ref()
                .and_then(|i| number(i, name))
                .map_or(0, |t| u32::try_from(t.max(0)).unwrap_or(u32::MAX))
        };
        Ok(StockLevel {
            taken: count("taken"),
            held_by_card: count(held_attribute(PaymentMethod::Card)),
            held_by_transfer: count(held_attribute(PaymentMethod::BankTransfer)),
        })
    }

    async fn save_paid_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> Result<(), StoreError> {
        if reservations.is_empty() {
            return self.save_order(order, expected_version).await;
        }
        let mut items = vec![self.put_order_if(order, expected_version)?];
        for r in reservations {
            items.push(self.sold(r)?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::Conflict),
        }
    }

    async fn save_late_paid_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> Result<(), PlaceError> {
        if reservations.is_empty() {
            return Ok(self.save_order(order, expected_version).await?);
        }
        let mut items = vec![self.put_order_if(order, expected_version)?];
        for r in reservations {
            items.push(self.stock_change(r, StockMove::TakeSold)?);
        }
        let Err(failed) = self.transact(items).await? else {
            return Ok(());
        };
        // The order changed: whatever the stock says, the caller reads it again first.
        if failed.first() == Some(&true) {
            return Err(StoreError::Conflict.into());
        }
        for (i, r) in reservations.iter().enumerate() {
            if failed.get(1 + i) == Some(&true) {
                return Err(PlaceError::SoldOut(r.sku.clone()));
            }
        }
        Err(StoreError::Conflict.into())
    }

    async fn save_order(&self, order: &Order, expected_version: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::order_item(order)))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(expected_version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StoreError::Conflict),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release_order(
        &self,
        order: &Order,
        expected_version: u64,
        reservations: &[Reservation],
    ) -> Result<(), StoreError> {
        let mut items = vec![self.put_order_if(order, expected_version)?];
        items.extend(self.give_back(reservations)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::Conflict),
        }
    }

    async fn revoked_licenses(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(REVOKED_PK))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                ids.push(text(item, "sk")?.to_owned());
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        ids.sort();
        Ok(ids)
    }

    async fn is_license_revoked(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.get(REVOKED_PK.to_owned(), id).await?.is_some())
    }

    async fn grant_download(
        &self,
        token: &TokenHash,
        grant: &DownloadGrant,
    ) -> Result<(), StoreError> {
        let mut item = download_key(token);
        item.insert("order_id".into(), s(grant.order_id.as_str()));
        item.insert("line".into(), n(grant.line));
        item.insert("sku".into(), s(grant.sku.as_str()));
        item.insert("link_expires_at".into(), n(grant.expires_at));
        item.insert("max_downloads".into(), n(grant.max_downloads));
        item.insert("used".into(), n(0));
        item.insert(
            "expires_at".into(),
            n(grant.expires_at + DOWNLOAD_KEEP_DAYS * 86_400),
        );
        match self.put_new(item).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict),
        }
    }

    async fn downloads_used(&self, token: &TokenHash) -> Result<Option<u32>, StoreError> {
        let Some(item) = self
            .get(format!("DOWNLOAD#{}", token.as_str()), "DOWNLOAD")
            .await?
        else {
            return Ok(None);
        };
        let used = number(&item, "used")
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| corrupt(Missing("used".into())))?;
        Ok(Some(used))
    }

    async fn take_download(&self, token: &TokenHash, now: i64) -> Result<DownloadTake, StoreError> {
        use aws_sdk_dynamodb::types::ReturnValue;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(download_key(token)))
            .update_expression("SET used = used + :one")
            .condition_expression(
                "attribute_exists(pk) AND used < max_downloads AND link_expires_at > :now",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let used = number(&item, "used")
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| corrupt(Missing("used".into())))?;
                Ok(DownloadTake::Counted {
                    grant: download_grant(&item)?,
                    used,
                })
            }
            // Refused: read the item to say why (it only ever counts up, so this is stable).
            Err(e) if condition_failed(&e) => {
                let Some(item) = self
                    .get(format!("DOWNLOAD#{}", token.as_str()), "DOWNLOAD")
                    .await?
                else {
                    return Ok(DownloadTake::Unknown);
                };
                let grant = download_grant(&item)?;
                Ok(if now >= grant.expires_at {
                    DownloadTake::Expired
                } else {
                    DownloadTake::Exhausted
                })
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn revoke_licenses(&self, ids: &[String], now: i64) -> Result<(), StoreError> {
        for id in ids {
            let mut item = key(REVOKED_PK.to_owned(), id);
            item.insert("revoked_at".into(), n(now));
            // Already on the list: it stays as it was.
            self.put_new(item).await?;
        }
        Ok(())
    }
}

/// Creates the table as the template defines it (for emulators; on AWS the template does it).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
    };
    let typed = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .map_err(unavailable)
    };
    let attribute = |name: &str| typed(name, ScalarAttributeType::S);
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(unavailable)
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attribute(DUE_PK)?)
        .attribute_definitions(typed(DUE_AT, ScalarAttributeType::N)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(DUE_INDEX)
                .key_schema(key(DUE_PK, KeyType::Hash)?)
                .key_schema(key(DUE_AT, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .map_err(unavailable)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("expires_at")
        .enabled(true)
        .build()
        .map_err(unavailable)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}
