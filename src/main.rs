//! The `reflecto` binary: parse arguments, run, print the one error, exit with its code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = reflecto::cli::Cli::parse();
    let json = cli.wants_json();
    match reflecto::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `… --json | jq` always gets an object; the human line still goes to stderr.
            if json {
                println!("{}", err.to_nested_body());
            }
            eprintln!("{err}");
            ExitCode::from(err.code.exit_code())
        }
    }
}
