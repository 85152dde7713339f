//! `nightshift check`: the same validation the build and the dev stack run.

use shared::config::Store;
use std::path::Path;
use std::process::ExitCode;

pub fn run(config: &Path) -> ExitCode {
    match Store::load(config) {
        Ok(store) => {
            println!(
                "{}: ok ({} products)",
                config.display(),
                store.products.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}
