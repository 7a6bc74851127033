//! `reflecto setup --service`: systemd's user manager does not run in the test container, so
//! it runs against a `systemctl` first on PATH that records its arguments (the exact calls are
//! checked); the unit it writes is compared with install.sh's template and checked by the real
//! `systemd-analyze verify --man=no`.

use super::Home;
use crate::harness::{BIN, Relay, json_stdout_of, no_limits, tools};
use std::path::Path;

/// A `systemctl` that appends its arguments to `log` and succeeds, in `dir`.
fn recording_systemctl(dir: &Path, log: &Path) {
    let script = dir.join("systemctl");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_service_installs_and_starts_the_listen_unit() {
    let relay = Relay::start(no_limits()).await;
    let home = Home::new();
    let bin = home.dir.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = home.dir.path().join("systemctl.calls");
    recording_systemctl(&bin, &calls);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = || {
        let setup = home
            .reflecto()
            .env("PATH", &path)
            .args([
                "setup",
                "--json",
                "--service",
                "--server",
                &relay.url,
                "--data-dir",
            ])
            .arg(relay.dir.path())
            .output();
        json_stdout_of(setup.unwrap())
    };
    let summary = run();
    let unit = home
        .xdg_config()
        .join("systemd/user/reflecto-listen.service");
    assert_eq!(summary["service"]["unit"], unit.to_str().unwrap());
    let text = std::fs::read_to_string(&unit).unwrap();
    let template = include_str!("../../../dist/reflecto-listen.service");
    assert_eq!(
        text,
        template.replace("@BIN@", BIN),
        "the unit as install.sh writes it"
    );
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "--user daemon-reload\n--user enable --now reflecto-listen.service\n"
    );
    // Again: the unit is unchanged, and it is enabled and started again (both idempotent).
    std::fs::remove_file(&calls).unwrap();
    let again = run();
    assert_eq!(again["service"]["written"], false);
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "--user daemon-reload\n--user enable --now reflecto-listen.service\n"
    );
    // Without --service: nothing is run, and the one command to run is printed.
    std::fs::remove_file(&calls).unwrap();
    let out = home
        .reflecto()
        .env("PATH", &path)
        .args(["setup", "--server", &relay.url, "--data-dir"])
        .arg(relay.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!calls.exists(), "systemctl ran without --service");
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `reflecto listen`"));

    if tools(&["systemd-analyze"], "systemd") {
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "systemd-analyze verify: {stderr}");
        let ours: Vec<_> = stderr.lines().filter(|l| l.contains("reflecto")).collect();
        assert!(ours.is_empty(), "{ours:?}");
    }
}
