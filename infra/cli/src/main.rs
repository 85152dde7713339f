//! `nightshift`: check the store, run the whole store locally.

mod check;
mod dev;

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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => check::run(&config),
        Command::Dev(options) => dev::run(options),
    }
}
