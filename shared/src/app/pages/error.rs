//! Pages that say what went wrong, in the store's look, for a person in a browser; programs
//! get the same problem as `application/problem+json`.

use crate::app::render::{RenderError, StoreView, Templates};
use crate::config::Store;
use crate::http::{html, is_problem, wants_html, Problem};
use serde::Serialize;

/// What an error page says, and where it sends the buyer next.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    /// A link onward: its words and where it goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<(&'a str, &'a str)>,
}

#[derive(Serialize)]
struct ErrorContext<'a> {
    store: StoreView<'a>,
    title: &'a str,
    message: &'a str,
    next_label: Option<&'a str>,
    next_url: Option<&'a str>,
    /// A button that posts back to the page's own address.
    confirm_label: Option<&'a str>,
}

pub fn error_page(
    store: &Store,
    templates: &Templates,
    page: &ErrorPage<'_>,
) -> Result<String, RenderError> {
    templates.render(
        "error.html",
        ErrorContext {
            store: StoreView::new(store),
            title: page.title,
            message: page.message,
            next_label: page.next.map(|(label, _)| label),
            next_url: page.next.map(|(_, url)| url),
            confirm_label: None,
        },
    )
}

/// A page that asks the visitor to confirm with one button, which posts back to the same
/// address (so that following a link alone changes nothing).
pub fn confirm_page(
    store: &Store,
    templates: &Templates,
    title: &str,
    message: &str,
    label: &str,
) -> Result<String, RenderError> {
    templates.render(
        "error.html",
        ErrorContext {
            store: StoreView::new(store),
            title,
            message,
            next_label: None,
            next_url: None,
            confirm_label: Some(label),
        },
    )
}

pub fn not_found_page(store: &Store, templates: &Templates) -> Result<String, RenderError> {
    error_page(
        store,
        templates,
        &ErrorPage {
            title: "Not found",
            message: "There is nothing at this address. If you followed a link from an email, check that it is complete.",
            next: None,
        },
    )
}

/// The one way a handler answers with a problem: a page in the store's look when a browser
/// asked (`Accept: text/html`), `application/problem+json` otherwise.
pub fn problem_answer(
    store: &Store,
    templates: &Templates,
    headers: &http::HeaderMap,
    problem: Problem,
) -> http::Response<String> {
    if !wants_html(headers) {
        return problem.into_response();
    }
    let status =
        http::StatusCode::from_u16(problem.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    let page = if status == http::StatusCode::NOT_FOUND {
        not_found_page(store, templates)
    } else {
        error_page(
            store,
            templates,
            &ErrorPage {
                title: &problem.title,
                message: &as_sentence(&problem.detail),
                next: None,
            },
        )
    };
    match page {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            problem.into_response()
        }
    }
}

/// A problem's detail as a page shows it: a capital first letter and a full stop.
fn as_sentence(detail: &str) -> String {
    let mut chars = detail.trim().chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A handler's answer as a browser should see it: a problem becomes a page in the store's
/// look when the client asked for HTML; anything else passes through unchanged.
pub fn for_browser(
    store: &Store,
    templates: &Templates,
    headers: &http::HeaderMap,
    response: http::Response<String>,
) -> http::Response<String> {
    if !wants_html(headers) || !is_problem(&response) {
        return response;
    }
    match serde_json::from_str::<Problem>(response.body()) {
        Ok(problem) => problem_answer(store, templates, headers, problem),
        Err(_) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::as_sentence;

    #[test]
    fn a_problems_detail_reads_as_a_sentence_on_a_page() {
        assert_eq!(
            as_sentence("this download link has expired"),
            "This download link has expired."
        );
        assert_eq!(as_sentence("Please try again."), "Please try again.");
        assert_eq!(as_sentence(""), "");
    }
}
