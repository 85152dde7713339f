//! HTTP answers shared by the functions: problem+json errors, HTML pages, JSON, redirects.
//! Plain `http` types, so this library stays free of Lambda types.

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use serde::Serialize;

/// An RFC 9457 problem: what went wrong, for people and programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

impl Problem {
    /// `slug` names the problem type, e.g. `sold-out`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("https://nightshift.dev/problems/{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    pub fn into_response(self) -> Response<String> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).expect("problems serialise");
        with_type(status, "application/problem+json", body)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 405; `allowed` is told to the client, e.g. "Use GET.".
    pub fn method_not_allowed(allowed: &str) -> Self {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            allowed,
        )
    }

    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong",
            "Please try again shortly.",
        )
    }
}

/// Whether a response is a problem (`application/problem+json`).
pub fn is_problem(response: &Response<String>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/problem+json")
}

fn with_type(status: StatusCode, content_type: &'static str, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub fn html(status: StatusCode, body: String) -> Response<String> {
    let mut response = with_type(status, "text/html; charset=utf-8", body);
    response
        .headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

pub fn json(status: StatusCode, value: &impl Serialize) -> Response<String> {
    with_type(
        status,
        "application/json",
        serde_json::to_string(value).expect("answers serialise"),
    )
}

pub fn redirect(location: &str) -> Response<String> {
    let mut response = with_type(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        String::new(),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The store's public base URL as the request reached it (`https://<host>`), for when it is
/// not configured: API Gateway sets `Host` and `X-Forwarded-Proto`.
pub fn request_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("https");
    let proto = if proto == "http" { "http" } else { "https" };
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(*c))
        .collect();
    format!("{proto}://{host}")
}

/// Whether the client is a browser that wants a page rather than a program that wants JSON:
/// it prefers `text/html` (by `Accept` and its q-values) over JSON, and it did not send
/// JSON itself.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let sent_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if sent_json {
        return false;
    }
    let (mut html, mut json) = (0.0_f32, 0.0_f32);
    for value in headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for entry in value.split(',') {
            let mut parts = entry.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "text/html" => html = html.max(q),
                "application/json" | "application/problem+json" => json = json.max(q),
                _ => {}
            }
        }
    }
    html > 0.0 && html > json
}

/// Whether the request body is an HTML form (`application/x-www-form-urlencoded`), which
/// only browsers send to these routes.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Pairs of an `application/x-www-form-urlencoded` body.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_browser_gets_pages_and_a_program_gets_json() {
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(&headers(&[("accept", chrome)])));
        assert!(!wants_html(&headers(&[])));
        assert!(!wants_html(&headers(&[("accept", "application/json")])));
        assert!(!wants_html(&headers(&[("accept", "*/*")])));
        assert!(!wants_html(&headers(&[("accept", "text/html;q=0")])));
        assert!(!wants_html(&headers(&[(
            "accept",
            "application/json, text/html;q=0.5"
        )])));
        // A program that sends JSON gets JSON back, whatever its Accept says (Java's default).
        assert!(!wants_html(&headers(&[
            (
                "accept",
                "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2"
            ),
            ("content-type", "application/json"),
        ])));
    }

    #[test]
    fn a_form_is_told_from_json() {
        assert!(is_form(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )])));
        assert!(!is_form(&headers(&[("content-type", "application/json")])));
    }
}
