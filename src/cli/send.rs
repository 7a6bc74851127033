//! `reflecto send`: flags or stdin → the shared validation engine (nothing invalid leaves the
//! machine) → credentials → the relay, with one Idempotency-Key per request → output.

use super::internal;
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
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
    /// The message (up to 1500 bytes); read from stdin when absent or "-", where only the last
    /// 1500 bytes are kept
    pub message: Option<String>,
    /// A title above the message (1–100 bytes)
    #[arg(short, long, value_name = "T")]
    pub title: Option<String>,
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// Print the relay's JSON response verbatim
    #[arg(long)]
    pub json: bool,
    /// Print nothing on success (errors still go to stderr)
    #[arg(short, long)]
    pub quiet: bool,
    /// Read the token from the first line of stdin instead of REFLECTO_TOKEN or the profile's
    /// stored token
    #[arg(long, conflicts_with = "batch")]
    pub token_stdin: bool,
    /// Send JSON lines from FILE (or - for stdin), one request each, in order
    #[arg(long, value_name = "FILE|-", value_hint = clap::ValueHint::FilePath, conflicts_with_all = ["message", "title", "priority", "tags", "url", "url_title", "actions", "action_responses", "device", "markdown", "ttl", "key", "retry", "expire", "callback"])]
    pub batch: Option<PathBuf>,
    /// With --batch: skip lines 1..=N (resume after an interruption at line N+1)
    #[arg(long, value_name = "N", requires = "batch")]
    pub skip: Option<usize>,
    /// After the send, wait up to SECONDS for every delivery to end; exit 7 unless all were delivered
    #[arg(long, value_name = "SECONDS", value_parser = super::status::parse_wait, conflicts_with = "batch")]
    pub wait: Option<f64>,
    /// With --wait: follow until every delivery ended (delivered), or until a person
    /// acknowledged the message on a device (acknowledged; exit 7 if nobody did in time)
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = super::status::Until::Delivered, requires = "wait")]
    pub until: super::status::Until,
}

/// The flags `send` shares with `run` (SPEC §2.3 "[send flags]"): what the notification carries
/// besides its text and title, and which relay, profile and retry budget send it.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// min, low, default, high or urgent (checked by the relay's rules: error[invalid_priority])
    #[arg(short, long, value_name = "P", value_parser = super::docs::Hinted(super::docs::priority_names))]
    pub priority: Option<String>,
    /// A tag (repeatable; up to 5 are kept)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A link the notification opens (http or https, up to 512 bytes)
    #[arg(long, value_name = "U")]
    pub url: Option<String>,
    /// The link's text instead of the URL (up to 32 bytes)
    #[arg(long, value_name = "T")]
    pub url_title: Option<String>,
    /// A button: 'LABEL=URL' (repeatable; up to 3 are kept)
    #[arg(long = "action", value_name = "LABEL=URL")]
    pub actions: Vec<String>,
    /// A button that answers: 'LABEL[=RESPONSE]' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9
    /// . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE
    #[arg(long = "action-response", value_name = "LABEL[=RESPONSE]")]
    pub action_responses: Vec<String>,
    /// Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated
    #[arg(short, long, value_name = "SEL")]
    pub device: Option<String>,
    /// Render the message as Markdown
    #[arg(long)]
    pub markdown: bool,
    /// Seconds the notification stays deliverable (0–259200)
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<String>,
    /// Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the
    /// newest in place of the earlier ones
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until
    /// someone acknowledges it, it is cleared, or --expire passes
    #[arg(long, value_name = "SECONDS")]
    pub retry: Option<String>,
    /// With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send
    #[arg(long, value_name = "SECONDS")]
    pub expire: Option<String>,
    /// An https URL the relay POSTs a signed event to when the message is first acknowledged
    /// or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)
    #[arg(long, value_name = "URL", value_hint = clap::ValueHint::Url)]
    pub callback: Option<String>,
    /// Relay URL [default: the profile's server, else https://api.reflecto.dev]
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL", value_hint = clap::ValueHint::Url)]
    pub server: Option<String>,
    /// Credential profile
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Longest total wait for retries on 429, 5xx and connection errors [default: 60; with
    /// --batch a 429 is waited out however long unless this is given]
    #[arg(long, env = "REFLECTO_RETRY_MAX_WAIT", value_name = "SECONDS")]
    pub retry_max_wait: Option<f64>,
}

fn usage(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::UsageError, message)
}

/// The flags as raw fields, so the one engine applies every rule.
pub(crate) fn fields(
    args: &NotifyArgs,
    title: Option<&str>,
    message: String,
) -> Result<Map<String, Value>, ApiError> {
    let mut map = Map::new();
    map.insert("message".into(), Value::String(message));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            map.insert(k.to_owned(), v);
        }
    };
    put("title", title.map(|t| Value::String(t.to_owned())));
    put("priority", args.priority.clone().map(Value::String));
    put("tags", (!args.tags.is_empty()).then(|| json!(args.tags)));
    put("url", args.url.clone().map(Value::String));
    put("url_title", args.url_title.clone().map(Value::String));
    put("device", args.device.clone().map(Value::String));
    put("markdown", args.markdown.then_some(Value::Bool(true)));
    put("key", args.key.clone().map(Value::String));
    put("callback", args.callback.clone().map(Value::String));
    // Whole seconds go as numbers; anything else as given, for the engine to refuse.
    for (name, value) in [("retry", &args.retry), ("expire", &args.expire)] {
        put(
            name,
            value.as_ref().map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_or_else(|_| Value::String(v.clone()), Value::from)
            }),
        );
    }
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
    let mut actions = args
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
    actions.extend(args.action_responses.iter().map(|a| response_action(a)));
    if !actions.is_empty() {
        map.insert("actions".into(), Value::Array(actions));
    }
    Ok(map)
}

/// `LABEL[=RESPONSE]` as a response action (SPEC §1.16): RESPONSE defaults to LABEL. The
/// engine checks both, so a label that is no valid response needs its `=RESPONSE`.
pub(crate) fn response_action(text: &str) -> Value {
    let (label, response) = text.split_once('=').unwrap_or((text, text));
    json!({"label": label, "response": response})
}

/// Field rules, then the envelope cap with an empty source (the relay adds the token's label,
/// so it may still answer 413 for a request at the edge).
pub(crate) fn validate(fields: &Map<String, Value>) -> Result<Validated, ApiError> {
    let validated = normalize(fields)?;
    build_envelope(&validated.request, "")?;
    Ok(validated)
}

/// The message from stdin: its final line break dropped, refused when empty, and over 1500
/// bytes cut to its last 1500 (the warning says so).
fn read_stdin_message() -> Result<(String, Option<String>), ApiError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(usage("no message: pass MESSAGE, or pipe it on stdin"));
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| usage(format!("reading the message from stdin: {e}")))?;
    crate::validate::tail::stdin_message(text)
}

/// A message given as an argument is never cut: its `message_too_long` says how long it was
/// (the relay's text for the code stays as it is; the size is in its `details`).
fn argument_too_long(mut error: ApiError, bytes: usize) -> ApiError {
    if error.code == ErrorCode::MessageTooLong {
        error.message = format!(
            "{} (it is {bytes} bytes); shorten it, put the long part behind --url, or pipe it on stdin to keep its last {} bytes",
            error.message,
            crate::api::MAX_MESSAGE_BYTES
        );
    }
    error
}

fn server_for(args: &NotifyArgs, creds: &Credentials) -> Result<String, ApiError> {
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

/// One send (`--batch` is routed to `batch::run` by the dispatcher).
pub fn run(args: SendArgs) -> Result<(), ApiError> {
    let mut token_line = None;
    if args.token_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| usage(format!("reading the token from stdin: {e}")))?;
        token_line = Some(line.trim().to_owned());
    }
    let (message, cut) = match args.message.as_deref() {
        None | Some("-") => read_stdin_message()?,
        Some(text) => (text.to_owned(), None),
    };
    let bytes = message.len();
    let mut validated = validate(&fields(&args.notify, args.title.as_deref(), message)?)
        .map_err(|e| argument_too_long(e, bytes))?;
    let (client, token, max_wait, runtime) =
        client_setup(&args.notify, token_line.map(Secret::new))?;
    let key = Client::new_idempotency_key();
    let policy = RetryPolicy::bounded(max_wait);
    // On a terminal the first failed attempt says at once what failed and how long the
    // retries may take (SPEC §2.5): a silent wait is indistinguishable from a hang.
    let terminal = std::io::stderr().is_terminal() && !args.quiet;
    let on_retry = |retrying: &crate::client::Retrying<'_>| {
        if terminal && retrying.attempt == 0 {
            eprintln!("{}", retrying.notice());
        }
    };
    let sent =
        runtime.block_on(client.send(&token, &validated.request, &key, policy, &on_retry))?;
    let mut local: Vec<String> = validated
        .warnings
        .drain(..)
        .map(|w| w.to_string())
        .collect();
    local.splice(0..0, cut);
    let sent = with_local_warnings(sent, &local);
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
            args.until,
        ))?;
    }
    Ok(())
}

/// The engine's local warnings (tags or actions truncated before sending) joined to the
/// relay's, in the relay's exact text: the relay saw the truncated request and cannot say.
pub fn with_local_warnings<W: ToString>(mut sent: Sent, local: &[W]) -> Sent {
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
    args: &NotifyArgs,
    token: Option<Secret>,
) -> Result<(Client, Secret, Duration, tokio::runtime::Runtime), ApiError> {
    let creds = Credentials::from_env();
    // The URL first: a malformed --server is a usage error whatever the token.
    let client = Client::new(&server_for(args, &creds)?)?;
    let token = match token {
        Some(token) => token,
        None => creds.token_for(&args.profile, args.server.as_deref())?.0,
    };
    super::auth::check_token_format(token.expose())?;
    let max_wait = args
        .retry_max_wait
        .unwrap_or(DEFAULT_RETRY_MAX_WAIT)
        .max(0.0);
    Ok((client, token, Duration::from_secs_f64(max_wait), runtime()?))
}
