//! The command line: clap definitions (their doc comments are the help text, the man page
//! and the completions) and one file per command.

mod admin;
mod admin_pair;
mod ask;
mod auth;
mod batch;
mod clear;
mod columns;
mod config;
pub mod docs;
mod explain;
mod listen;
mod pair;
mod patience;
mod ping;
mod respond;
mod run;
pub mod send;
pub mod serve;
mod setup;
mod status;

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
    /// Send a notification to your devices
    Send(send::SendArgs),
    /// Store a token for a profile (from stdin or a hidden prompt) in the OS keyring
    Login(auth::LoginArgs),
    /// Forget a profile and its stored token
    Logout(auth::LogoutArgs),
    /// Inspect stored credentials
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Run the relay: the HTTP API, the durable queue and delivery, on one machine
    Serve(serve::ServeArgs),
    /// Make this computer a desktop device of a relay user, with a one-time pairing code
    Pair(pair::PairArgs),
    /// Show this computer's notifications as they arrive (desktop, stdout, --exec)
    Listen(listen::ListenArgs),
    /// Make this computer a sender and receiver of the relay on this machine, in one command
    Setup(setup::SetupArgs),
    /// Run a command, then send a notification saying how it ended; exit as it did
    Run(run::RunArgs),
    /// Show a message's delivery state per device (or follow it with --wait)
    Status(status::StatusArgs),
    /// Remove a notification from every screen (a message, or the newest of a key)
    Clear(clear::ClearArgs),
    /// Ask a question with answer buttons; print the answer a person chose
    Ask(ask::AskArgs),
    /// Check a heartbeat in (a cron job's "still running"), or report its failure with --fail
    Ping(ping::PingArgs),
    /// The heartbeats of your token's owner and their states
    Heartbeats(ping::HeartbeatsArgs),
    /// Acknowledge a message as this computer's paired device, with one of its responses
    Respond(respond::RespondArgs),
    /// Operator commands on the relay's store (users, tokens, devices, pairing)
    Admin(admin::AdminArgs),
    /// Explain what an error code means and what to do about it
    Explain(explain::ExplainArgs),
    /// Print a shell completion script to stdout
    Completions(docs::CompletionsArgs),
    /// Write the man pages (to stdout, or one file per command into --out-dir)
    Man(docs::ManArgs),
    /// Where reflecto keeps its config, credentials and relay data
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

impl Cli {
    /// Whether the command asked for JSON: then a failure also goes to stdout as JSON.
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Command::Send(args) => args.json,
            Command::Setup(args) => args.json,
            Command::Ask(args) => args.json,
            Command::Clear(args) => args.json,
            Command::Ping(args) => args.json,
            Command::Heartbeats(args) => args.json,
            Command::Respond(args) => args.json,
            Command::Auth(auth::AuthCommand::Status { json, .. }) => *json,
            Command::Config(config::ConfigCommand::Path { json }) => *json,
            Command::Admin(args) => args.command.wants_json(),
            _ => false,
        }
    }
}

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), ApiError> {
    match cli.command {
        Command::Send(args) => match args.batch.clone() {
            Some(source) => batch::run(&args, &source),
            None => send::run(args),
        },
        Command::Login(args) => auth::login(args),
        Command::Logout(args) => auth::logout(args),
        Command::Auth(auth::AuthCommand::Status { json, check }) => auth::status(json, check),
        Command::Serve(args) => serve::run(args),
        Command::Pair(args) => pair::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Run(args) => run::run(args),
        Command::Status(args) => status::run(args),
        Command::Clear(args) => clear::run(args),
        Command::Ask(args) => ask::run(args),
        Command::Ping(args) => ping::ping(args),
        Command::Heartbeats(args) => ping::heartbeats(args),
        Command::Respond(args) => respond::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
        Command::Config(config::ConfigCommand::Path { json }) => config::path(json),
    }
}

/// The CLI's own failures (files, terminals): code `cli_internal_error`, exit 1.
pub(crate) fn internal(context: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        crate::api::ErrorCode::CliInternalError,
        format!("{context}: {err}"),
    )
}

/// An answer as one line of JSON, what `--json` prints.
pub(crate) fn print_json(answer: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string(answer).expect("plain struct serializes")
    );
}

/// An answer as the command's `--json` asks: one line of JSON, else its human line.
pub(crate) fn print_answer<T: serde::Serialize>(json: bool, answer: &T, human: fn(&T) -> String) {
    if json {
        print_json(answer);
    } else {
        println!("{}", human(answer));
    }
}

/// The client commands' runtime: one thread is plenty for one connection, and keeps
/// `reflecto listen` small.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| internal("starting the runtime", e))
}
