//! A fake LMS for the webhook course provider: checks the signature, counts enrolments, and
//! can answer with failures first.

use crate::fake_http::serve_after;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct LmsLog {
    /// Every request body that carried a valid signature.
    pub enrolments: Vec<Value>,
    pub bad_signatures: usize,
    /// Statuses to answer with before succeeding, first one first.
    pub failures: Vec<u16>,
}

pub struct FakeLms {
    pub url: String,
    pub log: Arc<Mutex<LmsLog>>,
}

impl FakeLms {
    pub async fn start(secret: &str, failures: Vec<u16>) -> FakeLms {
        Self::start_slow(secret, failures, Duration::ZERO).await
    }

    /// An LMS that takes `delay` to answer each enrolment.
    pub async fn start_slow(secret: &str, failures: Vec<u16>, delay: Duration) -> FakeLms {
        let log = Arc::new(Mutex::new(LmsLog {
            failures,
            ..LmsLog::default()
        }));
        let (secret, shared) = (secret.to_owned(), log.clone());
        let base = serve_after(delay, move |request| {
            let signature = request
                .headers
                .get("nightshift-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            answer(&secret, signature, &request.body, &shared)
        })
        .await;
        FakeLms {
            url: format!("{base}/enrol"),
            log,
        }
    }

    pub fn enrolments(&self) -> Vec<Value> {
        self.log.lock().expect("lock").enrolments.clone()
    }
}

fn answer(secret: &str, signature: &str, body: &[u8], log: &Mutex<LmsLog>) -> (u16, String) {
    let mut log = log.lock().expect("lock");
    let timestamp = signature
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse::<i64>().ok());
    let valid = timestamp.is_some_and(|t| crate::sign(secret, t, body) == signature);
    if !valid {
        log.bad_signatures += 1;
        return (401, "{}".into());
    }
    if !log.failures.is_empty() {
        let status = log.failures.remove(0);
        return (status, "{\"error\":\"scripted\"}".into());
    }
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    log.enrolments.push(request.clone());
    let answer = serde_json::json!({
        "login_url": "https://lms.example.com/login",
        "username": format!("student-{}", log.enrolments.len()),
        "password": "lms-pass-123456",
    });
    (200, answer.to_string())
}
