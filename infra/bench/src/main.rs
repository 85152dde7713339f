//! `make bench`: cold starts of the release bootstraps (as `sam build` makes them) under a
//! fake Lambda Runtime API, beside a Python boto3 peer under the same API. Prints a Markdown
//! report and writes it as JSON under `target/bench/`.

mod runtime;
mod stats;
mod warm;

use anyhow::Context;
use runtime::{FakeRuntime, Seen};
use serde_json::json;
use stats::{millis, percentile};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Targets from the benchmark issue.
const INIT_P50_TARGET_MS: f64 = 15.0;
const PEER_RATIO_TARGET: f64 = 30.0;
const SIZE_TARGET_BYTES: u64 = 8 * 1024 * 1024;
const WARM_P99_TARGET_MS: f64 = 1.0;

struct Options {
    bootstraps: PathBuf,
    python: PathBuf,
    peer: PathBuf,
    runs: usize,
    out: PathBuf,
    store: PathBuf,
    /// Only the warm handler latencies (no bootstraps needed).
    warm_only: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        bootstraps: PathBuf::from("target/lambda"),
        python: PathBuf::from(".venv/bin/python"),
        peer: PathBuf::from("infra/bench/peer.py"),
        runs: 20,
        out: PathBuf::from("target/bench"),
        store: PathBuf::from("store.toml"),
        warm_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--warm-only" {
            options.warm_only = true;
            continue;
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bootstraps" => options.bootstraps = value.into(),
            "--python" => options.python = value.into(),
            "--peer" => options.peer = value.into(),
            "--runs" => options.runs = value.parse().context("--runs takes a number")?,
            "--out" => options.out = value.into(),
            "--store" => options.store = value.into(),
            other => anyhow::bail!(
                "unknown flag {other} (--bootstraps DIR, --python FILE, --peer FILE, --runs N, --out DIR)"
            ),
        }
    }
    Ok(options)
}

/// An API Gateway HTTP API (payload 2.0) request.
fn http_event(method: &str, path: &str) -> String {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "host": "bench.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com", "domainPrefix": "bench",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench" },
            "requestId": "bench", "routeKey": format!("{method} {path}"), "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 1_795_392_000_000_u64
        },
        "isBase64Encoded": false
    })
    .to_string()
}

/// An SQS batch of one record.
fn sqs_event(body: &str) -> String {
    json!({ "Records": [{
        "messageId": "bench-1", "receiptHandle": "bench", "body": body,
        "attributes": { "ApproximateReceiveCount": "1" }, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench", "awsRegion": "us-east-1"
    }]})
    .to_string()
}

/// A function, and a first event it answers without calling AWS (so the figure is the
/// process, the runtime and the handler, not a network).
struct Function {
    name: &'static str,
    event: String,
}

fn functions() -> Vec<Function> {
    vec![
        Function {
            name: "checkout",
            event: http_event("GET", "/buy/rust-course"),
        },
        Function {
            name: "payment-callback",
            event: http_event("POST", "/payments/testpay/webhook"),
        },
        Function {
            name: "order-page",
            event: http_event("GET", "/orders/not-a-token"),
        },
        Function {
            name: "downloads",
            event: http_event("GET", "/downloads/not-a-token"),
        },
        Function {
            name: "fulfillment",
            event: sqs_event("{\"v\":1,\"type\":\"unknown\"}"),
        },
        Function {
            name: "mailer",
            event: sqs_event("{\"v\":1,\"type\":\"unknown\"}"),
        },
    ]
}

/// The environment Lambda and the template give a function; secrets as variables so init
/// reads no SSM, and an AWS endpoint nothing listens on so no request can leave the machine.
fn environment(runtime_api: &str, name: &str) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = &[
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("NIGHTSHIFT_TABLE", "bench"),
        ("NIGHTSHIFT_STAGE", "bench"),
        ("NIGHTSHIFT_SECRETS_PREFIX", "/nightshift/bench/"),
        (
            "NIGHTSHIFT_FULFILLMENT_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/bench-fulfillment",
        ),
        (
            "NIGHTSHIFT_MAIL_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/bench-mail",
        ),
        ("NIGHTSHIFT_DOWNLOADS_BUCKET", "example-store-downloads"),
        ("NIGHTSHIFT_SECRET_TESTPAY", "bench-testpay-secret"),
        ("NIGHTSHIFT_SECRET_ORDER_TOKENS", "bench-order-token-secret"),
        (
            "NIGHTSHIFT_SECRET_LICENSE_SIGNING_KEY",
            "0909090909090909090909090909090909090909090909090909090909090909",
        ),
    ];
    let mut env: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.push(("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.into()));
    env
}

/// One cold start: process start → first `next` (init), → answer (first invocation), and the
/// process's peak resident memory.
struct ColdStart {
    init: Duration,
    first_invocation: Duration,
    peak_kib: u64,
}

async fn cold_start(
    program: &Path,
    args: &[&Path],
    name: &str,
    event: &str,
) -> anyhow::Result<ColdStart> {
    let runtime = FakeRuntime::start(event.to_owned()).await?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(environment(&runtime.address, name))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let pid = child.id().unwrap_or(0);
    let deadline = started + Duration::from_secs(30);
    let seen: Seen = loop {
        let seen = runtime.seen.lock().expect("lock").clone();
        if seen.response.is_some() || seen.error.is_some() {
            break seen;
        }
        if Instant::now() > deadline {
            anyhow::bail!("{name} did not answer its event within 30 s");
        }
        if let Ok(Some(status)) = child.try_wait() {
            anyhow::bail!("{name} exited with {status} before answering");
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), runtime.answered.notified()).await;
    };
    let peak_kib = peak_memory_kib(pid).unwrap_or(0);
    let _ = child.kill().await;
    if let Some(error) = seen.error {
        anyhow::bail!("{name} reported an error: {error}");
    }
    let first_next = seen.first_next.context("no `next` before the answer")?;
    Ok(ColdStart {
        init: first_next - started,
        first_invocation: seen.response.context("no answer")? - first_next,
        peak_kib,
    })
}

/// `VmHWM` from `/proc/<pid>/status`: the most resident memory the process has had.
fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Row {
    name: String,
    size: Option<u64>,
    init: Vec<Duration>,
    first: Vec<Duration>,
    peak_kib: u64,
}

impl Row {
    fn p(&self, samples: &[Duration], p: f64) -> f64 {
        percentile(samples, p).map(millis).unwrap_or(f64::NAN)
    }
}

async fn measure(
    name: &str,
    program: &Path,
    args: &[&Path],
    event: &str,
    runs: usize,
) -> anyhow::Result<Row> {
    // One unmeasured start warms the page cache, as a Lambda worker's disk would be.
    cold_start(program, args, name, event).await?;
    let mut row = Row {
        name: name.to_owned(),
        size: None,
        init: Vec::new(),
        first: Vec::new(),
        peak_kib: 0,
    };
    for _ in 0..runs {
        let start = cold_start(program, args, name, event).await?;
        row.init.push(start.init);
        row.first.push(start.first_invocation);
        row.peak_kib = row.peak_kib.max(start.peak_kib);
    }
    Ok(row)
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "MISS"
    }
}

/// Warm latency of the handlers in process; prints its table and gives its JSON.
async fn warm_report(options: &Options) -> anyhow::Result<serde_json::Value> {
    let (n, warmup) = (300, 30);
    let timings = warm::run(&options.store, n, warmup).await?;
    println!(
        "## Warm handler latency ({n} calls each after {warmup}, in process, embedded adapters)\n"
    );
    println!("| handler | p50 | p99 | p99 ≤ 1 ms |");
    println!("| --- | ---: | ---: | --- |");
    let mut rows = Vec::new();
    for t in &timings {
        let (p50, p99) = (t.p(50.0), t.p(99.0));
        println!(
            "| {} | {p50:.3} ms | {p99:.3} ms | {} |",
            t.name,
            pass(p99 <= WARM_P99_TARGET_MS)
        );
        rows.push(json!({ "handler": t.name, "p50_ms": p50, "p99_ms": p99, "target": p99 <= WARM_P99_TARGET_MS }));
    }
    println!("\nEach order is checked out, paid by a signed webhook, fulfilled (a built-in course login) and its page read as JSON; the embedded store is redb in memory.\n");
    Ok(json!({ "calls": n, "warmup": warmup, "handlers": rows }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let warm = warm_report(&options).await?;
    std::fs::create_dir_all(&options.out)?;
    std::fs::write(
        options.out.join("warm.json"),
        serde_json::to_string_pretty(&warm)?,
    )?;
    if options.warm_only {
        return Ok(());
    }
    let mut rows = Vec::new();
    for function in functions() {
        let bootstrap = options.bootstraps.join(function.name).join("bootstrap");
        let size = std::fs::metadata(&bootstrap)
            .with_context(|| {
                format!(
                    "no {} (run `make bench`, which builds it)",
                    bootstrap.display()
                )
            })?
            .len();
        let mut row = measure(
            function.name,
            &bootstrap,
            &[],
            &function.event,
            options.runs,
        )
        .await?;
        row.size = Some(size);
        eprintln!("measured {}", function.name);
        rows.push(row);
    }
    let peer = measure(
        "python-boto3-peer",
        &options.python,
        &[options.peer.as_path()],
        &http_event("GET", "/"),
        options.runs,
    )
    .await?;
    eprintln!("measured the Python peer");

    let peer_p50 = peer.p(&peer.init, 50.0);
    println!(
        "## Cold start ({} runs each, fake Runtime API on loopback)\n",
        options.runs
    );
    println!("| function | bootstrap | ≤ 8 MB | init p50 | init p90 | ≤ 15 ms | vs peer (≥ 30×) | first invocation p50 | peak memory |");
    println!("| --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |");
    let mut json_rows = Vec::new();
    for row in &rows {
        let size = row.size.unwrap_or(0);
        let (p50, p90, first) = (
            row.p(&row.init, 50.0),
            row.p(&row.init, 90.0),
            row.p(&row.first, 50.0),
        );
        let ratio = peer_p50 / p50;
        println!(
            "| {} | {:.1} MB | {} | {p50:.1} ms | {p90:.1} ms | {} | {ratio:.0}× {} | {first:.2} ms | {:.1} MB |",
            row.name,
            size as f64 / 1_048_576.0,
            pass(size <= SIZE_TARGET_BYTES),
            pass(p50 <= INIT_P50_TARGET_MS),
            pass(ratio >= PEER_RATIO_TARGET),
            row.peak_kib as f64 / 1024.0,
        );
        json_rows.push(json!({
            "function": row.name, "bootstrap_bytes": size,
            "init_ms": { "p50": p50, "p90": p90 }, "first_invocation_ms": { "p50": first },
            "peak_memory_kib": row.peak_kib, "peer_ratio": ratio,
            "targets": { "size": size <= SIZE_TARGET_BYTES, "init_p50": p50 <= INIT_P50_TARGET_MS, "peer_ratio": ratio >= PEER_RATIO_TARGET },
        }));
    }
    println!(
        "| Python 3 + boto3 peer | – | – | {peer_p50:.1} ms | {:.1} ms | – | 1× | {:.2} ms | {:.1} MB |",
        peer.p(&peer.init, 90.0),
        peer.p(&peer.first, 50.0),
        peer.peak_kib as f64 / 1024.0,
    );
    println!("\nInit is process start to its first `GET /2018-06-01/runtime/invocation/next`; the first invocation is that `next` to the function's answer (an event it answers without AWS calls). Peak memory is the largest `VmHWM` seen. A miss does not fail the bench.");

    std::fs::create_dir_all(&options.out)?;
    let report = json!({
        "runs": options.runs,
        "functions": json_rows,
        "peer": { "name": "python3 + boto3 (dynamodb, sqs, ses clients)", "init_ms": { "p50": peer_p50, "p90": peer.p(&peer.init, 90.0) }, "peak_memory_kib": peer.peak_kib },
    });
    let file = options.out.join("cold-start.json");
    std::fs::write(&file, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", file.display());
    Ok(())
}
