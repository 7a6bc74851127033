//! Issue 10's trips, each through the real binary: what a new user meets when something is
//! wrong — a bad --server, a bad flag value, a wrong or unknown token, an unsafe credentials
//! file, an operator's typo — and the docs that answer (explain, man, completions).

use crate::harness::{
    BIN, Relay, Sender, UNKNOWN_TOKEN as UNKNOWN, assert_exit, isolated, no_limits, only, reflecto,
    reflecto_at, token_check,
};
use assert_cmd::Command;
use predicates::prelude::*;
use reflecto::server::limits::Layer;
use std::path::Path;

/// `reflecto admin --data-dir DATA ARGS` in the config dir `cfg`.
fn admin_in(cfg: &Path, data: &Path, args: &[&str]) -> Command {
    let mut cmd = reflecto(cfg);
    cmd.args(["admin", "--data-dir"]).arg(data).args(args);
    cmd
}

fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn malformed_server_is_a_usage_error_and_never_retried() {
    let cfg = tempfile::tempdir().unwrap();
    for bad in ["not a url", "relay.example", "ftp://relay.example"] {
        reflecto_at(cfg.path(), "send", bad, UNKNOWN)
            .arg("x")
            .assert()
            .code(2)
            .stderr(
                predicate::str::starts_with("error[usage_error]: --server")
                    .and(predicate::str::contains(bad))
                    .and(predicate::str::contains("relay_unreachable").not()),
            );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn network_errors_say_what_failed_and_where() {
    let relay = Relay::start(no_limits()).await;
    let cfg = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let https = relay.url.replace("http://", "https://");
    for (server, code, said) in [
        // DNS: `.invalid` never resolves (RFC 6761).
        (
            "http://relay.invalid".to_owned(),
            6,
            "cannot resolve host 'relay.invalid' (tried http://relay.invalid/v1/send)".to_owned(),
        ),
        (
            format!("http://{closed}"),
            6,
            format!("connection refused by {closed} (tried http://{closed}/v1/send)"),
        ),
        (
            https.clone(),
            6,
            format!(
                "TLS handshake failed (is the relay serving plain http?) (tried {https}/v1/send)"
            ),
        ),
        // A wrong path: the URL that answered 404 is named, and it is a usage error.
        (
            format!("{}/v1", relay.url),
            2,
            format!("{}/v1/v1/send answered 404", relay.url),
        ),
    ] {
        let mut send = reflecto_at(cfg.path(), "send", &server, UNKNOWN);
        assert_exit(send.args(["x", "--retry-max-wait", "0"]), code, &said);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn local_truncation_warnings_are_printed_and_in_json() {
    let s = Sender::start(no_limits()).await;
    let long_tag = "t".repeat(40);
    let out = s
        .command("send")
        .args(["x", "--json", "--tag", &long_tag])
        .args([
            "--tag", "b", "--tag", "c", "--tag", "d", "--tag", "e", "--tag", "f",
        ])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("warning: tags truncated to first 5 (got 6)").and(
                predicate::str::contains("warning: tag #1 truncated to 32 bytes"),
            ),
        )
        .get_output()
        .clone();
    let body = stdout_json(&out);
    assert_eq!(
        body["warnings"],
        serde_json::json!([
            "tags truncated to first 5 (got 6)",
            "tag #1 truncated to 32 bytes"
        ])
    );
    assert!(s.relay.envelopes()[0].contains(&"t".repeat(32)));
}

#[test]
fn bad_flag_values_get_the_engine_code_not_clap() {
    let cfg = tempfile::tempdir().unwrap();
    for (flag, value, said) in [
        ("-p", "extreme", "error[invalid_priority]: "),
        ("--ttl", "soon", "error[invalid_body]: ttl"),
    ] {
        reflecto(cfg.path())
            .args(["send", "x", flag, value])
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with(said));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_verifies_the_token_and_stores_nothing_when_refused() {
    let s = Sender::start(no_limits()).await;
    let (relay, cfg) = (&s.relay, &s.cfg);
    let login = || {
        let mut cmd = reflecto(cfg.path());
        cmd.args(["login", "--insecure-storage", "--server", &relay.url]);
        cmd
    };
    assert_exit(
        login().write_stdin(format!("{UNKNOWN}\n")),
        3,
        "error[invalid_token]",
    )
    .stderr(predicate::str::contains("nothing was stored"));
    let revoked = relay.admin(&["token", "create", "--user", "alice", "--label", "old"]);
    relay.admin(&["token", "revoke", &relay.token_id("old")]);
    assert_exit(
        login().write_stdin(format!("{revoked}\n")),
        3,
        "error[invalid_token]",
    );
    assert!(!cfg.path().join("credentials.toml").exists());
    assert!(!cfg.path().join("config.toml").exists());
    // A device credential pasted where a sender token belongs says so.
    let credential = "rfd_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345";
    assert_exit(
        login().write_stdin(format!("{credential}\n")),
        3,
        "device credential",
    );
    assert_exit(
        s.command("send").env("REFLECTO_TOKEN", credential).arg("x"),
        3,
        "device credential",
    );
    // The real token is verified and stored; --check asks the relay about it.
    login()
        .write_stdin(format!("{}\n", s.token))
        .assert()
        .success()
        .stderr(predicate::str::contains("verified: token tok_"));
    reflecto(cfg.path())
        .args(["auth", "status", "--check"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("check default: ok")
                .and(predicate::str::contains("of user 'alice'"))
                .and(predicate::str::contains(
                    cfg.path().join("credentials.toml").display().to_string(),
                )),
        );
    // --no-verify stores a token the relay has never seen (offline set-up).
    reflecto(cfg.path())
        .args([
            "login",
            "--insecure-storage",
            "--no-verify",
            "--profile",
            "offline",
        ])
        .args(["--server", &relay.url])
        .write_stdin(format!("{UNKNOWN}\n"))
        .assert()
        .success();
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_reports_limits_without_charging_them() {
    let relay = Relay::start(only(Layer::TokenBurst, 1)).await;
    let (token, _, _) = relay.alice();
    for _ in 0..3 {
        let response = token_check(&relay, &token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-resource"], "token_burst");
        assert_eq!(response.headers()["x-ratelimit-remaining"], "1");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["user"], "alice");
        assert_eq!(body["label"], "ci");
        assert_eq!(body["test"], false);
        assert!(body["id"].as_str().unwrap().starts_with("tok_"));
    }
    // The one send the burst allows is still there.
    let sent = relay
        .send_json(&token, serde_json::json!({"message": "x"}))
        .await;
    assert_eq!(sent.status(), 200);
    assert_eq!(token_check(&relay, UNKNOWN).await.status(), 401);
}

#[test]
fn json_failures_print_the_error_object_on_stdout() {
    let cfg = tempfile::tempdir().unwrap();
    let out = reflecto(cfg.path())
        .args(["send", "x", "--json", "--server", "http://127.0.0.1:9"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let body = stdout_json(&out);
    assert_eq!(body["error"]["code"], "no_stored_token");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reflecto login")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_and_missing_files_have_their_own_codes() {
    let relay = Relay::start(no_limits()).await;
    relay.admin(&["user", "add", "bob"]);
    let cfg = tempfile::tempdir().unwrap();
    admin_in(cfg.path(), relay.dir.path(), &["user", "add", "bob"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[conflict]: "));
    reflecto_at(cfg.path(), "send", &relay.url, UNKNOWN)
        .args(["--batch", "events.jsonl"])
        .current_dir(cfg.path())
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error[io_error]: opening batch file events.jsonl",
        ));
    for code in ["usage_error", "conflict", "io_error"] {
        reflecto(cfg.path())
            .args(["explain", code])
            .assert()
            .success()
            .stdout(predicate::str::contains("exit code 2"));
    }
}

#[test]
fn admin_refuses_a_missing_store_and_prints_rfc3339() {
    let parent = tempfile::tempdir().unwrap();
    let typo = parent.path().join("reflecto-dta");
    let cfg = tempfile::tempdir().unwrap();
    admin_in(cfg.path(), &typo, &["user", "list"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error[store_not_found]")
                .and(predicate::str::contains(typo.display().to_string())),
        );
    assert!(!typo.exists(), "no empty store was created");
    // `user add` is the one command that creates a store.
    admin_in(cfg.path(), &typo, &["user", "add", "alice"])
        .assert()
        .success();
    let out = admin_in(cfg.path(), &typo, &["user", "list", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let users = stdout_json(&out);
    let created = users[0]["created_at"].as_str().expect("an RFC 3339 string");
    chrono::DateTime::parse_from_rfc3339(created).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_monthly_quota_says_when_and_who_sets_it() {
    let s = Sender::start(only(Layer::TokenMonthly, 1)).await;
    let send = || {
        let mut cmd = s.command("send");
        cmd.arg("x");
        cmd
    };
    send().assert().success();
    send().assert().code(5).stderr(
        predicate::str::contains(
            "error[rate_limit_exceeded]: rate limit exceeded: token_monthly; it frees at ",
        )
        .and(predicate::str::is_match(r"\(in \d+d \d+h\)|\(in \d+h \d+m\)").unwrap())
        .and(predicate::str::contains(
            "the relay's operator sets this limit",
        )),
    );
}

#[test]
fn explain_covers_exit_codes() {
    let cfg = tempfile::tempdir().unwrap();
    reflecto(cfg.path())
        .args(["explain", "6"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("exit status 6: relay unreachable")
                .and(predicate::str::contains("relay_unreachable")),
        );
    reflecto(cfg.path())
        .args(["explain", "5"])
        .assert()
        .success()
        .stdout(predicate::str::contains("rate_limit_exceeded"));
    reflecto(cfg.path())
        .args(["explain", "42"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[usage_error]"));
}

#[test]
fn man_pages_carry_exit_status_environment_files_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    reflecto::cli::docs::write_man_pages(dir.path()).unwrap();
    for page in [
        "reflecto-serve.1",
        "reflecto-admin.1",
        "reflecto-pair.1",
        "reflecto-listen.1",
        "reflecto-status.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        for section in [
            ".SH \"EXIT STATUS\"",
            ".SH \"ENVIRONMENT\"",
            ".SH \"EXAMPLES\"",
        ] {
            assert!(text.contains(section), "{page} lacks {section}");
        }
    }
    for page in ["reflecto.1", "reflecto-send.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        for section in [
            ".SH \"EXIT STATUS\"",
            ".SH \"ENVIRONMENT\"",
            ".SH \"FILES\"",
            ".SH \"EXAMPLES\"",
        ] {
            assert!(text.contains(section), "{page} lacks {section}");
        }
        for var in [
            "REFLECTO_TOKEN",
            "REFLECTO_SERVER",
            "REFLECTO_PROFILE",
            "REFLECTO_CONFIG_DIR",
            "REFLECTO_RETRY_MAX_WAIT",
        ] {
            assert!(
                text.contains(&format!("\\fB{var}\\fR")),
                "{page} lacks {var}"
            );
        }
        // SPEC §2.5: a page lists only its own command's variables; the relay's data dir is
        // on the overview (and admin's and serve's pages), not on send's.
        let data_dir = text.contains("\\fBREFLECTO_DATA_DIR\\fR");
        assert_eq!(data_dir, page == "reflecto.1", "{page}: REFLECTO_DATA_DIR");
        assert!(text.contains("credentials.toml"), "{page} FILES");
    }
    let cfg = tempfile::tempdir().unwrap();
    reflecto(cfg.path())
        .args(["send", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("REFLECTO_TOKEN"));
}

#[test]
fn completions_offer_value_sets_not_file_names() {
    let cfg = tempfile::tempdir().unwrap();
    let out = reflecto(cfg.path())
        .args(["completions", "bash"])
        .assert()
        .success()
        .get_output()
        .clone();
    let bash = String::from_utf8(out.stdout).unwrap();
    assert!(
        bash.contains("\"min low default high urgent\""),
        "--priority"
    );
    assert!(bash.contains("\"android extension\""), "--type");
    assert!(bash.contains("bash elvish fish powershell zsh\""), "shells");
    let explain = bash
        .split("reflecto__subcmd__explain)")
        .nth(1)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap();
    assert!(
        explain.contains("rate_limit_exceeded") && explain.contains(" 5 "),
        "{explain}"
    );
}

#[test]
fn config_path_names_config_credentials_and_data_dir() {
    let cfg = tempfile::tempdir().unwrap();
    reflecto(cfg.path())
        .args(["config", "path"])
        .env("REFLECTO_DATA_DIR", "/srv/reflecto")
        .assert()
        .success()
        .stdout(
            predicate::str::contains(format!(
                "config\t{}",
                cfg.path().join("config.toml").display()
            ))
            .and(predicate::str::contains(format!(
                "credentials\t{}",
                cfg.path().join("credentials.toml").display()
            )))
            .and(predicate::str::contains("data_dir\t/srv/reflecto")),
        );
}

#[cfg(unix)]
#[test]
fn group_readable_credentials_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let cfg = tempfile::tempdir().unwrap();
    reflecto(cfg.path())
        .args([
            "login",
            "--insecure-storage",
            "--no-verify",
            "--server",
            "http://127.0.0.1:9",
        ])
        .write_stdin(format!("{UNKNOWN}\n"))
        .assert()
        .success();
    let file = cfg.path().join("credentials.toml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    reflecto(cfg.path())
        .args(["send", "x", "--retry-max-wait", "0"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::starts_with("error[insecure_credentials]").and(
                predicate::str::contains(format!("chmod 600 {}", file.display())),
            ),
        );
    reflecto(cfg.path())
        .args(["auth", "status"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("problem: credentials file")
                .and(predicate::str::contains("credentials file (0600)").not()),
        );
}

#[cfg(unix)]
#[test]
fn config_dirs_are_created_0700_under_umask_000() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a").join("reflecto");
    let status = isolated(&mut std::process::Command::new("sh"), &dir)
        .arg("-c")
        .arg(format!(
            "umask 000; echo {UNKNOWN} | exec \"$0\" login --insecure-storage --no-verify --server http://127.0.0.1:9"
        ))
        .arg(BIN)
        .status()
        .unwrap();
    assert!(status.success());
    for d in [&dir, &root.path().join("a")] {
        let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    let file = std::fs::metadata(dir.join("credentials.toml")).unwrap();
    assert_eq!(file.permissions().mode() & 0o777, 0o600);
}
