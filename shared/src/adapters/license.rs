//! The store's licence signing key: signs each key a line delivers, and the revocation list.

use crate::environment::{Secrets, LICENSE_SIGNING_KEY_SECRET};
use crate::ports::{LicenseSigner, SignError};
use nightshift_license::{License, SigningKey, VerifyingKey};
use secrecy::ExposeSecret;

#[derive(Clone)]
pub struct LicenseKeys {
    signing: Option<SigningKey>,
}

#[derive(Debug, thiserror::Error)]
#[error("the secret `{LICENSE_SIGNING_KEY_SECRET}` is not 64 hex digits (make one with `nightshift keys generate`)")]
pub struct BadSigningKey;

impl LicenseKeys {
    pub fn new(signing: Option<SigningKey>) -> Self {
        LicenseKeys { signing }
    }

    /// The signing key from the named secrets, if there is one; a malformed one is an error.
    pub fn from_secrets(secrets: &Secrets) -> Result<Self, BadSigningKey> {
        let signing = secrets
            .get(LICENSE_SIGNING_KEY_SECRET)
            .map(|hex| nightshift_license::signing_key_from_hex(hex.expose_secret()))
            .transpose()
            .map_err(|_| BadSigningKey)?;
        Ok(LicenseKeys { signing })
    }
}

impl LicenseSigner for LicenseKeys {
    fn sign(&self, license: &License) -> Result<String, SignError> {
        let key = self.signing.as_ref().ok_or(SignError::NoKey)?;
        Ok(nightshift_license::sign(key, license)?)
    }

    fn sign_revocations(&self, issued_at: u64, ids: &[String]) -> Result<String, SignError> {
        let key = self.signing.as_ref().ok_or(SignError::NoKey)?;
        Ok(nightshift_license::sign_revocations(key, issued_at, ids))
    }

    fn public_key(&self) -> Option<VerifyingKey> {
        self.signing.as_ref().map(SigningKey::verifying_key)
    }
}
