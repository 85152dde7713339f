//! Dev pages: the mail and SMS outboxes (HTML and JSON), dead letters, and an index of the
//! store.

use super::adapters::Adapters;
use super::Stack;
use http::{Response, StatusCode};
use serde::Serialize;
use shared::app::render::StoreView;
use shared::http::{html, Problem};
use shared::ports::OutgoingMail;

const OUTBOX_TEMPLATE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Outbox · {{ store.name }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;background:#f6f7f9}
article{background:#fff;padding:1rem 1.5rem;margin:0 0 1.5rem;border-radius:.4rem}
pre{white-space:pre-wrap;background:#f1f2f4;padding:.8rem}iframe{width:100%;height:28rem;border:1px solid #ddd}</style></head>
<body><h1>Outbox ({{ mails|length }})</h1>
{% for mail in mails|reverse %}
<article>
<h2>{{ mail.subject }}</h2>
<p>From {{ mail.from }} to {{ mail.to|join(", ") }}{% if mail.cc %}, cc {{ mail.cc|join(", ") }}{% endif %}{% if mail.bcc %}, bcc {{ mail.bcc|join(", ") }}{% endif %}</p>
<iframe sandbox srcdoc="{{ mail.html }}"></iframe>
<details><summary>Text part</summary><pre>{{ mail.text }}</pre></details>
</article>
{% else %}<p>No mail yet.</p>{% endfor %}
</body></html>"#;

const SMS_TEMPLATE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SMS outbox · {{ store.name }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;background:#f6f7f9}
article{background:#fff;padding:1rem 1.5rem;margin:0 0 1rem;border-radius:.4rem;max-width:36rem}</style></head>
<body><h1>SMS outbox ({{ texts|length }})</h1>
{% for text in texts|reverse %}
<article><p><strong>To {{ text.to }}</strong></p><p>{{ text.text }}</p></article>
{% else %}<p>No text messages yet.</p>{% endfor %}
</body></html>"#;

const INDEX_TEMPLATE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ store.name }} (dev)</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}</style></head>
<body><h1>{{ store.name }}: dev stack</h1>
<ul>{% for p in products %}<li><a href="{{ p.url }}">{{ p.name }}</a> ({{ p.price }})</li>{% endfor %}</ul>
<p><a href="/dev/outbox">Outbox</a> · <a href="/dev/outbox.json">outbox.json</a> · <a href="/dev/sms">SMS</a> · <a href="/dev/sms.json">sms.json</a> · <a href="/dev/dead-letters.json">dead letters</a></p>
</body></html>"#;

#[derive(Serialize)]
struct Index<'a> {
    store: StoreView<'a>,
    products: Vec<IndexProduct>,
}

#[derive(Serialize)]
struct IndexProduct {
    name: String,
    price: String,
    url: String,
}

#[derive(Serialize)]
struct Outbox<'a> {
    store: StoreView<'a>,
    mails: &'a [OutgoingMail],
}

fn render(source: &str, context: impl Serialize) -> Response<String> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    match env.render_str(source, context) {
        Ok(page) => html(StatusCode::OK, page),
        Err(_) => Problem::internal().into_response(),
    }
}

/// Mail sent through SES is not kept here: read it where SES keeps it.
fn not_local() -> Response<String> {
    Problem::not_found("This dev stack sends mail through SES; there is no local outbox.")
        .into_response()
}

pub fn page<A: Adapters>(stack: &Stack<A>) -> Response<String> {
    let Some(local) = &stack.local else {
        return not_local();
    };
    match local.outbox.mails() {
        Ok(mails) => render(
            OUTBOX_TEMPLATE,
            Outbox {
                store: StoreView::new(&stack.store),
                mails: &mails,
            },
        ),
        Err(_) => Problem::internal().into_response(),
    }
}

/// Every mail in the outbox, oldest first; `?from=N` skips the first `N` (to follow it).
pub fn json<A: Adapters>(stack: &Stack<A>, query: Option<&str>) -> Response<String> {
    let Some(local) = &stack.local else {
        return not_local();
    };
    let from = match shared::http::form_pairs(query.unwrap_or_default().as_bytes())
        .into_iter()
        .find(|(k, _)| k == "from")
        .map(|(_, v)| v.parse::<u64>())
    {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                "Bad query",
                "`from` must be a number of mails to skip.",
            )
            .into_response()
        }
    };
    match local.outbox.mails_from(from) {
        Ok(mails) => json_answer(&mails),
        Err(_) => Problem::internal().into_response(),
    }
}

/// The texts the dev stack would have sent, newest first (`/dev/sms`) or oldest first as
/// JSON (`/dev/sms.json`).
pub fn texts<A: Adapters>(stack: &Stack<A>, as_json: bool) -> Response<String> {
    let Some(local) = &stack.local else {
        return Problem::not_found(
            "This dev stack sends texts through AWS; there is no local SMS outbox.",
        )
        .into_response();
    };
    let Ok(texts) = local.texts.texts() else {
        return Problem::internal().into_response();
    };
    if as_json {
        return json_answer(&texts);
    }
    render(
        SMS_TEMPLATE,
        serde_json::json!({ "store": StoreView::new(&stack.store), "texts": texts }),
    )
}

fn json_answer(value: &impl Serialize) -> Response<String> {
    shared::http::json(StatusCode::OK, value)
}

pub fn dead_letters<A: Adapters>(stack: &Stack<A>) -> Response<String> {
    let Some(local) = &stack.local else {
        return not_local();
    };
    let dead: Vec<serde_json::Value> = local
        .queue
        .dead_letters()
        .into_iter()
        .map(|(queue, d)| serde_json::json!({ "queue": queue, "message_id": d.message_id, "body": d.body, "receive_count": d.receive_count }))
        .collect();
    json_answer(&dead)
}

pub fn index<A: Adapters>(stack: &Stack<A>) -> Response<String> {
    let products = stack
        .store
        .products
        .values()
        .map(|p| IndexProduct {
            name: p.name.clone(),
            price: p.price.to_string(),
            url: stack.urls.buy(&p.sku),
        })
        .collect();
    render(
        INDEX_TEMPLATE,
        Index {
            store: StoreView::new(&stack.store),
            products,
        },
    )
}
