//! `reflecto send`: flags or stdin → the shared validation engine (nothing invalid leaves the
//! machine) → credentials → the relay, with one Idempotency-Key per request → output.

use super::internal;
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode, Warning};
use crate::client::{Client, RetryPolicy, Sent};
use crate::credentials::{Credentials, DEFAULT_PROFILE, DEFAULT_SERVER};
use crate::validate::{Validated, build_envelope, normalize};
use clap::Args;
use serde_json::{Map, Value, json};
use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

/// The token: --token-stdin, else REFLECTO_TOKEN, else the profile's stored token.
#[derive(Debug, Args)]
#[command(
    after_help = "The sender token comes from --token-stdin, else the REFLECTO_TOKEN environment variable, else the profile's token stored by `reflecto login`.\nBatch lines are JSON objects with the fields of POST /v1/send, e.g. {\"message\":\"disk full\",\"priority\":\"high\",\"tags\":[\"ops\"]}"
)]
pub struct SendArgs {
    /// The message; read from stdin when absent or "-"
    pub message: Option<String>,
    #[arg(short, long, value_name = "T")]
    pub title: Option<String>,
    /// min, low, default, high or urgent (checked by the relay's rules: error[invalid_priority])
    #[arg(short, long, value_name = "P", value_parser = super::docs::Hinted(super::docs::priority_names))]
    pub priority: Option<String>,
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
    pub ttl: Option<String>,
    /// Print the relay's JSON response verbatim
    #[arg(long)]
    pub json: bool,
    /// Print nothing on success (errors still go to stderr)
    #[arg(short, long)]
    pub quiet: bool,
    /// Relay URL [default: the profile's server, else https://api.reflecto.dev]
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL", value_hint = clap::ValueHint::Url)]
    pub server: Option<String>,
    /// Credential profile
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Read the token from the first line of stdin instead of REFLECTO_TOKEN or the profile's
    /// stored token
    #[arg(long, conflicts_with = "batch")]
    pub token_stdin: bool,
    /// Longest total wait for retries on 429, 5xx and connection errors [default: 60; with
    /// --batch a 429 is waited out however long unless this is given]
    #[arg(long, env = "REFLECTO_RETRY_MAX_WAIT", value_name = "SECONDS")]
    pub retry_max_wait: Option<f64>,
    /// Send JSON lines from FILE (or - for stdin), one request each, in order
    #[arg(long, value_name = "FILE|-", value_hint = clap::ValueHint::FilePath, conflicts_with_all = ["message", "title", "priority", "tags", "url", "url_title", "actions", "device", "markdown", "ttl"])]
    pub batch: Option<PathBuf>,
    /// With --batch: skip lines 1..=N (resume after an interruption at line N+1)
    #[arg(long, value_name = "N", requires = "batch")]
    pub skip: Option<usize>,
    /// After the send, wait up to SECONDS for every delivery to end; exit 7 unless all were delivered
    #[arg(long, value_name = "SECONDS", value_parser = super::status::parse_wait, conflicts_with = "batch")]
    pub wait: Option<f64>,
}

fn usage(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::UsageError, message)
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
    put("priority", args.priority.clone().map(Value::String));
    put("tags", (!args.tags.is_empty()).then(|| json!(args.tags)));
    put("url", args.url.clone().map(Value::String));
    put("url_title", args.url_title.clone().map(Value::String));
    put("device", args.device.clone().map(Value::String));
    put("markdown", args.markdown.then_some(Value::Bool(true)));
    // A number goes as a number; anything else goes as given, for the engine to refuse.
    put(
        "ttl",
        args.ttl.as_ref().map(|t| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map_or_else(|| Value::String(t.clone()), |n| json!(n))
        }),
    );
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

/// `--retry-max-wait` when not given.
pub const DEFAULT_RETRY_MAX_WAIT: f64 = 60.0;

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
    let policy = RetryPolicy::bounded(max_wait);
    let sent =
        runtime.block_on(client.send(&token, &validated.request, &key, policy, &|_, _| {}))?;
    let sent = with_local_warnings(sent, &validated.warnings);
    print_sent(&sent, args.json, args.quiet, None);
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

/// The engine's local warnings (tags or actions truncated before sending) joined to the
/// relay's, in the relay's exact text: the relay saw the truncated request and cannot say.
pub fn with_local_warnings(mut sent: Sent, local: &[Warning]) -> Sent {
    if local.is_empty() {
        return sent;
    }
    let mut warnings: Vec<String> = local.iter().map(ToString::to_string).collect();
    warnings.append(&mut sent.response.warnings);
    if let Ok(mut raw) = serde_json::from_str::<Value>(&sent.raw) {
        raw["warnings"] = json!(warnings);
        sent.raw = raw.to_string();
    }
    sent.response.warnings = warnings;
    sent
}

/// The result on stdout, the warnings on stderr; `line` tags batch output.
pub fn print_sent(sent: &Sent, json: bool, quiet: bool, line: Option<usize>) {
    if quiet {
        return;
    }
    let prefix = line.map_or_else(String::new, |n| format!("line {n}: "));
    for warning in &sent.response.warnings {
        eprintln!("{prefix}warning: {warning}");
    }
    if json {
        match (line, serde_json::from_str::<Value>(&sent.raw)) {
            (Some(n), Ok(Value::Object(mut object))) => {
                object.insert("line".into(), json!(n));
                println!("{}", Value::Object(object));
            }
            _ => println!("{}", sent.raw),
        }
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
    // The URL first: a malformed --server is a usage error whatever the token.
    let client = Client::new(&server_for(args, &creds)?)?;
    let token = match token {
        Some(token) => token,
        None => creds.token(&args.profile)?.0,
    };
    super::auth::check_token_format(token.expose())?;
    let max_wait = args
        .retry_max_wait
        .unwrap_or(DEFAULT_RETRY_MAX_WAIT)
        .max(0.0);
    Ok((client, token, Duration::from_secs_f64(max_wait), runtime()?))
}
