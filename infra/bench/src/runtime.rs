//! A fake Lambda Runtime API on loopback: it hands the function one event, and notes when the
//! function first asked for work (the end of its init) and when it answered.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What one cold start looked like from the Runtime API's side.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The first `GET /2018-06-01/runtime/invocation/next`.
    pub first_next: Option<Instant>,
    /// The function's answer to the event.
    pub response: Option<Instant>,
    /// An `…/error` report, if the function made one.
    pub error: Option<String>,
}

pub struct FakeRuntime {
    pub address: String,
    pub seen: Arc<Mutex<Seen>>,
    pub answered: Arc<tokio::sync::Notify>,
}

const REQUEST_ID: &str = "8f5e5a1e-0000-4000-8000-bench0000001";

impl FakeRuntime {
    /// Serves `event` as the one invocation.
    pub async fn start(event: String) -> anyhow::Result<FakeRuntime> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let answered = Arc::new(tokio::sync::Notify::new());
        let (state, notify) = (seen.clone(), answered.clone());
        let event = Bytes::from(event);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, notify, event) = (state.clone(), notify.clone(), event.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (state, notify, event) = (state.clone(), notify.clone(), event.clone());
                        async move { answer(request, &state, &notify, event).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FakeRuntime {
            address,
            seen,
            answered,
        })
    }
}

async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<Seen>,
    answered: &tokio::sync::Notify,
    event: Bytes,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let now = Instant::now();
    let path = request.uri().path().to_owned();
    let reply = |status: u16, body: Bytes| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("a response")
    };
    if path.ends_with("/invocation/next") {
        let first = {
            let mut seen = state.lock().expect("lock");
            let first = seen.first_next.is_none();
            seen.first_next.get_or_insert(now);
            first
        };
        if !first {
            // One event per cold start: later polls wait until the process is stopped.
            std::future::pending::<()>().await;
        }
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() + 30_000)
            .unwrap_or(0);
        let response = hyper::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", REQUEST_ID)
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(event))
            .expect("a response");
        return Ok(response);
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    {
        let mut seen = state.lock().expect("lock");
        if path.ends_with("/response") {
            seen.response.get_or_insert(now);
        } else if path.ends_with("/error") {
            seen.error
                .get_or_insert_with(|| String::from_utf8_lossy(&body).into_owned());
        }
    }
    answered.notify_one();
    Ok(reply(202, Bytes::from_static(b"{}")))
}
