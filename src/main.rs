//! The `reflecto` binary: parse arguments, run, print the one error, exit with its code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = reflecto::cli::Cli::parse();
    match reflecto::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(err.code.exit_code())
        }
    }
}
