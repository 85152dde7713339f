//! Course enrolment: the built-in provider makes a login itself; the webhook provider asks
//! the seller's LMS with a signed request; Moodle sites are enrolled through `moodle`.

use crate::config::CourseProvider;
use crate::domain::Access;
use crate::ports::{Clock, CourseEnroller, EnrolError, Enrolment};
use crate::signature;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

/// Password characters: letters and digits without the ones people misread (0/O, 1/l/I).
pub(super) const PASSWORD_ALPHABET: &[u8] =
    b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
const PASSWORD_LENGTH: usize = 16;
const LMS_TIMEOUT: Duration = Duration::from_secs(10);

pub struct CourseProviders<C: Clock> {
    http: reqwest::Client,
    /// Named secrets the store's webhook providers refer to.
    secrets: HashMap<String, SecretString>,
    clock: C,
}

#[derive(Deserialize)]
struct LmsAnswer {
    login_url: String,
    username: String,
    #[serde(default)]
    password: Option<String>,
}

impl<C: Clock> CourseProviders<C> {
    pub fn new(http: reqwest::Client, secrets: HashMap<String, SecretString>, clock: C) -> Self {
        CourseProviders {
            http,
            secrets,
            clock,
        }
    }

    /// POSTs `body` as JSON signed with the named secret (`Nightshift-Signature`), with an
    /// `Idempotency-Key` the receiver can recognise a retry by.
    async fn post_signed(
        &self,
        url: &str,
        secret_name: &str,
        body: Vec<u8>,
        idempotency_key: &str,
    ) -> Result<Result<reqwest::Response, reqwest::Error>, String> {
        let secret = self
            .secrets
            .get(secret_name)
            .ok_or_else(|| format!("the secret `{secret_name}` is not configured"))?;
        let header = signature::sign(secret.expose_secret().as_bytes(), self.clock.now(), &body);
        Ok(self
            .http
            .post(url)
            .timeout(LMS_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signature::HEADER, header)
            .header("Idempotency-Key", idempotency_key)
            .body(body)
            .send()
            .await)
    }

    async fn ask_lms(
        &self,
        url: &str,
        secret_name: &str,
        e: &Enrolment,
    ) -> Result<Access, EnrolError> {
        let body = serde_json::to_vec(e).expect("enrolments serialise");
        // The key lets the LMS recognise a retry of the same enrolment.
        let key = e.step_id();
        let response = self
            .post_signed(url, secret_name, body, &key)
            .await
            .map_err(EnrolError::Permanent)?;
        let response = answered("the LMS", response)?;
        let answer: LmsAnswer = response.json().await.map_err(|_| {
            EnrolError::Permanent(
                "the LMS answer is not {login_url, username, password?} JSON".into(),
            )
        })?;
        Ok(Access::Course {
            login_url: answer.login_url,
            username: answer.username,
            password: answer.password,
        })
    }
}

/// A provider's HTTP answer, or the error it means: no answer, 5xx and 429 are worth
/// retrying; any other non-success status is permanent.
pub(super) fn answered(
    provider: &str,
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, EnrolError> {
    let response = response.map_err(|err| {
        EnrolError::Transient(format!("no answer from {provider}: {}", without_url(&err)))
    })?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(EnrolError::Transient(format!(
            "{provider} answered {status}"
        )));
    }
    if !status.is_success() {
        return Err(EnrolError::Permanent(format!(
            "{provider} answered {status}"
        )));
    }
    Ok(response)
}

fn without_url(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

pub fn random_password() -> String {
    let mut rng = rand::rng();
    (0..PASSWORD_LENGTH)
        .map(|_| PASSWORD_ALPHABET[rng.random_range(0..PASSWORD_ALPHABET.len())] as char)
        .collect()
}

impl<C: Clock> CourseEnroller for CourseProviders<C> {
    async fn enrol(
        &self,
        provider: &CourseProvider,
        enrolment: &Enrolment,
    ) -> Result<Access, EnrolError> {
        match provider {
            CourseProvider::Builtin { login_url } => Ok(Access::Course {
                login_url: login_url.clone(),
                username: enrolment.email.to_string(),
                password: Some(random_password()),
            }),
            CourseProvider::Webhook { url, secret } => self.ask_lms(url, secret, enrolment).await,
            CourseProvider::Moodle {
                url,
                token,
                role_id,
            } => {
                let token = self.secrets.get(token).ok_or_else(|| {
                    EnrolError::Permanent(format!("the secret `{token}` is not configured"))
                })?;
                let moodle = super::moodle::Moodle {
                    http: &self.http,
                    url,
                    token,
                    role_id: *role_id,
                };
                moodle.enrol(enrolment).await
            }
        }
    }
}

pub type HttpClient = reqwest::Client;

/// The HTTP client for outgoing calls (LMS, seller webhooks), built once per cold start.
/// The HTTP client for gateways and providers. Its TLS uses rustls with aws-lc-rs, installed
/// as the process's provider here: the AWS SDK links aws-lc-rs already, so no second crypto
/// library (ring) is linked into the bootstraps.
pub fn http_client() -> Result<HttpClient, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("nightshift/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Makes aws-lc-rs the process's rustls provider (once; later calls change nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

impl<C: Clock> crate::ports::SellerNotifier for CourseProviders<C> {
    async fn notify(
        &self,
        url: &str,
        secret: &str,
        body: &[u8],
        idempotency_key: &str,
    ) -> Result<(), crate::ports::NotifyError> {
        use crate::ports::NotifyError;
        let response = self
            .post_signed(url, secret, body.to_vec(), idempotency_key)
            .await
            .map_err(NotifyError::Permanent)?;
        match answered("the webhook", response) {
            Ok(_) => Ok(()),
            Err(EnrolError::Transient(reason)) => Err(NotifyError::Transient(reason)),
            Err(EnrolError::Permanent(reason)) => Err(NotifyError::Permanent(reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_and_differ() {
        let a = random_password();
        assert!(a.len() >= 12);
        assert!(a.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        assert_ne!(a, random_password());
    }
}
