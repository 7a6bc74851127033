//! The one error-code catalogue. Every code — the relay's wire codes (SPEC §1.6) and the CLI's
//! own — has exactly three mappings, each a single `match`: HTTP status, exit code, and the
//! explanation `reflecto explain` prints.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidBody,
    InvalidMessage,
    MessageTooLong,
    InvalidTitle,
    InvalidPriority,
    InvalidUrl,
    InvalidUrlTitle,
    InvalidAction,
    InvalidDevice,
    InvalidKey,
    InvalidResponse,
    InvalidRepeat,
    InvalidHeartbeat,
    InvalidPairingCode,
    MissingToken,
    InvalidToken,
    PriorityCapped,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimitExceeded,
    InternalError,
    // The CLI's own codes: never sent by the relay.
    NoStoredToken,
    KeyringUnavailable,
    RelayUnreachable,
    UnexpectedResponse,
    CliInternalError,
    UsageError,
    Conflict,
    IoError,
    InsecureCredentials,
    StoreNotFound,
    StoreUnreachable,
    Interrupted,
    NotDelivered,
    NotAcknowledged,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 36] = [
        ErrorCode::InvalidBody,
        ErrorCode::InvalidMessage,
        ErrorCode::MessageTooLong,
        ErrorCode::InvalidTitle,
        ErrorCode::InvalidPriority,
        ErrorCode::InvalidUrl,
        ErrorCode::InvalidUrlTitle,
        ErrorCode::InvalidAction,
        ErrorCode::InvalidDevice,
        ErrorCode::InvalidKey,
        ErrorCode::InvalidResponse,
        ErrorCode::InvalidRepeat,
        ErrorCode::InvalidHeartbeat,
        ErrorCode::InvalidPairingCode,
        ErrorCode::MissingToken,
        ErrorCode::InvalidToken,
        ErrorCode::PriorityCapped,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimitExceeded,
        ErrorCode::InternalError,
        ErrorCode::NoStoredToken,
        ErrorCode::KeyringUnavailable,
        ErrorCode::RelayUnreachable,
        ErrorCode::UnexpectedResponse,
        ErrorCode::CliInternalError,
        ErrorCode::UsageError,
        ErrorCode::Conflict,
        ErrorCode::IoError,
        ErrorCode::InsecureCredentials,
        ErrorCode::StoreNotFound,
        ErrorCode::StoreUnreachable,
        ErrorCode::Interrupted,
        ErrorCode::NotDelivered,
        ErrorCode::NotAcknowledged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::MessageTooLong => "message_too_long",
            ErrorCode::InvalidTitle => "invalid_title",
            ErrorCode::InvalidPriority => "invalid_priority",
            ErrorCode::InvalidUrl => "invalid_url",
            ErrorCode::InvalidUrlTitle => "invalid_url_title",
            ErrorCode::InvalidAction => "invalid_action",
            ErrorCode::InvalidDevice => "invalid_device",
            ErrorCode::InvalidKey => "invalid_key",
            ErrorCode::InvalidResponse => "invalid_response",
            ErrorCode::InvalidRepeat => "invalid_repeat",
            ErrorCode::InvalidHeartbeat => "invalid_heartbeat",
            ErrorCode::InvalidPairingCode => "invalid_pairing_code",
            ErrorCode::MissingToken => "missing_token",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::PriorityCapped => "priority_capped",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::NoStoredToken => "no_stored_token",
            ErrorCode::KeyringUnavailable => "keyring_unavailable",
            ErrorCode::RelayUnreachable => "relay_unreachable",
            ErrorCode::UnexpectedResponse => "unexpected_response",
            ErrorCode::CliInternalError => "cli_internal_error",
            ErrorCode::UsageError => "usage_error",
            ErrorCode::Conflict => "conflict",
            ErrorCode::IoError => "io_error",
            ErrorCode::InsecureCredentials => "insecure_credentials",
            ErrorCode::StoreNotFound => "store_not_found",
            ErrorCode::StoreUnreachable => "store_unreachable",
            ErrorCode::Interrupted => "interrupted",
            ErrorCode::NotDelivered => "not_delivered",
            ErrorCode::NotAcknowledged => "not_acknowledged",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The status the relay answers with. CLI-only codes never go on the wire; they map to
    /// the status of the failure they stand for.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidBody
            | ErrorCode::InvalidMessage
            | ErrorCode::MessageTooLong
            | ErrorCode::InvalidTitle
            | ErrorCode::InvalidPriority
            | ErrorCode::InvalidUrl
            | ErrorCode::InvalidUrlTitle
            | ErrorCode::InvalidAction
            | ErrorCode::InvalidDevice
            | ErrorCode::InvalidKey
            | ErrorCode::InvalidResponse
            | ErrorCode::InvalidRepeat
            | ErrorCode::InvalidHeartbeat
            | ErrorCode::InvalidPairingCode
            | ErrorCode::UsageError => 400,
            ErrorCode::MissingToken
            | ErrorCode::InvalidToken
            | ErrorCode::NoStoredToken
            | ErrorCode::InsecureCredentials => 401,
            ErrorCode::Conflict => 409,
            ErrorCode::PriorityCapped | ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::InternalError
            | ErrorCode::KeyringUnavailable
            | ErrorCode::UnexpectedResponse
            | ErrorCode::CliInternalError
            | ErrorCode::IoError
            | ErrorCode::StoreNotFound
            | ErrorCode::StoreUnreachable
            | ErrorCode::Interrupted
            | ErrorCode::NotDelivered
            | ErrorCode::NotAcknowledged => 500,
            ErrorCode::RelayUnreachable => 503,
        }
    }

    /// SPEC §2 exit codes: 1 internal, 2 usage/invalid input, 3 auth/permission, 4 too large,
    /// 5 rate limited, 6 relay unreachable or 5xx, 7 not delivered (`--wait`).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorCode::InvalidBody
            | ErrorCode::InvalidMessage
            | ErrorCode::MessageTooLong
            | ErrorCode::InvalidTitle
            | ErrorCode::InvalidPriority
            | ErrorCode::InvalidUrl
            | ErrorCode::InvalidUrlTitle
            | ErrorCode::InvalidAction
            | ErrorCode::InvalidDevice
            | ErrorCode::InvalidKey
            | ErrorCode::InvalidResponse
            | ErrorCode::InvalidRepeat
            | ErrorCode::InvalidHeartbeat
            | ErrorCode::InvalidPairingCode
            | ErrorCode::UsageError
            | ErrorCode::Conflict
            | ErrorCode::IoError
            | ErrorCode::StoreNotFound
            | ErrorCode::StoreUnreachable
            // SPEC §2.5: a relay's `not_found` for an id the user typed, or a server at
            // `--server` that is not a reflecto relay, is the user's mistake, not a bug.
            | ErrorCode::NotFound
            | ErrorCode::UnexpectedResponse => 2,
            ErrorCode::MissingToken
            | ErrorCode::InvalidToken
            | ErrorCode::PriorityCapped
            | ErrorCode::Forbidden
            | ErrorCode::NoStoredToken
            | ErrorCode::KeyringUnavailable
            | ErrorCode::InsecureCredentials => 3,
            ErrorCode::PayloadTooLarge => 4,
            ErrorCode::RateLimitExceeded => 5,
            ErrorCode::InternalError | ErrorCode::RelayUnreachable => 6,
            ErrorCode::CliInternalError => 1,
            // The shell's convention for a command stopped by SIGINT (128 + 2).
            ErrorCode::Interrupted => 130,
            ErrorCode::NotDelivered | ErrorCode::NotAcknowledged => 7,
        }
    }

    /// What `reflecto explain CODE` prints: what happened, then what to do.
    pub fn explanation(self) -> &'static str {
        match self {
            ErrorCode::InvalidBody => {
                "The request body could not be read: unparseable JSON, an unsupported Content-Type, or a field of the wrong type (tags not an array of strings, markdown not a boolean, ttl not a number).\nFix the body; `reflecto send` builds a valid one from its flags."
            }
            ErrorCode::InvalidMessage => {
                "The message is missing, not a string, or empty.\nPass a non-empty MESSAGE argument or pipe it on stdin."
            }
            ErrorCode::MessageTooLong => {
                "The message is longer than 1500 bytes of UTF-8 (details.bytes says how long it was).\nShorten it, or put the long part behind --url."
            }
            ErrorCode::InvalidTitle => {
                "The title is empty or longer than 100 bytes of UTF-8.\nGive a shorter, non-empty --title."
            }
            ErrorCode::InvalidPriority => {
                "The priority is not one of min, low, default, high, urgent.\nUse one of those five with --priority."
            }
            ErrorCode::InvalidUrl => {
                "The URL is not an http(s) URL, cannot be parsed, or is longer than 512 bytes.\nPass a full http:// or https:// URL with --url."
            }
            ErrorCode::InvalidUrlTitle => {
                "The url_title is longer than 32 bytes of UTF-8.\nShorten --url-title."
            }
            ErrorCode::InvalidAction => {
                "An action lacks a label, has a label over 32 bytes or empty, has both a url and a response or neither, a url that is not http(s) or over 512 bytes, or a response that is not 1–32 bytes of A-Z a-z 0-9 . _ : -.\nWrite each link as --action 'LABEL=https://…' and each response as --action-response 'LABEL[=RESPONSE]'."
            }
            ErrorCode::InvalidDevice => {
                "The device selector is empty or longer than 256 characters.\nUse a comma list of device ids, labels, or all/mobile/phone/desktop."
            }
            ErrorCode::InvalidKey => {
                "The key is empty, longer than 64 bytes, or holds a character outside A-Z a-z 0-9 . _ : -.\nPick a key such as build-42 or backup:nightly with --key."
            }
            ErrorCode::InvalidResponse => {
                "The acknowledgement's response is not one of the message's responses (the `response` of one of its actions), or not 1–32 bytes of A-Z a-z 0-9 . _ : -.\nAcknowledge with one of the responses the message offers, or with none (`{}`)."
            }
            ErrorCode::InvalidRepeat => {
                "retry and expire go together and only with priority urgent (Pushover: priority 2 needs both): retry is 30–3600 seconds, expire 60–10800 seconds and at most the message's ttl.\nSend `-p urgent --retry 60 --expire 3600`, or neither."
            }
            ErrorCode::InvalidHeartbeat => {
                "The heartbeat's name is not 1–64 bytes of A-Z a-z 0-9 . _ -, a duration is not a number with a unit (90s, 45m, 12h, 1d), `every` is outside 1 minute–31 days or missing on the first ping, or `grace` is outside 0–1 day.\nUse e.g. `reflecto ping backup --every 1d --grace 1h`."
            }
            ErrorCode::InvalidPairingCode => {
                "The pairing code is unknown, already used, or older than 10 minutes.\nAsk the operator for a new one: `reflecto admin pair --user NAME`."
            }
            ErrorCode::MissingToken => {
                "The request carried no API token.\nRun `reflecto login`, set REFLECTO_TOKEN, or send `Authorization: Bearer rfk_live_…`."
            }
            ErrorCode::InvalidToken => {
                "The token is malformed, unknown to this relay, or revoked.\nCheck the server the profile points at, then log in again with a current token."
            }
            ErrorCode::PriorityCapped => {
                "This token's scope caps its priority below the one requested.\nSend with a lower --priority, or use a token with a higher cap."
            }
            ErrorCode::Forbidden => {
                "The token is the wrong kind for this endpoint: an admin (rfa_live_) token cannot send, and a sender (rfk_) token cannot use the operator API /v1/admin/*.\nSend with a sender token; administer with an admin token (`reflecto admin token create --admin --label L`)."
            }
            ErrorCode::NotFound => {
                "No such resource for this token's owner (an unknown message id, or another user's).\nCheck the id."
            }
            ErrorCode::PayloadTooLarge => {
                "The notification envelope exceeds 2048 bytes (details.size / details.max), or the raw body exceeds 64 KiB.\nShorten the message, title or actions."
            }
            ErrorCode::RateLimitExceeded => {
                "A rate limit is exhausted; details.resource names it (token_burst, token_monthly, receiver_daily, ip_minute, ip_hour) and Retry-After says when to try again.\nWait, or raise the limit on a relay you operate. `reflecto send` retries within --retry-max-wait."
            }
            ErrorCode::InternalError => {
                "The relay failed on its side; nothing in your request was wrong. The X-Request-Id header identifies the failure in the relay's logs.\nRetry later; tell the relay's operator if it persists."
            }
            ErrorCode::NoStoredToken => {
                "No token is stored for this profile and REFLECTO_TOKEN is not set.\nRun `reflecto login` (or pass the token through REFLECTO_TOKEN / --token-stdin)."
            }
            ErrorCode::KeyringUnavailable => {
                "The OS keyring could not be reached and --secure-storage-only forbids the file fallback.\nStart a Secret Service (e.g. gnome-keyring), or drop --secure-storage-only to use a 0600 file."
            }
            ErrorCode::RelayUnreachable => {
                "The relay could not be reached (DNS, connection refused, TLS, timeout) within --retry-max-wait.\nCheck --server / the profile's server, your network and HTTP(S)_PROXY."
            }
            ErrorCode::UnexpectedResponse => {
                "The server answered with something that is not a reflecto response.\nCheck that --server points at a reflecto relay."
            }
            ErrorCode::CliInternalError => {
                "reflecto itself failed (a file could not be read or written, say); the message says what.\nFix what it names, or report a bug."
            }
            ErrorCode::UsageError => {
                "The command line is wrong: a malformed --server URL, an unknown flag or value, a missing argument. Nothing was sent.\nSee `reflecto <command> --help`; --server takes an http(s) base URL such as https://relay.example or http://127.0.0.1:8080/reflecto."
            }
            ErrorCode::Conflict => {
                "What you asked to create already exists (a user name, say), or the state does not allow the change.\nList what exists (`reflecto admin user list`) and pick another name, or remove the old one first."
            }
            ErrorCode::IoError => {
                "A file or stream named on the command line could not be opened, read or written (a missing --batch file, a directory without write permission).\nCheck the path and its permissions; the message names both."
            }
            ErrorCode::InsecureCredentials => {
                "The credentials file is readable by other users (group or world bits set), so reflecto refuses to use the tokens in it, as ssh does with private keys.\nRun the chmod the message shows (chmod 600 FILE), then retry; rotate the tokens if others may have read them."
            }
            ErrorCode::Interrupted => {
                "Ctrl-C stopped a batch after the line in flight; the summary names the first line not sent.\nResume with `reflecto send --batch FILE --skip N`, N being the last line handled."
            }
            ErrorCode::StoreNotFound => {
                "`reflecto admin` found no relay store in the data directory it was given, and refuses to create an empty one (a typo in --data-dir would otherwise look like a relay with no users).\nCheck --data-dir, REFLECTO_DATA_DIR or the config's data_dir; `reflecto admin user add` creates a new store on purpose."
            }
            ErrorCode::StoreUnreachable => {
                "`reflecto serve` or `reflecto admin` could not open its store: the --database URL does not parse, the PostgreSQL server cannot be reached within 10 s, it refuses the login, or the SQLite data directory cannot be created or read.\nCheck --database / REFLECTO_DATABASE_URL (host, port, user, password, database name, sslmode), that the server is up and accepts this host, or the data directory's permissions; the message says which."
            }
            ErrorCode::NotDelivered => {
                "`--wait` ended with a delivery that failed or expired, or that had not ended by the deadline; `reflecto status MSG_ID` shows each device's state and last error.\nCheck the device (paired? `reflecto listen` running?), or wait longer."
            }
            ErrorCode::NotAcknowledged => {
                "Nobody acknowledged the message within the wait (`reflecto ask`'s --wait, or `--wait … --until acknowledged`): no button was pressed and the notification was not clicked. `ask` then cleared the question from every device.\nCheck that someone can see it (`reflecto status MSG_ID` shows where it was delivered), or wait longer."
            }
        }
    }
}

/// What each exit status means (SPEC §2), for `reflecto explain 5` and the man page.
pub const EXIT_CODES: [(u8, &str); 9] = [
    (
        0,
        "sent (warnings included), or the command did what it said",
    ),
    (
        1,
        "internal error: a bug in reflecto (please report it with the command and its output)",
    ),
    (
        2,
        "usage error or invalid input (an unknown id, a --server that is not a reflecto relay, a file that exists): nothing was sent",
    ),
    (
        3,
        "authentication or permission: no stored token, unknown or revoked token, priority above the token's cap, an unsafe credentials file",
    ),
    (
        4,
        "payload too large: the whole notification (message, title, URL, tags and actions together) exceeds 2048 bytes; a message alone over 1500 bytes is exit 2 (message_too_long)",
    ),
    (5, "rate limited after retries"),
    (6, "relay unreachable, or 5xx after retries"),
    (
        7,
        "not delivered (--wait): a delivery failed, expired, or did not end in time; or not acknowledged (`ask`, --until acknowledged): nobody answered in time",
    ),
    (
        130,
        "interrupted by Ctrl-C (a batch prints what it sent and where to resume)",
    ),
];

/// The explanation of exit status `code`, with the error codes that end in it.
pub fn explain_exit_code(code: u8) -> Option<String> {
    let (_, meaning) = EXIT_CODES.iter().find(|(c, _)| *c == code)?;
    let codes: Vec<&str> = ErrorCode::ALL
        .iter()
        .filter(|c| c.exit_code() == code)
        .map(|c| c.as_str())
        .collect();
    let mut text = format!("exit status {code}: {meaning}");
    if !codes.is_empty() {
        text.push_str(&format!(
            "\n\nerror codes with this status: {}\n`reflecto explain CODE` explains each.",
            codes.join(", ")
        ));
    }
    Some(text)
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable code, a human message and optional structured details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A byte-length failure: carries `details: {"bytes": N, "max": M}`.
    pub fn too_many_bytes(
        code: ErrorCode,
        message: impl Into<String>,
        bytes: usize,
        max: usize,
    ) -> Self {
        ApiError::new(code, message).with_details(serde_json::json!({ "bytes": bytes, "max": max }))
    }

    pub fn internal() -> Self {
        ApiError::new(ErrorCode::InternalError, "internal error")
    }

    /// The wire body: flat for 401, nested for everything else.
    pub fn to_body(&self) -> Value {
        if self.code.http_status() == 401 {
            let flat = FlatErrorBody {
                error: self.code.as_str().to_owned(),
                message: (self.code == ErrorCode::MissingToken).then(|| self.message.clone()),
            };
            serde_json::to_value(flat).expect("plain struct serializes")
        } else {
            self.to_nested_body()
        }
    }

    /// Always the nested shape: what `--json` prints on stdout when a command fails.
    pub fn to_nested_body(&self) -> Value {
        let nested = NestedErrorBody {
            error: ErrorReply {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        };
        serde_json::to_value(nested).expect("plain struct serializes")
    }

    /// Reads either wire shape back (the client decoding a relay's answer). Unknown codes
    /// yield `None` so the caller can report an unexpected response.
    pub fn from_body(body: &Value) -> Option<ApiError> {
        if let Ok(nested) = serde_json::from_value::<NestedErrorBody>(body.clone()) {
            let code = ErrorCode::parse(&nested.error.code)?;
            return Some(ApiError {
                code,
                message: nested.error.message,
                details: nested.error.details,
            });
        }
        let flat = serde_json::from_value::<FlatErrorBody>(body.clone()).ok()?;
        let code = ErrorCode::parse(&flat.error)?;
        let message = flat.message.unwrap_or_else(|| match code {
            ErrorCode::InvalidToken => "token is malformed, unknown or revoked".to_owned(),
            _ => code.as_str().to_owned(),
        });
        Some(ApiError {
            code,
            message,
            details: None,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `{"error":{"code":…,"message":…,"details":…}}`
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NestedErrorBody {
    pub error: ErrorReply,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorReply {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// `{"error":"missing_token","message":…}` — the 401 shape.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlatErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_code_round_trips_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
            assert!(!code.explanation().is_empty());
        }
    }

    #[test]
    fn spec_status_table() {
        use ErrorCode::*;
        for c in [
            InvalidBody,
            InvalidMessage,
            MessageTooLong,
            InvalidTitle,
            InvalidPriority,
            InvalidUrl,
            InvalidUrlTitle,
            InvalidAction,
            InvalidDevice,
            InvalidKey,
            InvalidResponse,
            InvalidRepeat,
            InvalidHeartbeat,
        ] {
            assert_eq!(c.http_status(), 400, "{c}");
            assert_eq!(c.exit_code(), 2, "{c}");
        }
        assert_eq!(MissingToken.http_status(), 401);
        assert_eq!(InvalidToken.http_status(), 401);
        assert_eq!(PriorityCapped.http_status(), 403);
        assert_eq!(PayloadTooLarge.http_status(), 413);
        assert_eq!(RateLimitExceeded.http_status(), 429);
        assert_eq!(InternalError.http_status(), 500);
        assert_eq!(MissingToken.exit_code(), 3);
        assert_eq!(InvalidToken.exit_code(), 3);
        assert_eq!(PriorityCapped.exit_code(), 3);
        assert_eq!(NoStoredToken.exit_code(), 3);
        assert_eq!(PayloadTooLarge.exit_code(), 4);
        assert_eq!(RateLimitExceeded.exit_code(), 5);
        assert_eq!(InternalError.exit_code(), 6);
        assert_eq!(RelayUnreachable.exit_code(), 6);
        assert_eq!(CliInternalError.exit_code(), 1);
    }

    #[test]
    fn cli_codes_have_their_own_exit_codes() {
        use ErrorCode::*;
        for c in [
            UsageError,
            Conflict,
            IoError,
            StoreNotFound,
            StoreUnreachable,
            NotFound,
            UnexpectedResponse,
        ] {
            assert_eq!(c.exit_code(), 2, "{c}");
        }
        assert_eq!(InsecureCredentials.exit_code(), 3);
        assert_eq!(Interrupted.exit_code(), 130);
        // Every exit code a code maps to is documented, and every documented one explained.
        for code in ErrorCode::ALL {
            assert!(explain_exit_code(code.exit_code()).is_some(), "{code}");
        }
        assert!(explain_exit_code(6).unwrap().contains("relay_unreachable"));
        assert_eq!(explain_exit_code(42), None);
    }

    #[test]
    fn nested_shape_with_details() {
        let e = ApiError::new(
            ErrorCode::PayloadTooLarge,
            "Payload exceeds 2048 byte limit",
        )
        .with_details(json!({"size": 3104, "max": 2048}));
        assert_eq!(
            e.to_body(),
            json!({"error":{"code":"payload_too_large","message":"Payload exceeds 2048 byte limit","details":{"size":3104,"max":2048}}})
        );
        assert_eq!(ApiError::from_body(&e.to_body()), Some(e));
    }

    #[test]
    fn flat_shape_for_401() {
        let missing = ApiError::new(
            ErrorCode::MissingToken,
            "Authorization: Bearer rfk_live_… required",
        );
        assert_eq!(
            missing.to_body(),
            json!({"error":"missing_token","message":"Authorization: Bearer rfk_live_… required"})
        );
        let invalid = ApiError::new(ErrorCode::InvalidToken, "whatever");
        assert_eq!(invalid.to_body(), json!({"error":"invalid_token"}));
        assert_eq!(
            ApiError::from_body(&invalid.to_body()).unwrap().code,
            ErrorCode::InvalidToken
        );
    }

    #[test]
    fn unknown_codes_are_not_guessed() {
        assert_eq!(
            ApiError::from_body(&json!({"error":{"code":"teapot","message":"x"}})),
            None
        );
        assert_eq!(ApiError::from_body(&json!({"hello":"world"})), None);
    }
}
