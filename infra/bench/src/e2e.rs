//! End to end on the dev stack (`nightshift dev`, embedded state): concurrent buyers each
//! check out a course (straight to testpay's card page), pay on it and watch their order
//! page until the login shows; the run ends when every buyer's mail is in the outbox.

use anyhow::{anyhow, bail, ensure, Context as _};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a buyer's page looks again for the login (the page itself refreshes slower;
/// this bounds the error of the figure).
const POLL: Duration = Duration::from_millis(5);

pub struct EndToEnd {
    pub orders: usize,
    pub buyers: usize,
    /// First checkout to the last buyer's mail in the outbox.
    pub elapsed: Duration,
    /// Card accepted (testpay's answer to the card form) to the login on the order page.
    pub visible: Vec<Duration>,
}

impl EndToEnd {
    pub fn orders_per_second(&self) -> f64 {
        self.orders as f64 / self.elapsed.as_secs_f64()
    }
}

/// A dev stack in a throwaway data folder; stopped and removed on drop.
struct Stack {
    child: Child,
    base: String,
    data: PathBuf,
}

impl Stack {
    fn start(nightshift: &Path, store_toml: &Path) -> anyhow::Result<Stack> {
        let data = std::env::temp_dir().join(format!("nightshift-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let mut child = Command::new(nightshift)
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .arg("--config")
            .arg(store_toml)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", nightshift.display()))?;
        let stdout = child.stdout.take().context("the dev stack's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(url) = line.split(" on ").nth(1) {
                        let _ = tx.send(url.trim().to_owned());
                        sent = true;
                    }
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow!("nightshift dev did not start"))?;
        Ok(Stack { child, base, data })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn location(response: &reqwest::Response, base: &str) -> anyhow::Result<String> {
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| anyhow!("{} without a Location", response.status()))?;
    Ok(if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        location.to_owned()
    })
}

/// One buyer's purchase; the time from the card being accepted to the login on the page.
async fn buy(http: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<Duration> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("sku", crate::flow::SKU)
        .append_pair("quantity", "1")
        .append_pair("email", email)
        .append_pair("name", "Ann")
        .finish();
    let checkout = http
        .post(format!("{base}/checkout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    ensure!(
        checkout.status() == 303,
        "checkout answered {}",
        checkout.status()
    );
    // Checkout opens the payment session and sends the buyer straight to testpay's page.
    let session = location(&checkout, base)?;
    ensure!(
        session.contains("/testpay/sessions/"),
        "checkout went to {session}"
    );
    let page = http.get(&session).send().await?;
    ensure!(
        page.status() == 200,
        "the card page answered {}",
        page.status()
    );
    page.bytes().await?;
    let card = form_urlencoded::Serializer::new(String::new())
        .append_pair("card_number", "4242 4242 4242 4242")
        .append_pair("exp", "12/34")
        .append_pair("cvc", "123")
        .finish();
    let paid = http
        .post(&session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(card)
        .send()
        .await?;
    ensure!(paid.status() == 303, "testpay answered {}", paid.status());
    let accepted = Instant::now();
    // testpay sends the buyer back to their order page.
    let back = location(&paid, base)?;
    let token = back
        .strip_prefix(&format!("{base}/orders/"))
        .and_then(|rest| rest.split(['?', '/', '#']).next())
        .ok_or_else(|| anyhow!("testpay sent the buyer to {back}"))?
        .to_owned();
    let deadline = accepted + Duration::from_secs(30);
    let order_url = format!("{base}/orders/{token}.json");
    loop {
        let order: Value = http.get(&order_url).send().await?.json().await?;
        if order["lines"][0]["access"]["password"].is_string() {
            return Ok(accepted.elapsed());
        }
        if Instant::now() > deadline {
            bail!("no login on the order page 30 s after payment: {order}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `count` buyers' purchases by `buyers` concurrent buyers; mails go to `<prefix>-<n>@…`.
async fn purchases(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    count: usize,
    buyers: usize,
) -> anyhow::Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(0));
    let visible = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..buyers {
        let (http, base, prefix) = (http.clone(), base.to_owned(), prefix.to_owned());
        let (next, visible) = (next.clone(), visible.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                let took = buy(&http, &base, &format!("{prefix}-{i}@example.com")).await?;
                visible.lock().expect("lock").push(took);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let visible = visible.lock().expect("lock").clone();
    Ok(visible)
}

/// Waits until `count` mails to addresses holding `prefix` are in the outbox, reading only
/// the mails added since the last look (`?from=`).
async fn mails_arrived(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut seen, mut arrived) = (0, 0);
    loop {
        let mails: Vec<Value> = http
            .get(format!("{base}/dev/outbox.json?from={seen}"))
            .send()
            .await?
            .json()
            .await?;
        seen += mails.len();
        arrived += mails
            .iter()
            .filter(|m| {
                m["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|to| to.as_str().is_some_and(|t| t.contains(prefix)))
            })
            .count();
        if arrived >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {arrived} of {count} buyer mails arrived");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn run(
    nightshift: &Path,
    store_toml: &Path,
    orders: usize,
    buyers: usize,
) -> anyhow::Result<EndToEnd> {
    shared::adapters::course::install_crypto_provider();
    let stack = Stack::start(nightshift, store_toml)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let base = stack.base.clone();
    // A round of unmeasured purchases first, as a deployed store is warm.
    purchases(&http, &base, "warmup", buyers, buyers).await?;
    mails_arrived(&http, &base, "warmup-", buyers).await?;

    let started = Instant::now();
    let visible = purchases(&http, &base, "buyer", orders, buyers).await?;
    mails_arrived(&http, &base, "buyer-", orders).await?;
    let elapsed = started.elapsed();
    drop(stack);
    Ok(EndToEnd {
        orders,
        buyers,
        elapsed,
        visible,
    })
}
