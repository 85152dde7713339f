//! Test harness: starts `nightshift dev` as a separate process on a free port with a fresh
//! data folder, buys as a browser would, reads the outbox, and runs a fake LMS.

pub mod fake_http;
pub mod lms;
pub mod moodle;
pub mod moto;
pub mod stripe;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

pub const APPROVE: &str = "4242 4242 4242 4242";
pub const DECLINE: &str = "4000 0000 0000 0002";

/// The repository's root (holds store.toml).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// The sample store.toml, for tests to vary.
pub fn sample_store() -> String {
    std::fs::read_to_string(repo_root().join("store.toml")).expect("store.toml is readable")
}

/// Builds the CLI once per test binary, so tests always run the current code.
pub fn nightshift_binary() -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "-p", "nightshift"])
            .current_dir(repo_root());
        // Cargo sets these for the test process. Some build scripts (ring's) track
        // CARGO_MANIFEST_DIR, so passing them on would rebuild the TLS stack on every run.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            let set_for_tests = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_",
                "CARGO_TARGET_TMPDIR",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix));
            if set_for_tests || name == "OUT_DIR" {
                cargo.env_remove(&name);
            }
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "building nightshift failed");
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("debug").join("nightshift")
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// A folder under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nightshift-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The shipping address the helpers check out with (ignored for orders without physical items).
pub const ADDRESS: &[(&str, &str)] = &[
    ("name", "Ann Lee"),
    ("line1", "Hauptstr. 1"),
    ("postal_code", "10115"),
    ("city", "Berlin"),
    ("country", "DE"),
];

/// A running dev stack.
pub struct DevStack {
    child: Child,
    pub base: String,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

impl DevStack {
    /// Starts a dev stack on `store_toml` (written beside a copy of the sample templates).
    pub fn start(store_toml: &str) -> anyhow::Result<DevStack> {
        Self::start_with_env(store_toml, &[])
    }

    pub fn start_with_env(store_toml: &str, env: &[(&str, &str)]) -> anyhow::Result<DevStack> {
        Self::start_with(store_toml, env, &[])
    }

    /// A dev stack on the AWS adapters against `endpoint` (moto), creating its own table and
    /// queues named by `prefix`.
    pub fn start_on_aws(
        store_toml: &str,
        endpoint: &str,
        prefix: &str,
    ) -> anyhow::Result<DevStack> {
        Self::start_on_aws_with_env(store_toml, endpoint, prefix, &[])
    }

    /// As [`DevStack::start_on_aws`], with more environment (a fake Stripe's, say).
    pub fn start_on_aws_with_env(
        store_toml: &str,
        endpoint: &str,
        prefix: &str,
        more: &[(&str, &str)],
    ) -> anyhow::Result<DevStack> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ];
        env.extend_from_slice(more);
        let args = [
            "--aws",
            "--aws-endpoint",
            endpoint,
            "--bootstrap",
            "--prefix",
            prefix,
        ];
        Self::start_with(store_toml, &env, &args)
    }

    fn start_with(
        store_toml: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> anyhow::Result<DevStack> {
        let dir = TempDir::new("dev");
        std::fs::write(dir.path().join("store.toml"), store_toml)?;
        let templates = dir.path().join("templates/mail");
        std::fs::create_dir_all(&templates)?;
        for entry in std::fs::read_dir(repo_root().join("templates/mail"))? {
            let entry = entry?;
            std::fs::copy(entry.path(), templates.join(entry.file_name()))?;
        }
        copy_dir(
            &repo_root().join("downloads"),
            &dir.path().join("downloads"),
        )?;
        Self::spawn(dir, env, args)
    }

    fn spawn(dir: TempDir, env: &[(&str, &str)], args: &[&str]) -> anyhow::Result<DevStack> {
        let mut command = Command::new(nightshift_binary());
        command
            .args([
                "dev",
                "--test-clock",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(dir.path().join("store.toml"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().context("nightshift dev starts")?;
        let stdout = child.stdout.take().expect("stdout is piped");
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
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(DevStack {
            child,
            base,
            dir,
            http,
        })
    }

    /// Stops the process and starts a new one on the same data folder and store.
    pub fn restart(self) -> anyhow::Result<DevStack> {
        self.restart_with_env(&[])
    }

    /// Kills the process (SIGKILL, as a crash would) and starts a new one on the same data
    /// folder and store, with `env`.
    pub fn restart_with_env(mut self, env: &[(&str, &str)]) -> anyhow::Result<DevStack> {
        self.stop();
        let dir = std::mem::replace(&mut self.dir, TempDir::new("moved"));
        Self::spawn(dir, env, &[])
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process, keeping its data folder for [`DevStack::restart`].
    pub fn stopped(mut self) -> DevStack {
        self.stop();
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The licence public key the dev stack wrote into its data folder.
    pub fn license_public_key(&self) -> anyhow::Result<nightshift_license::VerifyingKey> {
        let hex = std::fs::read_to_string(self.license_public_key_file())?;
        Ok(nightshift_license::public_key_from_hex(&hex)?)
    }

    pub fn license_public_key_file(&self) -> PathBuf {
        self.dir.path().join("data/license-public.key")
    }

    /// A secret the dev stack generated into its data folder.
    pub fn secret(&self, name: &str) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(self.dir.path().join("data/secrets.json"))?;
        let map: Value = serde_json::from_str(&text)?;
        map[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no secret {name}"))
    }

    /// Posts the HTML checkout form; `Ok(token)` on 303, else the status and body.
    pub async fn checkout_form(
        &self,
        items: &[(&str, u32)],
        email: &str,
        name: &str,
    ) -> anyhow::Result<Result<String, (u16, String)>> {
        self.checkout_form_with(items, email, name, ADDRESS).await
    }

    /// The HTML checkout form with these shipping address fields (`address_*`); `Ok(token)`
    /// when it sent the buyer to testpay's page (or to the pay link).
    pub async fn checkout_form_with(
        &self,
        items: &[(&str, u32)],
        email: &str,
        name: &str,
        address: &[(&str, &str)],
    ) -> anyhow::Result<Result<String, (u16, String)>> {
        match self.checkout_form_to(items, email, name, address).await? {
            Ok(location) => Ok(Ok(self.token_at(&location)?)),
            Err(refused) => Ok(Err(refused)),
        }
    }

    /// The order token behind where a form checkout sent the buyer: testpay's page (its
    /// session carries the order page as the return address) or the pay link.
    pub fn token_at(&self, location: &str) -> anyhow::Result<String> {
        use base64::Engine as _;
        if let Some((_, id)) = location.split_once("/testpay/sessions/ts_") {
            let payload = id.split('.').next().unwrap_or_default();
            let session: Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?,
            )?;
            let back = session["return_url"].as_str().unwrap_or_default();
            return back
                .strip_prefix(&self.url("/orders/"))
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("the testpay session returns to {back}"));
        }
        location
            .strip_prefix(&self.url("/orders/"))
            .and_then(|rest| rest.strip_suffix("/pay"))
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("checkout sent the buyer to {location}"))
    }

    /// Posts the HTML checkout form as a browser does: `Ok(where it sent the buyer)` on 303,
    /// else the status and body (the buy page again).
    pub async fn checkout_form_to(
        &self,
        items: &[(&str, u32)],
        email: &str,
        name: &str,
        address: &[(&str, &str)],
    ) -> anyhow::Result<Result<String, (u16, String)>> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (sku, quantity) in items {
            form.append_pair("sku", sku)
                .append_pair("quantity", &quantity.to_string());
        }
        form.append_pair("email", email).append_pair("name", name);
        for (field, value) in address {
            form.append_pair(&format!("address_{field}"), value);
        }
        let response = self
            .http
            .post(self.url("/checkout"))
            .header("content-type", "application/x-www-form-urlencoded")
            // As a browser sends it: a refusal comes back as the buy page.
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .body(form.finish())
            .send()
            .await?;
        if response.status().as_u16() != 303 {
            return Ok(Err((response.status().as_u16(), response.text().await?)));
        }
        Ok(Ok(location(&response)?))
    }

    /// Checks out one unit of `sku` to be paid by bank transfer; returns the order token.
    pub async fn checkout_by_transfer(&self, sku: &str, email: &str) -> anyhow::Result<String> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("sku", sku)
            .append_pair("quantity", "1")
            .append_pair("email", email)
            .append_pair("name", "Ann")
            .append_pair("payment_method", "bank_transfer")
            .finish();
        let response = self
            .http
            .post(self.url("/checkout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?;
        if response.status() != 303 {
            bail!("checkout answered {}", response.status());
        }
        let location = location(&response)?;
        // Straight to the order page with the bank details: no gateway.
        location
            .strip_prefix(&self.url("/orders/"))
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("a transfer checkout went to {location}"))
    }

    /// Follows the order's pay link to testpay and submits a card; returns the final redirect.
    pub async fn pay(&self, token: &str, card: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .get(self.url(&format!("/orders/{token}/pay")))
            .send()
            .await?;
        let session = location(&response)?;
        if !session.contains("/testpay/sessions/") {
            bail!("the pay link went to {session}, not testpay");
        }
        let page = self.http.get(&session).send().await?;
        if page.status() != 200 {
            bail!("the testpay page answered {}", page.status());
        }
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("card_number", card)
            .append_pair("exp", "12/34")
            .append_pair("cvc", "123")
            .finish();
        let paid = self
            .http
            .post(&session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?;
        if paid.status() != 303 {
            bail!("testpay answered {}: {}", paid.status(), paid.text().await?);
        }
        location(&paid)
    }

    /// Checkout and pay in one go; returns the order token.
    pub async fn buy(
        &self,
        items: &[(&str, u32)],
        name: &str,
        card: &str,
    ) -> anyhow::Result<String> {
        let token = self
            .checkout_form(items, "ann@example.com", name)
            .await?
            .map_err(|e| anyhow!("checkout refused: {e:?}"))?;
        let back = self.pay(&token, card).await?;
        if back != self.url(&format!("/orders/{token}")) {
            bail!("testpay returned the buyer to {back}");
        }
        Ok(token)
    }

    /// Moves the dev stack's clock forward and runs its timed work at once; gives what the
    /// run did (`{"now": …, "ran": {"due": …, "expired": …, "failed": …}}`).
    pub async fn advance_clock(&self, seconds: i64) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(self.url("/dev/clock"))
            .json(&serde_json::json!({ "advance_seconds": seconds }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "POST /dev/clock: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    pub async fn order_json(&self, token: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(self.url(&format!("/orders/{token}.json")))
            .send()
            .await?;
        if response.status() != 200 {
            bail!("order json answered {}", response.status());
        }
        Ok(response.json().await?)
    }

    pub async fn order_page(&self, token: &str) -> anyhow::Result<(u16, String)> {
        let response = self
            .http
            .get(self.url(&format!("/orders/{token}")))
            .send()
            .await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    pub async fn outbox(&self) -> anyhow::Result<Vec<Value>> {
        self.outbox_from(0).await
    }

    /// The outbox's mails after the first `skip` (`GET /dev/outbox.json?from=`).
    pub async fn outbox_from(&self, skip: usize) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .http
            .get(self.url(&format!("/dev/outbox.json?from={skip}")))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Polls the order until `done` holds (up to 10 s); returns its JSON.
    pub async fn wait_for_order(
        &self,
        token: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let order = self.order_json(token).await?;
            if done(&order) {
                return Ok(order);
            }
            if Instant::now() > deadline {
                bail!("order never reached the expected state: {order}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls the outbox until `count` mails match (up to 10 s), then waits a little more to
    /// catch any duplicate, and returns the matching mails.
    pub async fn wait_for_mail(
        &self,
        count: usize,
        matches: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mails: Vec<Value> = self.outbox().await?.into_iter().filter(&matches).collect();
            if mails.len() >= count {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Ok(self.outbox().await?.into_iter().filter(&matches).collect());
            }
            if Instant::now() > deadline {
                bail!("expected {count} mails, found {}: {mails:?}", mails.len());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for DevStack {
    fn drop(&mut self) {
        self.stop();
    }
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no Location in a {} answer", response.status()))
}

/// The mail's recipients, as strings.
pub fn recipients(mail: &Value, field: &str) -> Vec<String> {
    mail[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `Nightshift-Signature` for a body, computed independently of the code under test.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An HTML page with character references decoded, as a browser shows its text and attributes.
pub fn decoded(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
