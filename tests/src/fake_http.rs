//! A tiny loopback HTTP server for fakes of other people's services: each request's method,
//! path, headers and body go to one function that answers with a status and a JSON body.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::sync::Arc;

pub struct Request {
    pub method: hyper::Method,
    pub path: String,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// Serves `answer` on 127.0.0.1 and returns the base URL (`http://127.0.0.1:port`).
pub async fn serve(answer: impl Fn(Request) -> (u16, String) + Send + Sync + 'static) -> String {
    serve_after(std::time::Duration::ZERO, answer).await
}

/// As [`serve`], answering each request only after `delay` (a slow service, so that work is
/// still in flight when a test stops the caller).
pub async fn serve_after(
    delay: std::time::Duration,
    answer: impl Fn(Request) -> (u16, String) + Send + Sync + 'static,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let answer = answer.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            tokio::time::sleep(delay).await;
                            let (status, text) = answer(Request {
                                method: parts.method,
                                path: parts.uri.path().to_owned(),
                                query: parts.uri.query().map(str::to_owned),
                                headers: parts.headers,
                                body,
                            });
                            let response = hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(text)))
                                .expect("response");
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    base
}
