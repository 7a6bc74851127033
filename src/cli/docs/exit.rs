//! The EXIT STATUS section of each man page, said for that command (SPEC §2.5): the statuses it
//! can end with and what each means there, so `reflecto-serve(1)` does not promise a 7.

/// Common meanings, reused where a command means the same.
const BUG: &str =
    "internal error: a bug in reflecto (please report it with the command and its output)";

/// (status, meaning) for the page `name` (`reflecto-send.1`, …); the overview for `reflecto.1`.
pub fn exit_statuses(name: &str) -> Vec<(u8, &'static str)> {
    match name {
        "reflecto-send.1" => vec![
            (
                0,
                "sent (warnings included); with --batch, every line was sent",
            ),
            (1, BUG),
            (
                2,
                "usage error or invalid input (with --batch: of some line; the others were sent): a bad flag value, a message argument over 1500 bytes (message_too_long), an empty stdin, a --server that is not a reflecto relay, a token stored for another relay",
            ),
            (
                3,
                "authentication or permission: no stored token, an unknown or revoked token, a priority above the token's cap, an unsafe credentials file",
            ),
            (
                4,
                "payload too large: the whole notification (message, title, URL, tags, actions and the token's label) exceeds 2048 bytes",
            ),
            (5, "rate limited after retries"),
            (
                6,
                "relay unreachable, or 5xx after retries; a batch stops at that line and says which --skip resumes it",
            ),
            (
                7,
                "not delivered (--wait): a delivery failed, expired, or did not end in time; with --until acknowledged: nobody acknowledged it in time (not_acknowledged)",
            ),
            (
                130,
                "a batch interrupted by Ctrl-C (it prints what it sent and where to resume)",
            ),
        ],
        "reflecto-ask.1" => vec![
            (
                0,
                "someone answered: stdout holds the chosen response (nothing for a click on the notification itself)",
            ),
            (1, BUG),
            (
                2,
                "usage error or invalid input: no --option or more than 3, an option that is no valid response, a bad send flag",
            ),
            (
                3,
                "authentication or permission: no stored token, an unknown or revoked token, a priority above the token's cap",
            ),
            (4, "payload too large"),
            (5, "rate limited after retries"),
            (6, "relay unreachable, or 5xx after retries"),
            (
                7,
                "not acknowledged: nobody answered within --wait (not_acknowledged); the question was cleared from every device",
            ),
        ],
        "reflecto-clear.1" | "reflecto-respond.1" => vec![
            (0, "done (clearing or acknowledging twice is not an error)"),
            (1, BUG),
            (
                2,
                "usage error, an invalid key or response (invalid_key, invalid_response), or a message the relay does not know for this token or device (not_found)",
            ),
            (
                3,
                "authentication: no stored token (clear) or no pairing (respond), an unknown or revoked token or device",
            ),
            (5, "rate limited after retries"),
            (6, "relay unreachable, or 5xx after retries"),
        ],
        "reflecto-ping.1" | "reflecto-heartbeats.1" => vec![
            (
                0,
                "done: the heartbeat was pinged (or its failure reported), or listed",
            ),
            (1, BUG),
            (
                2,
                "usage error or invalid input: a bad name or duration, no --every on a heartbeat's first ping (invalid_heartbeat), or --fail for a heartbeat never pinged (not_found)",
            ),
            (
                3,
                "authentication: no stored token, an unknown or revoked token",
            ),
            (5, "rate limited after retries"),
            (
                6,
                "relay unreachable, or 5xx, after retries within --retry-max-wait (never longer)",
            ),
        ],
        "reflecto-run.1" => vec![
            (
                0,
                "COMMAND succeeded (whether or not the notification could be sent)",
            ),
            (
                1,
                "COMMAND exited 1: every exit status of COMMAND is passed on as it is, a failed send never changes it; also an internal error of reflecto",
            ),
            (
                2,
                "a usage error found before COMMAND ran (a bad flag value, a malformed --server, a token stored for another relay), or COMMAND exited 2",
            ),
            (126, "COMMAND was found but could not be executed"),
            (127, "COMMAND was not found"),
            (130, "COMMAND was killed by SIGINT (Ctrl-C)"),
            (
                143,
                "COMMAND was killed by SIGTERM; any signal N gives 128 + N",
            ),
        ],
        "reflecto-status.1" => vec![
            (
                0,
                "the status was shown; with --wait, every delivery was delivered",
            ),
            (1, BUG),
            (
                2,
                "usage error, or a message id the relay does not know (not_found)",
            ),
            (
                3,
                "authentication: no stored token, an unknown or revoked token",
            ),
            (5, "rate limited"),
            (6, "relay unreachable, or a 5xx"),
            (
                7,
                "not delivered (--wait): a delivery failed, expired, or did not end in time; with --until acknowledged: nobody acknowledged it in time (not_acknowledged)",
            ),
        ],
        "reflecto-login.1" => vec![
            (
                0,
                "the token was checked by the relay (or --no-verify) and stored",
            ),
            (1, BUG),
            (
                2,
                "usage error: no --server and no profile server, a malformed --server",
            ),
            (
                3,
                "not a sender token, or one the relay does not know or has revoked; no keyring and no --insecure-storage; an unsafe credentials file",
            ),
            (
                6,
                "the relay could not be reached: nothing was stored (--no-verify stores it unchecked)",
            ),
        ],
        "reflecto-pair.1" => vec![
            (0, "this computer is paired: its device id is printed"),
            (1, BUG),
            (
                2,
                "usage error: a code that is not 6 digits, an expired or used code, a malformed --server",
            ),
            (3, "the OS keyring could not store the device's key"),
            (5, "rate limited"),
            (6, "relay unreachable, or a 5xx"),
        ],
        "reflecto-listen.1" => vec![
            (
                0,
                "stopped by Ctrl-C or SIGTERM after acknowledging what was shown; --poll: everything pending was handled",
            ),
            (1, BUG),
            (2, "usage error"),
            (
                3,
                "this computer is not paired, or its device was removed on the relay: pair again",
            ),
            (
                6,
                "--poll only: the relay could not be reached (without --poll, listen reconnects by itself)",
            ),
        ],
        "reflecto-serve.1" => vec![
            (
                0,
                "stopped by SIGTERM or Ctrl-C (streams closed, nothing unacknowledged lost)",
            ),
            (1, BUG),
            (
                2,
                "a bad flag, variable or config file, a data dir another relay already runs on (conflict, naming its pid), a store that cannot be opened or reached",
            ),
        ],
        "reflecto-setup.1" => vec![
            (
                0,
                "this computer sends and receives: the test notification was accepted",
            ),
            (1, BUG),
            (
                2,
                "usage error, no relay found (no store, or no running relay at the recorded address), a profile that belongs to another relay or user",
            ),
            (
                3,
                "the keyring could not store the token or the device's secrets",
            ),
            (6, "the relay named by --server could not be reached"),
        ],
        "reflecto-admin.1" => vec![
            (0, "done"),
            (1, BUG),
            (
                2,
                "usage error, a data dir with no store, an unknown user, token or device (not_found), one that already exists (conflict), a backup into a missing directory or over a file without --force",
            ),
            (
                3,
                "with --server: no admin token, or one the relay refuses (invalid_token, or forbidden for a sender token)",
            ),
            (
                6,
                "with --server: the relay could not be reached, or failed",
            ),
        ],
        _ => crate::api::EXIT_CODES
            .iter()
            .map(|(code, meaning)| (*code, *meaning))
            .collect(),
    }
}
