//! The command line: clap definitions (their doc comments are the help text, the man page
//! and the completions) and one file per command.

pub mod docs;
mod explain;

use crate::api::ApiError;
use clap::{Parser, Subcommand};

/// Push notifications from a terminal, a cron job or a CI step.
///
/// `reflecto send` delivers a notification to your phone or desktop through a reflecto relay;
/// `reflecto serve` runs that relay yourself, on one machine.
#[derive(Debug, Parser)]
#[command(
    name = "reflecto",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain what an error code means and what to do about it
    Explain(explain::ExplainArgs),
    /// Print a shell completion script to stdout
    Completions(docs::CompletionsArgs),
    /// Write the man pages (to stdout, or one file per command into --out-dir)
    Man(docs::ManArgs),
}

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), ApiError> {
    match cli.command {
        Command::Explain(args) => explain::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}

/// The CLI's own failures (files, terminals): code `cli_internal_error`, exit 1.
pub(crate) fn internal(context: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        crate::api::ErrorCode::CliInternalError,
        format!("{context}: {err}"),
    )
}
