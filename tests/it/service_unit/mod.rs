//! Trip 8 of issue 17 (no service for the relay, a second build, a password in `ps`): the
//! hardened system unit `dist/reflecto.service` checked by the real `systemd-analyze`, and
//! ([`install`]) the real `install.sh` staging it and reusing an installed binary.

mod install;

use crate::harness::{BIN, tools};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The highest `systemd-analyze security` exposure accepted. The relay must reach the network
/// (FCM, Web Push, PostgreSQL) and listen on it: PrivateNetwork=, IPAddressDeny= and the
/// AF_INET/AF_INET6 families cannot be closed, and weigh about 1.0 together; 1.5 leaves room
/// for systemd's rounding and nothing else that can be closed (1.1 when this was written).
const MAX_EXPOSURE: f64 = 1.5;

pub(super) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `dist/reflecto.service` with `@BIN@` replaced by the test build, as install.sh does.
/// The unit for the test binary in a temp dir (the dir, the unit), where `systemd-analyze` is
/// here to check it.
fn unit_to_analyze() -> Option<(tempfile::TempDir, PathBuf)> {
    if !tools(&["systemd-analyze"], "systemd") {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_for_test_binary(tmp.path());
    Some((tmp, unit))
}

fn unit_for_test_binary(dir: &Path) -> PathBuf {
    let template = std::fs::read_to_string(repo().join("dist/reflecto.service")).unwrap();
    assert!(template.contains("ExecStart=@BIN@ serve\n"));
    let path = dir.join("reflecto.service");
    std::fs::write(&path, template.replace("@BIN@", BIN)).unwrap();
    path
}

fn verify(unit: &Path) -> Output {
    Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit)
        .output()
        .unwrap()
}

/// Lines systemd wrote about our unit (anything else on the host is not ours to judge).
fn about_unit(stderr: &[u8]) -> Vec<String> {
    text(stderr)
        .lines()
        .filter(|l| l.contains("reflecto"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_relay_unit_passes_systemd_analyze_verify() {
    let Some((tmp, unit)) = unit_to_analyze() else {
        return;
    };
    let out = verify(&unit);
    eprintln!("systemd-analyze verify --man=no: {}", text(&out.stderr));
    assert!(out.status.success(), "verify failed: {}", text(&out.stderr));
    assert_eq!(about_unit(&out.stderr), Vec::<String>::new());

    // The same check sees a mistake: a misspelt directive is reported against the unit.
    let broken = tmp.path().join("broken/reflecto.service");
    std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
    let body = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&broken, body.replace("ProtectSystem=", "ProtectSytem=")).unwrap();
    let lines = about_unit(&verify(&broken).stderr);
    assert!(
        lines.iter().any(|l| l.contains("ProtectSytem")),
        "{lines:?}"
    );
}

#[test]
fn the_relay_unit_exposure_is_ok() {
    let Some((_tmp, unit)) = unit_to_analyze() else {
        return;
    };
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level for reflecto.service:"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{stdout}"));
    let score: f64 = line
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable: {line}"));
    // Printed so the note can quote it (`cargo test --test it service_unit -- --nocapture`).
    eprintln!("systemd-analyze security --offline=true: {}", line.trim());
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{stdout}"
    );
}
