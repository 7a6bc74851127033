//! The sender's loop through the real binary (SPEC §2.3): `reflecto ask` sends a question with
//! response buttons, a device answers with `reflecto respond` (its stored device credential),
//! and `ask` prints that response alone and exits 0; with nobody answering it exits 7 after
//! its `--wait` with `error[not_acknowledged]` and the question cleared from every screen.
//! `send --wait --until acknowledged` and `reflecto clear` ride on the same endpoints.

use crate::harness::{
    BIN, Desk, Relay, assert_refused, json_stdout_of, lines_of, spawn_piped, stdout_of,
};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The real binary as a sender: the relay and token from the environment, no profile.
fn sender(relay: &Relay, token: &str) -> Command {
    let mut cmd = Command::new(BIN);
    let config = relay.dir.path().join("sender-config");
    cmd.env("REFLECTO_CONFIG_DIR", config)
        .env("REFLECTO_SERVER", &relay.url)
        .env("REFLECTO_TOKEN", token)
        .env_remove("REFLECTO_PROFILE")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    cmd
}

/// A running `ask`: its stderr lines on a channel (its first names the question's id).
struct Asking {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Asking {
    /// `reflecto ARGS` as alice's sender on `relay`.
    fn start(relay: &Relay, token: &str, args: &[&str]) -> Asking {
        let mut child = spawn_piped(sender(relay, token).args(args));
        let stderr = lines_of(child.stderr.take().unwrap());
        Asking { child, stderr }
    }

    /// The question's id, from `msg_…: asked on N device(s); …`.
    fn id(&self) -> String {
        let line = self
            .stderr
            .recv_timeout(Duration::from_secs(30))
            .expect("ask said which message it sent");
        let id = line.split(':').next().unwrap().to_owned();
        assert!(id.starts_with("msg_"), "{line}");
        id
    }

    /// Exit status, stdout and the rest of stderr.
    fn finish(self) -> (Option<i32>, String, String) {
        let out = self.child.wait_with_output().unwrap();
        // Until the reader thread saw the pipe close: every line the command wrote.
        let rest: Vec<String> = self.stderr.iter().collect();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            rest.join("\n"),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_prints_the_response_a_device_chose_and_exits_0() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let question = [
        "ask",
        "Deploy v42 to prod?",
        "--option",
        "Deploy",
        "--option",
        "Not now=abort",
        "--wait",
        "60",
    ];
    let asking = Asking::start(&relay, &token, &question);
    let id = asking.id();
    // What the device got: the question with one response button per option.
    let polled = desk.poll_output(&["--json"]);
    let line: Value = serde_json::from_slice(&polled.stdout).unwrap();
    assert_eq!(line["id"], id.as_str());
    assert_eq!(
        line["envelope"]["payload"]["actions"],
        serde_json::json!([{"label": "Deploy", "response": "Deploy"}, {"label": "Not now", "response": "abort"}])
    );
    let said = stdout_of(desk.cmd().args(["respond", &id, "abort"]).output().unwrap());
    assert!(
        said.contains(&desk.device) && said.contains("with abort"),
        "{said}"
    );
    let (code, stdout, stderr) = asking.finish();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout, "abort\n", "the response alone on stdout");
    let status = relay.api().status(&token, &id).await;
    assert_eq!(status["acknowledged"]["device_id"], desk.device.as_str());
    assert_eq!(status["acknowledged"]["response"], "abort");
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_json_and_a_click_without_a_response() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let asking = Asking::start(
        &relay,
        &token,
        &["ask", "Seen the alert?", "--option", "OK", "--json"],
    );
    let id = asking.id();
    let responded = desk.cmd().args(["respond", &id]).output().unwrap();
    assert!(responded.status.success());
    let (code, stdout, _) = asking.finish();
    assert_eq!(code, Some(0));
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(answer["response"], Value::Null);
    assert_eq!(answer["device_id"], desk.device.as_str());
    assert!(answer["acknowledged_at"].is_string());
    assert_eq!(
        stdout.find("\"id\"").unwrap(),
        1,
        "SPEC's key order: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_answering_is_exit_7_and_the_question_is_cleared() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let asking = Asking::start(
        &relay,
        &token,
        &["ask", "Anyone?", "--option", "Yes", "--wait", "2"],
    );
    let id = asking.id();
    // The device received it (so the clear has a screen to reach).
    let polled = desk.poll_output(&["--json"]);
    assert!(String::from_utf8_lossy(&polled.stdout).contains(&id));
    let (code, stdout, stderr) = asking.finish();
    assert_eq!(code, Some(7), "stderr: {stderr}");
    assert_eq!(stdout, "", "nothing on stdout");
    assert!(stderr.contains("error[not_acknowledged]"), "{stderr}");
    let status = relay.api().status(&token, &id).await;
    assert!(status["cleared_at"].is_string(), "cleared: {status}");
    assert_eq!(status["acknowledged"], Value::Null);
    assert_eq!(status.delivery(&desk.device)["state"], "delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_until_acknowledged_and_clear_by_key() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let mut send = sender(&relay, &token);
    send.args([
        "send",
        "restart db1?",
        "--action-response",
        "Restart=restart",
        "--key",
        "db1",
        "--wait",
        "30",
        "--until",
        "acknowledged",
    ]);
    let mut waiting = send.stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(waiting.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let id = first.split(':').next().unwrap().to_owned();
    assert!(id.starts_with("msg_"), "{first}");
    assert!(
        desk.cmd()
            .args(["respond", &id, "restart"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = waiting.wait_with_output().unwrap();
    let rest = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{rest}");
    assert!(
        rest.contains("acknowledged on") && rest.contains("restart"),
        "{rest}"
    );
    // A response that is not one of the message's is the relay's invalid_response (exit 2).
    let wrong = desk
        .cmd()
        .args(["respond", &id, "reboot"])
        .output()
        .unwrap();
    assert_refused(&wrong, 2, "error[invalid_response]");
    // `clear --key` clears the newest message of the key.
    let cleared = sender(&relay, &token)
        .args(["clear", "--key", "db1", "--json"])
        .output();
    let answer = json_stdout_of(cleared.unwrap());
    assert_eq!(answer["id"], id.as_str());
    let unknown = sender(&relay, &token)
        .args(["clear", "msg_00000000000000000000000000000000"])
        .output()
        .unwrap();
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "a relay's not_found for a typed id"
    );
}
