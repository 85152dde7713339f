//! Once-only work of an order (a fulfilment step, a mail, a seller webhook): claimed under a
//! lease by one owner, then completed with its result or released, by that owner only.

use super::StoreError;
use crate::domain::OrderId;
use std::fmt;
use std::future::Future;

/// The state of a once-only piece of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This caller owns the work until the lease ends.
    Acquired,
    /// Someone finished it; here is what they stored.
    Done(serde_json::Value),
    /// Someone else holds a live lease, until `until` (Unix seconds): try again then.
    Busy { until: i64 },
}

/// Who holds a claim: a random token each worker run makes for itself. Only the owner may
/// complete or release its claim; a worker whose lease ran out and was taken over is told
/// so ([`StoreError::LeaseLost`]) and must stop.
#[derive(Clone, PartialEq, Eq)]
pub struct Owner(String);

impl Owner {
    pub fn new() -> Owner {
        let bytes: [u8; 16] = rand::random();
        Owner(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Owner {
    fn default() -> Self {
        Owner::new()
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Owner({}…)", &self.0[..6])
    }
}

pub trait WorkClaims: Send + Sync {
    /// Takes the once-only work `key` of an order for `owner`, unless it is done or leased to
    /// someone else; a lease that ran out is taken over.
    fn claim(
        &self,
        order: &OrderId,
        key: &str,
        owner: &Owner,
        now: i64,
        lease_until: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Claims several works of one order, as [`WorkClaims::claim`] does each, in one request
    /// where the store can: the claims in the order of `keys`.
    fn claim_all(
        &self,
        order: &OrderId,
        keys: &[String],
        owner: &Owner,
        now: i64,
        lease_until: i64,
    ) -> impl Future<Output = Result<Vec<Claim>, StoreError>> + Send {
        async move {
            let mut claims = Vec::with_capacity(keys.len());
            for key in keys {
                claims.push(self.claim(order, key, owner, now, lease_until).await?);
            }
            Ok(claims)
        }
    }

    /// Marks `owner`'s claimed work done, keeping its result; [`StoreError::LeaseLost`] if
    /// the claim is no longer `owner`'s.
    fn complete(
        &self,
        order: &OrderId,
        key: &str,
        owner: &Owner,
        result: &serde_json::Value,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks several of `owner`'s works done, as [`WorkClaims::complete`] does each, in one
    /// request where the store can. Those still `owner`'s are completed even when some are
    /// not, which then answers [`StoreError::LeaseLost`].
    fn complete_all(
        &self,
        order: &OrderId,
        owner: &Owner,
        done: &[(String, serde_json::Value)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let mut lost = false;
            for (key, result) in done {
                match self.complete(order, key, owner, result).await {
                    Ok(()) => {}
                    Err(StoreError::LeaseLost) => lost = true,
                    Err(e) => return Err(e),
                }
            }
            if lost {
                Err(StoreError::LeaseLost)
            } else {
                Ok(())
            }
        }
    }

    /// Of `works`, those nobody is doing: not done, and never claimed or with a lease run
    /// out. One read; nothing is claimed (the reconciler's look at what was left undone).
    fn unfinished(
        &self,
        order: &OrderId,
        works: &[String],
        now: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Gives up `owner`'s claim so the work can be retried; [`StoreError::LeaseLost`] if the
    /// claim is no longer `owner`'s (then it is left as it is).
    fn release(
        &self,
        order: &OrderId,
        key: &str,
        owner: &Owner,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
