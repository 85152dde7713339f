//! Rows kept in step with orders, in the same write transaction: units held by unpaid
//! orders per way of paying, and the due index of orders with timed work.

use super::{unavailable, EmbeddedStore, DUE, STOCK_HELD};
use crate::domain::{Order, OrderId, PaymentMethod, Sku};
use crate::ports::{Reservation, StoreError};
use redb::ReadableTable;

pub(super) fn held_key(sku: &Sku, method: PaymentMethod) -> String {
    let method = match method {
        PaymentMethod::Card => "card",
        PaymentMethod::BankTransfer => "bank_transfer",
    };
    format!("{sku}#{method}")
}

/// Counts the reservations' units as held by an unpaid order.
pub(super) fn hold(
    tx: &redb::WriteTransaction,
    reservations: &[Reservation],
) -> Result<(), StoreError> {
    change_held(tx, reservations, |held, units| held + units)
}

/// The reservations' units are no longer held: their order was paid, or they went back.
pub(super) fn unhold(
    tx: &redb::WriteTransaction,
    reservations: &[Reservation],
) -> Result<(), StoreError> {
    change_held(tx, reservations, u64::saturating_sub)
}

fn change_held(
    tx: &redb::WriteTransaction,
    reservations: &[Reservation],
    change: impl Fn(u64, u64) -> u64,
) -> Result<(), StoreError> {
    let mut held = tx.open_table(STOCK_HELD).map_err(unavailable)?;
    for r in reservations {
        let key = held_key(&r.sku, r.method);
        let now = held
            .get(key.as_str())
            .map_err(unavailable)?
            .map_or(0, |v| v.value());
        held.insert(key.as_str(), change(now, u64::from(r.quantity)))
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Writes `order` if the stored one has `expected_version`, inside an open write transaction.
fn due_key(due_at: i64, order: &OrderId) -> String {
    format!("{:020}#{order}", due_at.max(0))
}

/// Keeps the due index in step with an order's write, in the same transaction.
pub(super) fn index_due(
    tx: &redb::WriteTransaction,
    before: Option<&Order>,
    after: &Order,
) -> Result<(), StoreError> {
    let (old, new) = (before.and_then(Order::due_at), after.due_at());
    if old == new {
        return Ok(());
    }
    let mut due = tx.open_table(DUE).map_err(unavailable)?;
    if let Some(at) = old {
        due.remove(due_key(at, &after.id).as_str())
            .map_err(unavailable)?;
    }
    if let Some(at) = new {
        due.insert(due_key(at, &after.id).as_str(), after.id.as_str())
            .map_err(unavailable)?;
    }
    Ok(())
}

impl crate::ports::DueOrders for EmbeddedStore {
    async fn orders_due(&self, now: i64, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        let tx = self.db.begin_read().map_err(unavailable)?;
        let due = tx.open_table(DUE).map_err(unavailable)?;
        // Every key of a time at or before `now` sorts before this one.
        let end = format!("{:020}$", now.max(0));
        let mut ids = Vec::new();
        for row in due.range::<&str>(..end.as_str()).map_err(unavailable)? {
            let (_, id) = row.map_err(unavailable)?;
            ids.push(OrderId::parse(id.value()).map_err(|e| StoreError::Corrupt(Box::new(e)))?);
            if ids.len() >= limit {
                break;
            }
        }
        Ok(ids)
    }
}
