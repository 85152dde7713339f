//! `nightshift keys generate` makes the store's licence signing key pair;
//! `nightshift license verify` checks a key offline the way the seller's software would.

use anyhow::Context;
use rand::RngCore;
use shared::adapters::system::SystemClock;
use shared::license::{self, SigningKey};
use shared::ports::Clock;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const SIGNING_FILE: &str = "license-signing.key";
pub const PUBLIC_FILE: &str = "license-public.key";

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Write a new licence signing key pair: `license-signing.key` (secret; goes into SSM) and
    /// `license-public.key` (goes into your software).
    Generate {
        /// Folder to write the two files into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Replace existing files (every key signed with the old pair stops verifying).
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum LicenseCommand {
    /// Check a licence key with the public key alone; exit 0 when valid, 1 when not.
    Verify {
        /// File holding the public key (64 hex digits), e.g. license-public.key.
        #[arg(long)]
        public_key: PathBuf,
        /// Also check that the key was bought with this email address.
        #[arg(long)]
        email: Option<String>,
        /// The licence key, as the buyer received it.
        key: String,
    },
}

pub fn keys(command: KeysCommand) -> ExitCode {
    let KeysCommand::Generate { out, force } = command;
    match generate(&out, force) {
        Ok(public) => {
            println!("public key:  {public}");
            println!(
                "wrote {} and {}",
                out.join(SIGNING_FILE).display(),
                out.join(PUBLIC_FILE).display()
            );
            println!(
                "store the signing key as a SecureString, e.g.\n  aws ssm put-parameter --type SecureString --name /nightshift/<stage>/license-signing-key --value \"$(cat {})\"",
                out.join(SIGNING_FILE).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn generate(out: &Path, force: bool) -> anyhow::Result<String> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (signing_file, public_file) = (out.join(SIGNING_FILE), out.join(PUBLIC_FILE));
    if !force && (signing_file.exists() || public_file.exists()) {
        anyhow::bail!(
            "{} already holds a key pair; pass --force to replace it",
            out.display()
        );
    }
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    write_pair(&signing_file, &public_file, &SigningKey::from_bytes(&seed))
}

/// Writes the signing key (owner-only) and its public half; returns the public key's hex.
pub fn write_pair(
    signing_file: &Path,
    public_file: &Path,
    key: &SigningKey,
) -> anyhow::Result<String> {
    crate::dev::secrets::write_private(
        signing_file,
        &format!("{}\n", license::to_hex(&key.to_bytes())),
    )?;
    let public = license::to_hex(key.verifying_key().as_bytes());
    std::fs::write(public_file, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", public_file.display()))?;
    Ok(public)
}

pub fn license(command: LicenseCommand) -> ExitCode {
    let LicenseCommand::Verify {
        public_key,
        email,
        key,
    } = command;
    let public = match std::fs::read_to_string(&public_key)
        .with_context(|| format!("cannot read {}", public_key.display()))
        .and_then(|hex| {
            license::public_key_from_hex(&hex)
                .with_context(|| format!("{} holds no public key", public_key.display()))
        }) {
        Ok(public) => public,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let found = match license::verify(&public, &key) {
        Ok(found) => found,
        Err(e) => {
            println!("invalid: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("product:    {}", found.product);
    println!("order:      {} line {}", found.order_id, found.line);
    println!("seats:      {}", found.seats);
    println!(
        "issued:     {}",
        shared::app::render::utc_date(i64::from(found.issued_at))
    );
    match found.expires_at {
        Some(at) => println!(
            "expires:    {}",
            shared::app::render::utc_date(i64::from(at))
        ),
        None => println!("expires:    never"),
    }
    let now = u64::try_from(SystemClock.now()).unwrap_or(0);
    if found.is_expired(now) {
        println!("invalid: the licence has expired");
        return ExitCode::FAILURE;
    }
    if let Some(email) = email {
        if !found.is_for(&email) {
            println!("invalid: the key was not bought with {email}");
            return ExitCode::FAILURE;
        }
        println!("email:      matches");
    }
    println!("valid");
    ExitCode::SUCCESS
}
