//! Moodle enrolment through its Web Services REST protocol: find the buyer by email, create
//! an account when there is none, and enrol it manually in the course with the product's role.
//!
//! Moodle answers most errors with HTTP 200 and `{"exception", "errorcode", "message"}`; those
//! that a later attempt can get past (maintenance, database trouble) are retried, the rest are
//! permanent and reach the seller.

use super::course::{answered, HttpClient, PASSWORD_ALPHABET};
use crate::domain::Access;
use crate::ports::{EnrolError, Enrolment};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);
/// Moodle error codes that say "not now" rather than "never".
const TRANSIENT_ERRORS: &[&str] = &[
    "sitemaintenance",
    "dbconnectionfailed",
    "dmlreadexception",
    "dmlwriteexception",
    "dmltransactionexception",
    "servicebusy",
];

pub struct Moodle<'a> {
    pub http: &'a HttpClient,
    /// The site's address, without a trailing slash.
    pub url: &'a str,
    pub token: &'a SecretString,
    pub role_id: u32,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    username: String,
    #[serde(default)]
    idnumber: String,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
    username: String,
}

impl Moodle<'_> {
    pub async fn enrol(&self, e: &Enrolment) -> Result<Access, EnrolError> {
        let course_id: u64 = e.course_id.parse().map_err(|_| {
            EnrolError::Permanent(format!("`{}` is not a Moodle course id", e.course_id))
        })?;
        let marker = format!("nightshift:{}", e.step_id());
        let email = e.email.as_str().to_lowercase();
        let found: Vec<User> = self
            .call(
                "core_user_get_users_by_field",
                &[("field", "email".into()), ("values[0]", email.clone())],
            )
            .await?;
        let (user_id, username, password) = match found.into_iter().next() {
            // Made by an earlier attempt of this very step: its password is the same again.
            Some(user) if user.idnumber == marker => {
                (user.id, user.username, Some(self.password(&marker)))
            }
            // The buyer already has an account and keeps their own password.
            Some(user) => (user.id, user.username, None),
            None => {
                let password = self.password(&marker);
                let (first, last) = split_name(&e.name);
                let created: Vec<Created> = self
                    .call(
                        "core_user_create_users",
                        &[
                            ("users[0][username]", email.clone()),
                            ("users[0][password]", password.clone()),
                            ("users[0][firstname]", first),
                            ("users[0][lastname]", last),
                            ("users[0][email]", email.clone()),
                            ("users[0][auth]", "manual".into()),
                            ("users[0][idnumber]", marker.clone()),
                        ],
                    )
                    .await?;
                let user = created
                    .into_iter()
                    .next()
                    .ok_or_else(|| EnrolError::Permanent("Moodle created no user".into()))?;
                (user.id, user.username, Some(password))
            }
        };
        let _: Value = self
            .call(
                "enrol_manual_enrol_users",
                &[
                    ("enrolments[0][roleid]", self.role_id.to_string()),
                    ("enrolments[0][userid]", user_id.to_string()),
                    ("enrolments[0][courseid]", course_id.to_string()),
                ],
            )
            .await?;
        Ok(Access::Course {
            login_url: format!("{}/login/index.php", self.url),
            username,
            password,
        })
    }

    /// One Web Services call; Moodle's error answers become transient or permanent errors.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        function: &str,
        params: &[(&str, String)],
    ) -> Result<T, EnrolError> {
        let mut form = vec![
            ("wstoken", self.token.expose_secret().to_owned()),
            ("wsfunction", function.to_owned()),
            ("moodlewsrestformat", "json".to_owned()),
        ];
        form.extend(params.iter().map(|(k, v)| (*k, v.clone())));
        let response = self
            .http
            .post(format!("{}/webservice/rest/server.php", self.url))
            .timeout(TIMEOUT)
            .form(&form)
            .send()
            .await;
        let response = answered("Moodle", response)?;
        let body: Value = response.json().await.map_err(|_| {
            EnrolError::Transient(format!("Moodle's answer to {function} is not JSON"))
        })?;
        if let Some(code) = body.get("errorcode").and_then(Value::as_str) {
            let message = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let reason = format!("Moodle refused {function}: {code} ({message})");
            return Err(if TRANSIENT_ERRORS.contains(&code) {
                EnrolError::Transient(reason)
            } else {
                EnrolError::Permanent(reason)
            });
        }
        serde_json::from_value(body).map_err(|_| {
            EnrolError::Permanent(format!("Moodle's answer to {function} has another shape"))
        })
    }

    /// The new account's password, derived from the step so a retried step shows the same
    /// one; it meets Moodle's default policy (upper, lower, digit, symbol, 8+ characters).
    fn password(&self, marker: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.token.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"moodle-password:");
        mac.update(marker.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut password: String = bytes[..16]
            .iter()
            .map(|b| PASSWORD_ALPHABET[usize::from(*b) % PASSWORD_ALPHABET.len()] as char)
            .collect();
        const UPPER: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ";
        const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
        const DIGIT: &[u8] = b"23456789";
        const SYMBOL: &[u8] = b"#%+=?!";
        for (class, byte) in [UPPER, LOWER, DIGIT, SYMBOL].iter().zip(&bytes[16..20]) {
            password.push(class[usize::from(*byte) % class.len()] as char);
        }
        password
    }
}

/// Moodle wants a first and a last name; a single name is used as the first.
fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.rsplit_once(' ') {
        Some((first, last)) if !first.trim().is_empty() => {
            (first.trim().to_owned(), last.to_owned())
        }
        _ => (name.to_owned(), "-".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_last_space() {
        assert_eq!(
            split_name("Ann Marie Lee"),
            ("Ann Marie".into(), "Lee".into())
        );
        assert_eq!(split_name("Cher"), ("Cher".into(), "-".into()));
    }

    #[test]
    fn derived_passwords_repeat_per_step_and_meet_moodles_policy() {
        let http = crate::adapters::course::http_client().unwrap();
        let token = SecretString::from("t0ken");
        let moodle = Moodle {
            http: &http,
            url: "https://moodle.example.com",
            token: &token,
            role_id: 5,
        };
        let a = moodle.password("nightshift:ord_1:0");
        assert_eq!(a, moodle.password("nightshift:ord_1:0"));
        assert_ne!(a, moodle.password("nightshift:ord_1:1"));
        assert_eq!(a.len(), 20);
        assert!(a.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(a.bytes().any(|b| b.is_ascii_lowercase()));
        assert!(a.bytes().any(|b| b.is_ascii_digit()));
        assert!(a.bytes().any(|b| !b.is_ascii_alphanumeric()));
    }
}
