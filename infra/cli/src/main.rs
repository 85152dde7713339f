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
    Dev {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
        #[arg(long, default_value = ".nightshift")]
        data_dir: PathBuf,
        #[arg(long, default_value = "store.toml")]
        config: PathBuf,
        /// Run on DynamoDB, SQS and SES instead of the embedded adapters.
        #[arg(long)]
        aws: bool,
        /// The AWS endpoint (an emulator such as moto); default: AWS_ENDPOINT_URL or AWS itself.
        #[arg(long, requires = "aws")]
        aws_endpoint: Option<String>,
        /// Create the table, the queues with their DLQs, and the SES sender identity first.
        #[arg(long, requires = "aws")]
        bootstrap: bool,
        /// Name of the table, and prefix of the queue names.
        #[arg(long, default_value = "nightshift-dev", requires = "aws")]
        prefix: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => check::run(&config),
        Command::Dev {
            listen,
            data_dir,
            config,
            aws,
            aws_endpoint,
            bootstrap,
            prefix,
        } => dev::run(dev::Options {
            listen,
            data_dir,
            config,
            aws,
            aws_endpoint,
            bootstrap,
            prefix,
        }),
    }
}
