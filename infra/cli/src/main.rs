//! `nightshift`: check the store, run the whole store locally, act on orders.

mod check;
mod dev;
mod keys;
mod orders;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nightshift",
    version,
    about = "Nightshift: serverless order automation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate store.toml; prints `file:line: field: problem` for each error.
    Check {
        #[arg(long, default_value = "store.toml")]
        config: PathBuf,
    },
    /// Run the whole store on this machine: every function, queues, state and mail outbox.
    Dev(dev::Options),
    /// Act on an order as the seller (confirm a bank transfer).
    #[command(subcommand)]
    Orders(orders::Command),
    /// Make the store's licence signing key pair.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check licence keys offline.
    #[command(subcommand)]
    License(keys::LicenseCommand),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => check::run(&config),
        Command::Dev(options) => dev::run(options),
        Command::Orders(command) => orders::run(command),
        Command::Keys(command) => keys::keys(command),
        Command::License(command) => keys::license(command),
    }
}
