//! `reflecto send`: flags or stdin → the shared validation engine (nothing invalid leaves the
//! machine) → credentials → the relay, with one Idempotency-Key per request → output.

use super::internal;
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode, Priority};
use crate::client::{Client, Sent};
use crate::credentials::{Credentials, DEFAULT_PROFILE, DEFAULT_SERVER};
use crate::validate::{Validated, build_envelope, normalize};
use clap::Args;
use serde_json::{Map, Value, json};
use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The message; read from stdin when absent or "-"
    pub message: Option<String>,
    #[arg(short, long, value_name = "T")]
    pub title: Option<String>,
    /// min, low, default, high or urgent
    #[arg(short, long, value_name = "P", value_parser = parse_priority)]
    pub priority: Option<Priority>,
    /// A tag (repeatable; up to 5 are kept)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    #[arg(long, value_name = "U")]
    pub url: Option<String>,
    #[arg(long, value_name = "T")]
    pub url_title: Option<String>,
    /// A button: 'LABEL=URL' (repeatable; up to 3 are kept)
    #[arg(long = "action", value_name = "LABEL=URL")]
    pub actions: Vec<String>,
    /// Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated
    #[arg(short, long, value_name = "SEL")]
    pub device: Option<String>,
    /// Render the message as Markdown
    #[arg(long)]
    pub markdown: bool,
    /// Seconds the notification stays deliverable (0–259200)
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<f64>,
    /// Print the relay's JSON response verbatim
    #[arg(long)]
    pub json: bool,
    /// Print nothing on success (errors still go to stderr)
    #[arg(short, long)]
    pub quiet: bool,
    /// Relay URL [default: the profile's server, else https://api.reflecto.dev]
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Credential profile
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Read the token from the first line of stdin instead of the keyring
    #[arg(long, conflicts_with = "batch")]
    pub token_stdin: bool,
    /// Longest total wait for retries on 429, 5xx and connection errors
    #[arg(
        long,
        env = "REFLECTO_RETRY_MAX_WAIT",
        default_value_t = 60.0,
        value_name = "SECONDS"
    )]
    pub retry_max_wait: f64,
    /// Send JSON lines from FILE (or - for stdin), one request each, in order
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["message", "title", "priority", "tags", "url", "url_title", "actions", "device", "markdown", "ttl"])]
    pub batch: Option<PathBuf>,
    /// After the send, wait up to SECONDS for every delivery to end; exit 7 unless all were delivered
    #[arg(long, value_name = "SECONDS", value_parser = super::status::parse_wait, conflicts_with = "batch")]
    pub wait: Option<f64>,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse()
        .map_err(|()| "one of min, low, default, high, urgent".to_owned())
}

fn usage(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, message)
}

/// The flags as raw fields, so the one engine applies every rule.
fn fields(args: &SendArgs, message: String) -> Result<Map<String, Value>, ApiError> {
    let mut map = Map::new();
    map.insert("message".into(), Value::String(message));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            map.insert(k.to_owned(), v);
        }
    };
    put("title", args.title.clone().map(Value::String));
    put("priority", args.priority.map(|p| json!(p)));
    put("tags", (!args.tags.is_empty()).then(|| json!(args.tags)));
    put("url", args.url.clone().map(Value::String));
    put("url_title", args.url_title.clone().map(Value::String));
    put("device", args.device.clone().map(Value::String));
    put("markdown", args.markdown.then_some(Value::Bool(true)));
    put("ttl", args.ttl.map(|t| json!(t)));
    if !args.actions.is_empty() {
        let actions = args
            .actions
            .iter()
            .map(|a| match a.split_once('=') {
                Some((label, url)) => Ok(json!({"label": label, "url": url})),
                None => Err(ApiError::new(
                    ErrorCode::InvalidAction,
                    format!("--action '{a}' must be LABEL=URL"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        map.insert("actions".into(), Value::Array(actions));
    }
    Ok(map)
}

/// Field rules, then the envelope cap with an empty source (the relay adds the token's label,
/// so it may still answer 413 for a request at the edge).
fn validate(fields: &Map<String, Value>) -> Result<Validated, ApiError> {
    let validated = normalize(fields)?;
    build_envelope(validated.request.clone(), "")?;
    Ok(validated)
}

fn read_stdin_message() -> Result<String, ApiError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(usage("no message: pass MESSAGE, or pipe it on stdin"));
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| usage(format!("reading the message from stdin: {e}")))?;
    // `echo done | reflecto send` should send "done", not "done\n".
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

fn server_for(args: &SendArgs, creds: &Credentials) -> Result<String, ApiError> {
    if let Some(server) = &args.server {
        return Ok(server.clone());
    }
    Ok(creds
        .profile(&args.profile)?
        .map_or_else(|| DEFAULT_SERVER.to_owned(), |p| p.server))
}

fn runtime() -> Result<tokio::runtime::Runtime, ApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| internal("starting the runtime", e))
}

pub fn run(args: SendArgs) -> Result<(), ApiError> {
    if let Some(batch) = &args.batch {
        return super::batch::run(&args, batch);
    }
    let mut token_line = None;
    if args.token_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| usage(format!("reading the token from stdin: {e}")))?;
        token_line = Some(line.trim().to_owned());
    }
    let message = match args.message.as_deref() {
        None | Some("-") => read_stdin_message()?,
        Some(text) => text.to_owned(),
    };
    let validated = validate(&fields(&args, message)?)?;
    let (client, token, max_wait, runtime) = client_setup(&args, token_line.map(Secret::new))?;
    let key = Client::new_idempotency_key();
    let sent = runtime.block_on(client.send(&token, &validated.request, &key, max_wait))?;
    print_sent(&sent, args.json, args.quiet);
    if let Some(wait) = args.wait {
        let output = super::status::Output::of(args.json, args.quiet);
        let wait = Duration::from_secs_f64(wait);
        runtime.block_on(super::status::follow(
            &client,
            &token,
            &sent.response.id,
            wait,
            output,
        ))?;
    }
    Ok(())
}

/// The result on stdout, the relay's warnings on stderr.
pub fn print_sent(sent: &Sent, json: bool, quiet: bool) {
    if quiet {
        return;
    }
    for warning in &sent.response.warnings {
        eprintln!("warning: {warning}");
    }
    if json {
        println!("{}", sent.raw);
        return;
    }
    let devices = &sent.response.delivered_to;
    let list: Vec<String> = devices
        .iter()
        .map(|d| format!("{} ({})", d.device_id, d.device_type))
        .collect();
    match devices.len() {
        0 => println!("{}: accepted, no device to deliver to", sent.response.id),
        1 => println!(
            "{}: queued for 1 device: {}",
            sent.response.id,
            list.join(", ")
        ),
        n => println!(
            "{}: queued for {n} devices: {}",
            sent.response.id,
            list.join(", ")
        ),
    }
}

/// Shared with batch mode: a parsed JSON line → validated request.
pub fn validate_line(line: &str) -> Result<Validated, ApiError> {
    let fields = crate::validate::parse_body(
        Some("application/json"),
        line.as_bytes(),
        crate::validate::fields::KNOWN_KEYS,
    )?;
    validate(&fields)
}

/// The client, token, retry budget and runtime for a send; `token` overrides the stored one
/// (`--token-stdin`).
pub(crate) fn client_setup(
    args: &SendArgs,
    token: Option<Secret>,
) -> Result<(Client, Secret, Duration, tokio::runtime::Runtime), ApiError> {
    let creds = Credentials::from_env();
    let token = match token {
        Some(token) => token,
        None => creds.token(&args.profile)?.0,
    };
    let client = Client::new(&server_for(args, &creds)?)?;
    Ok((
        client,
        token,
        Duration::from_secs_f64(args.retry_max_wait.max(0.0)),
        runtime()?,
    ))
}
