//! What the store says about its licence keys: the signed revocation list, and one key's
//! status (valid, expired or revoked) for software that can check online.

use crate::ports::{LicenseSigner, OrderStore, SignError, StoreError};
use nightshift_license::LicenseError;
use serde::Serialize;

/// `GET /licenses/revoked.json`. Software checks `signature` with
/// `nightshift_license::verify_revocations(public key, issued_at, revoked, signature)`.
#[derive(Debug, Serialize)]
pub struct RevocationList {
    pub v: u8,
    pub issued_at: u64,
    pub revoked: Vec<String>,
    pub signature: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Valid,
    Expired,
    Revoked,
}

/// `GET /licenses/{key}/status`.
#[derive(Debug, Serialize)]
pub struct LicenseStatus {
    pub status: Standing,
    pub product: String,
    pub order_id: String,
    pub line: u16,
    pub seats: u32,
    pub issued_at: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum LicenseQueryError {
    #[error("this store does not sell licence keys")]
    NoKeys,
    #[error(transparent)]
    Invalid(#[from] LicenseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SignError> for LicenseQueryError {
    fn from(e: SignError) -> Self {
        match e {
            SignError::NoKey => LicenseQueryError::NoKeys,
            SignError::Format(e) => LicenseQueryError::Invalid(e),
        }
    }
}

pub async fn revocation_list<S: OrderStore, K: LicenseSigner>(
    orders: &S,
    keys: &K,
    now: i64,
) -> Result<RevocationList, LicenseQueryError> {
    let revoked = orders.revoked_licenses().await?;
    let issued_at = u64::try_from(now).unwrap_or(0);
    let signature = keys.sign_revocations(issued_at, &revoked)?;
    Ok(RevocationList {
        v: 1,
        issued_at,
        revoked,
        signature,
    })
}

pub async fn license_status<S: OrderStore, K: LicenseSigner>(
    orders: &S,
    keys: &K,
    key: &str,
    now: i64,
) -> Result<LicenseStatus, LicenseQueryError> {
    let public = keys.public_key().ok_or(LicenseQueryError::NoKeys)?;
    let license = nightshift_license::verify(&public, key)?;
    let status = if orders.is_license_revoked(&license.id()).await? {
        Standing::Revoked
    } else if license.is_expired(u64::try_from(now).unwrap_or(0)) {
        Standing::Expired
    } else {
        Standing::Valid
    };
    Ok(LicenseStatus {
        status,
        product: license.product,
        order_id: license.order_id,
        line: license.line,
        seats: license.seats,
        issued_at: license.issued_at,
        expires_at: license.expires_at,
    })
}
