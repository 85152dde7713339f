//! A fake Moodle site speaking the Web Services REST protocol the way Moodle documents it:
//! `POST /webservice/rest/server.php` with `wstoken`, `wsfunction`, `moodlewsrestformat=json`
//! and the function's parameters, form-encoded. Unknown functions, unknown or missing
//! parameter names and bad tokens get Moodle's own error answers (HTTP 200 with `exception`,
//! `errorcode`, `message`), and a test can script errors to come first.

use crate::fake_http::{serve, Request};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "moodle-ws-token-for-tests";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoodleUser {
    pub id: u64,
    pub username: String,
    pub email: String,
    pub idnumber: String,
    pub password: Option<String>,
}

#[derive(Default)]
pub struct MoodleLog {
    pub users: Vec<MoodleUser>,
    /// Courses that exist.
    pub courses: Vec<u64>,
    /// (user id, course id, role id) for each manual enrolment.
    pub enrolments: Vec<(u64, u64, u64)>,
    /// Every call, in order: the function and its parameters (token left out).
    pub calls: Vec<(String, BTreeMap<String, String>)>,
    /// (function, error code): the next call of that function answers with the code instead.
    pub errors: Vec<(String, String)>,
    /// Calls refused because the function or its parameters do not match Moodle's.
    pub refused: Vec<String>,
}

pub struct FakeMoodle {
    pub url: String,
    pub log: Arc<Mutex<MoodleLog>>,
}

impl FakeMoodle {
    pub async fn start(courses: &[u64]) -> FakeMoodle {
        let log = Arc::new(Mutex::new(MoodleLog {
            courses: courses.to_vec(),
            ..MoodleLog::default()
        }));
        let shared = log.clone();
        let url = serve(move |request| answer(&shared, request)).await;
        FakeMoodle { url, log }
    }

    pub fn add_user(&self, username: &str, email: &str) -> u64 {
        let mut log = self.log.lock().expect("lock");
        let id = 100 + log.users.len() as u64;
        log.users.push(MoodleUser {
            id,
            username: username.into(),
            email: email.into(),
            idnumber: String::new(),
            password: None,
        });
        id
    }

    pub fn functions(&self) -> Vec<String> {
        let log = self.log.lock().expect("lock");
        log.calls.iter().map(|(f, _)| f.clone()).collect()
    }
}

fn error(exception: &str, code: &str, message: &str) -> (u16, String) {
    let body = json!({"exception": exception, "errorcode": code, "message": message});
    (200, body.to_string())
}

fn answer(log: &Mutex<MoodleLog>, request: Request) -> (u16, String) {
    if request.method != hyper::Method::POST || request.path != "/webservice/rest/server.php" {
        return (404, "{}".into());
    }
    let mut params: BTreeMap<String, String> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    let mut log = log.lock().expect("lock");
    if params.remove("wstoken").as_deref() != Some(TOKEN) {
        return error(
            "moodle_exception",
            "invalidtoken",
            "Invalid token - token not found",
        );
    }
    let function = params.remove("wsfunction").unwrap_or_default();
    if params.remove("moodlewsrestformat").as_deref() != Some("json") {
        log.refused
            .push(format!("{function}: no moodlewsrestformat=json"));
        return (200, "<?xml version=\"1.0\"?><RESPONSE/>".into());
    }
    log.calls.push((function.clone(), params.clone()));
    if let Some(i) = log.errors.iter().position(|(f, _)| *f == function) {
        let (_, code) = log.errors.remove(i);
        return error("moodle_exception", &code, "scripted");
    }
    let (allowed, required): (&[&str], &[&str]) = match function.as_str() {
        "core_user_get_users_by_field" => (&["field", "values[0]"], &["field", "values[0]"]),
        "core_user_create_users" => (
            &[
                "users[0][username]",
                "users[0][password]",
                "users[0][createpassword]",
                "users[0][firstname]",
                "users[0][lastname]",
                "users[0][email]",
                "users[0][auth]",
                "users[0][idnumber]",
                "users[0][lang]",
                "users[0][city]",
                "users[0][country]",
            ],
            &[
                "users[0][username]",
                "users[0][firstname]",
                "users[0][lastname]",
                "users[0][email]",
            ],
        ),
        "enrol_manual_enrol_users" => (
            &[
                "enrolments[0][roleid]",
                "enrolments[0][userid]",
                "enrolments[0][courseid]",
                "enrolments[0][timestart]",
                "enrolments[0][timeend]",
                "enrolments[0][suspend]",
            ],
            &[
                "enrolments[0][roleid]",
                "enrolments[0][userid]",
                "enrolments[0][courseid]",
            ],
        ),
        other => {
            log.refused.push(format!("unknown function {other}"));
            return error(
                "dml_missing_record_exception",
                "invalidrecord",
                "Can't find data record in database table external_functions.",
            );
        }
    };
    let unexpected: Vec<&String> = params
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    let missing: Vec<&&str> = required
        .iter()
        .filter(|k| !params.contains_key(**k))
        .collect();
    if !unexpected.is_empty() || !missing.is_empty() {
        log.refused.push(format!(
            "{function}: unexpected {unexpected:?}, missing {missing:?}"
        ));
        return error(
            "invalid_parameter_exception",
            "invalidparameter",
            "Invalid parameter value detected",
        );
    }
    let number = |key: &str| params[key].parse::<u64>().unwrap_or(0);
    match function.as_str() {
        "core_user_get_users_by_field" => {
            let (field, value) = (&params["field"], &params["values[0]"]);
            let found: Vec<Value> = log
                .users
                .iter()
                .filter(|u| field == "email" && u.email.eq_ignore_ascii_case(value))
                .map(|u| json!({"id": u.id, "username": u.username, "email": u.email, "idnumber": u.idnumber, "fullname": "x"}))
                .collect();
            (200, Value::Array(found).to_string())
        }
        "core_user_create_users" => {
            let username = params["users[0][username]"].clone();
            let password = params.get("users[0][password]").cloned();
            let strong = password.as_deref().is_some_and(|p| {
                p.len() >= 8
                    && p.bytes().any(|b| b.is_ascii_uppercase())
                    && p.bytes().any(|b| b.is_ascii_lowercase())
                    && p.bytes().any(|b| b.is_ascii_digit())
                    && p.bytes().any(|b| !b.is_ascii_alphanumeric())
            });
            if username != username.to_lowercase()
                || (!strong && !params.contains_key("users[0][createpassword]"))
            {
                return error(
                    "invalid_parameter_exception",
                    "invalidparameter",
                    "Invalid parameter value detected",
                );
            }
            if log.users.iter().any(|u| u.username == username) {
                return error(
                    "invalid_parameter_exception",
                    "invalidparameter",
                    "Username already exists",
                );
            }
            let id = 100 + log.users.len() as u64;
            log.users.push(MoodleUser {
                id,
                username: username.clone(),
                email: params["users[0][email]"].clone(),
                idnumber: params
                    .get("users[0][idnumber]")
                    .cloned()
                    .unwrap_or_default(),
                password,
            });
            (200, json!([{"id": id, "username": username}]).to_string())
        }
        _ => {
            let (user, course, role) = (
                number("enrolments[0][userid]"),
                number("enrolments[0][courseid]"),
                number("enrolments[0][roleid]"),
            );
            if !log.courses.contains(&course) {
                return error(
                    "dml_missing_record_exception",
                    "invalidrecord",
                    "Can't find data record in database table course.",
                );
            }
            if !log.users.iter().any(|u| u.id == user) {
                return error(
                    "dml_missing_record_exception",
                    "invalidrecord",
                    "Can't find data record in database table user.",
                );
            }
            if !log.enrolments.contains(&(user, course, role)) {
                log.enrolments.push((user, course, role));
            }
            (200, "null".into())
        }
    }
}
