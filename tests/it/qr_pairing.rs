//! QR pairing (SPEC §2.4, §1.19): the SVG and the terminal's half blocks both decode, with a
//! decoder that is not ours (zbarimg, Debian's zbar-tools), to the pairing link; the link
//! points at `--public-url`, else the running relay's address.

use crate::harness::{
    BIN, Relay, assert_refused, decode_svg, decode_terminal, no_limits, stdout_of, tools,
};
use std::path::Path;
use std::process::Command;

/// zbarimg decodes, rsvg-convert rasterises SVG (ImageMagick, which zbarimg reads through,
/// reads the plain PBM the terminal code becomes).
fn decoders() -> bool {
    tools(&["zbarimg", "rsvg-convert"], "zbar-tools librsvg2-bin")
}

/// A relay whose `--public-url` is `public` (if any), with user alice and an admin token
/// labelled `label`: (relay, admin token).
async fn relay_at(public: Option<&str>, label: &str) -> (Relay, String) {
    let relay = Relay::start_with(
        no_limits(),
        std::sync::Arc::new(reflecto::server::SystemClock),
        |c| c.public_url = public.map(str::to_owned),
    )
    .await;
    relay.admin(&["user", "add", "alice"]);
    let token = relay.admin(&["token", "create", "--admin", "--label", label]);
    (relay, token)
}

/// `reflecto admin --data-dir DIR ARGS` → (exit code, stdout, stderr).
fn admin(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("REFLECTO_PUBLIC_URL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn pairing_qr_svg_decodes_to_the_link() {
    if !decoders() {
        return;
    }
    let link = reflecto::qr::pairing_link("https://relay.example/reflecto/", "042917");
    assert_eq!(link, "https://relay.example/reflecto/app/#code=042917");
    assert_eq!(decode_svg(&reflecto::qr::pairing_qr_svg(&link)), link);
}

#[test]
fn admin_pair_qr_prints_code_link_and_a_terminal_code_that_decodes() {
    if !decoders() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(admin(dir.path(), &["user", "add", "alice"]).0, 0);
    let (code, out, err) = admin(
        dir.path(),
        &[
            "pair",
            "--user",
            "alice",
            "--qr",
            "--public-url",
            "https://relay.example/",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let pairing_code = lines[0];
    assert!(
        pairing_code.len() == 6 && pairing_code.bytes().all(|b| b.is_ascii_digit()),
        "{out}"
    );
    let link = format!("https://relay.example/app/#code={pairing_code}");
    assert_eq!(lines[1], link);
    // Not a terminal: no colour codes, just the blocks.
    assert!(!out.contains('\x1b'));
    assert_eq!(decode_terminal(&lines[2..]), link);
}

#[test]
fn admin_pair_qr_refuses_without_a_public_url_and_spends_no_code() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(admin(dir.path(), &["user", "add", "alice"]).0, 0);
    let (code, out, err) = admin(dir.path(), &["pair", "--user", "alice", "--qr"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("error[usage_error]") && err.contains("--public-url"),
        "{err}"
    );
    let (code, _, err) = admin(
        dir.path(),
        &["pair", "--user", "alice", "--qr", "--public-url", "relay"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--public-url 'relay'"), "{err}");
    // Without --qr the output is what it always was: the code alone.
    let (code, out, _) = admin(dir.path(), &["pair", "--user", "alice"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim().len(), 6, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_pair_qr_links_to_the_relay_running_on_the_data_dir() {
    let relay = Relay::start(no_limits()).await;
    relay.admin(&["user", "add", "alice"]);
    let (code, out, err) = admin(relay.dir.path(), &["pair", "--user", "alice", "--qr"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], format!("{}/app/#code={}", relay.url, lines[0]));
}

/// `POST /v1/admin/pairings` (SPEC §1.19): the link is `--public-url`'s, else the request's own
/// origin, and its `qr_svg`, rasterised, decodes to exactly that link.
#[tokio::test(flavor = "multi_thread")]
async fn the_apis_pairing_qr_svg_decodes_to_its_link() {
    if !decoders() {
        return;
    }
    for public in [Some("https://push.example.org/relay/"), None] {
        let (relay, token) = relay_at(public, "qr").await;
        let (_, answer) = relay
            .api()
            .call(
                "POST",
                "/v1/admin/pairings",
                Some(&token),
                Some(serde_json::json!({"user": "alice"})),
            )
            .await;
        let code = answer["code"].as_str().unwrap();
        let base = public.map_or(relay.url.clone(), |p| p.trim_end_matches('/').to_owned());
        let link = format!("{base}/app/#code={code}");
        assert_eq!(answer["link"], link.as_str(), "{answer}");
        let svg = answer["qr_svg"].as_str().unwrap().to_owned();
        let decoded = tokio::task::spawn_blocking(move || decode_svg(&svg))
            .await
            .unwrap();
        assert_eq!(decoded, link);
    }
}

/// `reflecto serve --public-url` that is not an http(s) URL is refused before anything
/// listens (exit 2, naming the flag).
#[test]
fn serve_refuses_a_public_url_that_is_not_an_http_url() {
    let out = Command::new(BIN)
        .args(["serve", "--print-config", "--public-url", "relay.example"])
        .output()
        .unwrap();
    assert_refused(&out, 2, "--public-url 'relay.example'");
    let ok = Command::new(BIN)
        .args([
            "serve",
            "--print-config",
            "--public-url",
            "https://relay.example/",
        ])
        .env_remove("REFLECTO_CONFIG")
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("public_url = \"https://relay.example/\""),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}

/// `reflecto admin --server URL pair --qr`: the relay's own link (its `--public-url`), printed
/// and drawn as on a local store.
#[tokio::test(flavor = "multi_thread")]
async fn remote_admin_pair_qr_prints_the_relays_link() {
    if !decoders() {
        return;
    }
    let (relay, token) = relay_at(Some("https://push.example.org"), "laptop").await;
    let url = relay.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let admin = Command::new(BIN)
            .args(["admin", "--server", &url, "pair", "--user", "alice", "--qr"])
            .env("REFLECTO_ADMIN_TOKEN", token)
            .env_remove("REFLECTO_PUBLIC_URL")
            .output();
        stdout_of(admin.unwrap())
    })
    .await
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let link = format!("https://push.example.org/app/#code={}", lines[0]);
    assert_eq!(lines[1], link);
    let drawn: Vec<String> = lines[2..].iter().map(|l| l.to_string()).collect();
    let decoded = tokio::task::spawn_blocking(move || {
        decode_terminal(&drawn.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    assert_eq!(decoded, link);
}
