//! The dev stack's secrets: from `NIGHTSHIFT_SECRET_*` variables when set, otherwise generated
//! once into `<data dir>/secrets.json` (readable by the owner only).

use anyhow::Context;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use shared::environment::{secret_variable, Secrets};
use std::collections::BTreeMap;
use std::path::Path;

pub fn load(data_dir: &Path, names: &[String]) -> anyhow::Result<Secrets> {
    let file = data_dir.join("secrets.json");
    let mut stored: BTreeMap<String, String> = match std::fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON object", file.display()))?,
        Err(_) => BTreeMap::new(),
    };
    let mut generated = false;
    for name in names {
        if std::env::var(secret_variable(name)).is_err() && !stored.contains_key(name) {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            stored.insert(name.clone(), hex::encode(bytes));
            generated = true;
            if !matches!(
                name.as_str(),
                shared::environment::TESTPAY_SECRET | shared::environment::ORDER_TOKEN_SECRET
            ) {
                println!(
                    "generated secret `{name}` in {} (or set {})",
                    file.display(),
                    secret_variable(name)
                );
            }
        }
    }
    if generated {
        write_private(&file, &serde_json::to_string_pretty(&stored)?)?;
    }
    let mut secrets = Secrets::new(
        stored
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect(),
    );
    for (name, value) in Secrets::from_env(names).into_map() {
        secrets.insert(&name, SecretString::from(value.expose_secret().to_owned()));
    }
    Ok(secrets)
}

/// Writes a file only its owner can read.
pub fn write_private(file: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Stripe's keys come from Stripe, so the dev stack reads them from `STRIPE_SECRET_KEY` and
/// `STRIPE_WEBHOOK_SECRET` (use test-mode keys) when the store's gateway is Stripe.
pub fn stripe_from_env(store: &shared::config::Store, secrets: &mut Secrets) -> anyhow::Result<()> {
    use shared::environment as env;
    if store.payments.gateway != shared::config::GatewayName::Stripe {
        return Ok(());
    }
    for (name, variable) in [
        (env::STRIPE_SECRET_KEY_SECRET, env::STRIPE_SECRET_KEY),
        (
            env::STRIPE_WEBHOOK_SECRET_SECRET,
            env::STRIPE_WEBHOOK_SECRET,
        ),
    ] {
        let value = std::env::var(variable)
            .ok()
            .filter(|v| !v.is_empty())
            .with_context(|| {
                format!("the store's gateway is stripe: set {variable} (a test-mode value)")
            })?;
        secrets.insert(name, SecretString::from(value));
    }
    Ok(())
}
