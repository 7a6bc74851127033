//! `install.sh` on a scratch machine: `--system --root` stages the unit, the env file and the
//! binary; an installed `reflecto` of this version is reused, never built again; `--system`
//! without root is refused.

use super::{repo, text};
use crate::harness::{BIN, tools};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch machine for install.sh: a HOME, a dir on PATH holding `reflecto` (the test
/// build) when `with_reflecto`, and a `cargo` first on PATH that records being run and fails,
/// so a build is seen, never performed.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new(with_reflecto: bool) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "path", "tripwire"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        if with_reflecto {
            symlink(BIN, dir.path().join("path/reflecto")).unwrap();
        }
        let cargo = dir.path().join("tripwire/cargo");
        let marker = dir.path().join("cargo-was-run");
        std::fs::write(
            &cargo,
            format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        Machine { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn install(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
            self.path("tripwire").display(),
            self.path("path").display()
        );
        let out = Command::new("sh")
            .arg(repo().join("install.sh"))
            .args(args)
            .env_clear()
            .env("HOME", self.path("home"))
            .env("PATH", path)
            .output()
            .unwrap();
        eprintln!(
            "install.sh {args:?}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            !self.path("cargo-was-run").exists(),
            "install.sh built a second copy"
        );
        out
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

#[test]
fn install_system_stages_the_unit_and_reuses_the_installed_binary() {
    let m = Machine::new(true);
    let root = m.path("root");
    let out = m.install(&["--system", "--root", root.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("not building"));

    let unit = std::fs::read_to_string(root.join("etc/systemd/system/reflecto.service")).unwrap();
    assert!(
        unit.lines()
            .any(|l| l == "ExecStart=/usr/local/bin/reflecto serve")
    );
    assert!(!unit.contains("@BIN@"));
    assert!(same_bytes(
        &root.join("usr/local/bin/reflecto"),
        Path::new(BIN)
    ));
    let listen =
        std::fs::read_to_string(root.join("usr/local/lib/systemd/user/reflecto-listen.service"))
            .unwrap();
    assert!(
        listen
            .lines()
            .any(|l| l == "ExecStart=/usr/local/bin/reflecto listen")
    );
    assert!(
        root.join("usr/local/share/man/man1/reflecto-serve.1")
            .is_file()
    );

    // The env file the unit reads: root-only, with nothing set until the operator sets it.
    let env = root.join("etc/reflecto/env");
    assert_eq!(mode(&env), 0o600);
    let body = std::fs::read_to_string(&env).unwrap();
    assert!(body.contains("#REFLECTO_DATABASE_URL="));
    assert!(body.lines().all(|l| l.is_empty() || l.starts_with('#')));
    assert!(
        unit.lines()
            .any(|l| l == "EnvironmentFile=-/etc/reflecto/env")
    );

    // Again, with the operator's settings in an env file left readable: they stay, the file
    // becomes root-only, and the staged binary is the one reused.
    std::fs::write(&env, "REFLECTO_DATABASE_URL=postgres://r:secret@db/r\n").unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(m.path("path/reflecto")).unwrap();
    let again = m.install(&["--system", "--root", root.to_str().unwrap()]);
    assert!(again.status.success());
    let reused = format!(
        "reusing the installed {}",
        root.join("usr/local/bin/reflecto").display()
    );
    assert!(text(&again.stdout).contains(&reused));
    assert_eq!(mode(&env), 0o600);
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "REFLECTO_DATABASE_URL=postgres://r:secret@db/r\n"
    );
}

#[test]
fn install_for_the_user_runs_the_reflecto_already_on_path() {
    let m = Machine::new(true);
    let out = m.install(&[]);
    assert!(out.status.success());
    // No second copy in ~/.local/bin: the user unit runs the one on PATH.
    assert!(!m.path("home/.local/bin/reflecto").exists());
    let unit = std::fs::read_to_string(m.path("home/.config/systemd/user/reflecto-listen.service"))
        .unwrap();
    let exec = format!("ExecStart={} listen", m.path("path/reflecto").display());
    assert!(unit.lines().any(|l| l == exec), "{unit}");
    assert!(m.path("home/.local/share/man/man1/reflecto.1").is_file());

    // An explicit --prefix is where the binary goes: copied there, still not built.
    let prefix = m.path("opt");
    assert!(
        m.install(&["--prefix", prefix.to_str().unwrap()])
            .status
            .success()
    );
    assert!(same_bytes(&prefix.join("bin/reflecto"), Path::new(BIN)));
    let unit = std::fs::read_to_string(prefix.join("lib/systemd/user/reflecto-listen.service"));
    let exec = format!("ExecStart={} listen", prefix.join("bin/reflecto").display());
    assert!(unit.unwrap().lines().any(|l| l == exec));
}

#[test]
fn install_refuses_a_binary_of_another_version() {
    let m = Machine::new(false);
    let root = m.path("root");
    let out = m.install(&[
        "--system",
        "--root",
        root.to_str().unwrap(),
        "--bin",
        "/bin/true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/bin/true is not reflecto "));
    assert!(!root.exists(), "nothing is written before the refusal");
}

#[test]
fn install_system_refuses_without_root() {
    let m = Machine::new(true);
    // As root (CI runs as root), drop to nobody with util-linux's setpriv to be a user.
    let as_root = rustix::process::getuid().is_root();
    if as_root && !tools(&["setpriv"], "util-linux") {
        return;
    }
    // nobody must be able to read the script: a copy in a world-readable dir.
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = m.path("install.sh");
    std::fs::copy(repo().join("install.sh"), &script).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = if as_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh"]);
        c
    } else {
        Command::new("sh")
    };
    let out = cmd
        .arg(&script)
        .arg("--system")
        .env("HOME", m.path("home"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("run it as root (sudo ./install.sh --system)"),
        "{stderr}"
    );
    assert!(stderr.contains("--root DIR"), "{stderr}");
}
