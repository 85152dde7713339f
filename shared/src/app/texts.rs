//! Text messages about an order, to a buyer who gave a number and agreed to them: today the
//! transfer reminders, each sent once, as a claimed piece of work like every mail, and never
//! once the order is paid.

use super::mail::Mailing;
use super::render::TransferView;
use crate::domain::{Order, OrderId, OrderStatus};
use crate::ports::{
    Claim, Clock, OrderStore, OutgoingText, Owner, StoreError, TextError, TextSender, WorkClaims,
};

const TEXT_LEASE_SECONDS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum SendTextError {
    /// Another worker holds text `key` until `until` (Unix seconds): look again then.
    #[error("another worker is sending text {key} until {until}")]
    Busy { key: String, until: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Text(#[from] TextError),
}

/// The texts the order is due now, each with the key that makes it go out once.
pub fn plan(order: &Order) -> Vec<(String, usize)> {
    if order.texts.is_none() || order.status != OrderStatus::AwaitingTransfer {
        return Vec::new();
    }
    (0..order.reminders_sent as usize)
        .map(|n| (format!("TEXT#transfer-reminder#{n}"), n))
        .collect()
}

/// A reminder as a text: short, plain, and nothing the buyer typed.
pub fn render_reminder(mailing: &Mailing<'_>, order: &Order) -> Option<OutgoingText> {
    let consent = order.texts.as_ref()?;
    let transfer = TransferView::of(mailing.store, order)?;
    let link = super::order_page_url(mailing.token_key, order)
        .map(|url| format!(" Details: {url}"))
        .unwrap_or_default();
    Some(OutgoingText {
        to: consent.phone.clone(),
        text: format!(
            "{}: order {} awaits your transfer of {} to IBAN {}, reference {}, by {}.{link}",
            mailing.store.settings.name,
            order.id,
            transfer.amount,
            transfer.iban,
            transfer.reference,
            transfer.pay_by
        ),
    })
}

/// Sends every text the order is due that has not gone out yet; how many were sent.
pub async fn send_order_texts<S: OrderStore + WorkClaims, T: TextSender, C: Clock>(
    mailing: &Mailing<'_>,
    orders: &S,
    texts: &T,
    clock: &C,
    order_id: &OrderId,
) -> Result<usize, SendTextError> {
    let Some(order) = orders.order(order_id).await? else {
        return Ok(0);
    };
    let plan = plan(&order);
    if plan.is_empty() {
        return Ok(0);
    }
    let keys: Vec<String> = plan.iter().map(|(k, _)| k.clone()).collect();
    let (now, owner) = (clock.now(), Owner::new());
    let claims = orders
        .claim_all(order_id, &keys, &owner, now, now + TEXT_LEASE_SECONDS)
        .await?;
    let mut sent = Vec::new();
    let mut outcome = Ok(());
    for ((key, _), claim) in plan.iter().zip(claims) {
        match claim {
            Claim::Done(_) => continue,
            Claim::Busy { until } => {
                if outcome.is_ok() {
                    outcome = Err(SendTextError::Busy {
                        key: key.clone(),
                        until,
                    });
                }
                continue;
            }
            Claim::Acquired => {}
        }
        // After a failure, the rest wait for the retry.
        let result = match (&outcome, render_reminder(mailing, &order)) {
            (Ok(()), Some(text)) => Some(texts.send(&text).await.map_err(SendTextError::from)),
            // Nothing to send (the store no longer takes transfers): counted as done.
            (Ok(()), None) => Some(Ok(())),
            (Err(_), _) => None,
        };
        if let Some(Ok(())) = result {
            tracing::info!(order_id = %order_id, text = %key, "text sent");
            sent.push((key.clone(), serde_json::json!({ "sent_at": clock.now() })));
            continue;
        }
        match orders.release(order_id, key, &owner).await {
            Ok(()) | Err(StoreError::LeaseLost) => {}
            Err(e) => tracing::warn!(error = %e, "a text's claim was not released"),
        }
        if let Some(Err(e)) = result {
            outcome = Err(e);
        }
    }
    orders.complete_all(order_id, &owner, &sent).await?;
    outcome.map(|()| sent.len())
}
