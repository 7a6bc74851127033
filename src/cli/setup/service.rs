//! `reflecto setup --service`: the `reflecto-listen` systemd user unit, written as
//! `install.sh` writes it (the template in `dist/`, `@BIN@` → this binary), then enabled and
//! started with `systemctl --user`, so notifications appear without another command.

use crate::api::{ApiError, ErrorCode};
use crate::credentials::DEFAULT_PROFILE;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const UNIT: &str = "reflecto-listen.service";
const TEMPLATE: &str = include_str!("../../../dist/reflecto-listen.service");

/// What `--service` did.
#[derive(Debug, Serialize)]
pub struct Installed {
    pub unit: PathBuf,
    /// Whether the file was written (absent or different before).
    pub written: bool,
    /// The `systemctl` command lines run, in order.
    pub systemctl: Vec<String>,
}

/// `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`: where `install.sh` puts it.
pub fn unit_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.config_dir().join("systemd/user").join(UNIT))
}

fn usage(message: String) -> ApiError {
    ApiError::new(ErrorCode::UsageError, message)
}

/// The unit's text for this binary and `profile`.
fn render(bin: &Path, profile: &str) -> Result<String, ApiError> {
    let bin = bin.to_str().filter(|b| !b.contains(char::is_whitespace)).ok_or_else(|| {
        usage(format!(
            "--service: this binary's path {} has spaces or is not UTF-8, which the unit cannot name; install reflecto elsewhere (./install.sh)",
            bin.display()
        ))
    })?;
    let mut exec = format!("{bin} listen");
    if profile != DEFAULT_PROFILE {
        if !profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(usage(format!(
                "--service: profile '{profile}' cannot go on the unit's command line (letters, digits, '.', '_', '-' only)"
            )));
        }
        exec.push_str(&format!(" --profile {profile}"));
    }
    Ok(TEMPLATE.replace("@BIN@ listen", &exec))
}

/// Writes `text` to `path` whole or not at all (mode 0644), unless it is already there.
fn place(path: &Path, text: &str) -> Result<bool, ApiError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let failed = |e: std::io::Error| {
        ApiError::new(
            ErrorCode::IoError,
            format!("writing the unit {}: {e}", path.display()),
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let tmp = path.with_extension("service.tmp");
    std::fs::write(&tmp, text).map_err(failed)?;
    #[cfg(unix)]
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)?;
    Ok(true)
}

fn systemctl(args: &[&str], log: &mut Vec<String>) -> Result<(), ApiError> {
    let line = format!("systemctl --user {}", args.join(" "));
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .output()
        .map_err(|e| {
            usage(format!(
                "--service needs systemd's `systemctl` ({e}); without it, run `reflecto listen` in your session instead"
            ))
        })?;
    log.push(line.clone());
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(usage(format!(
            "`{line}` failed ({}): {why}; is a systemd user session running here? Without one, run `reflecto listen` instead",
            out.status
        )));
    }
    Ok(())
}

/// Writes the unit, reloads systemd, enables and starts it; restarts a listener that may hold
/// an older unit or device (`restart`: this run paired a new device).
pub fn install(profile: &str, restart: bool) -> Result<Installed, ApiError> {
    if !cfg!(target_os = "linux") {
        return Err(usage(
            "--service installs a systemd user unit (Linux); here, run `reflecto listen` instead"
                .to_owned(),
        ));
    }
    let unit = unit_path()
        .ok_or_else(|| usage("--service: no home directory to put the user unit in".to_owned()))?;
    let bin = std::env::current_exe().map_err(|e| {
        ApiError::new(
            ErrorCode::CliInternalError,
            format!("finding this binary for the unit: {e}"),
        )
    })?;
    let existed = unit.exists();
    let written = place(&unit, &render(&bin, profile)?)?;
    let mut calls = Vec::new();
    systemctl(&["daemon-reload"], &mut calls)?;
    systemctl(&["enable", "--now", UNIT], &mut calls)?;
    if existed && (written || restart) {
        systemctl(&["restart", UNIT], &mut calls)?;
    }
    Ok(Installed {
        unit,
        written,
        systemctl: calls,
    })
}

#[cfg(test)]
mod tests {
    use super::render;
    use std::path::Path;

    #[test]
    fn the_unit_runs_this_binary_for_its_profile() {
        let text = render(Path::new("/opt/bin/reflecto"), "default").unwrap();
        assert!(
            text.contains("\nExecStart=/opt/bin/reflecto listen\n"),
            "{text}"
        );
        assert!(!text.contains("@BIN@"));
        let text = render(Path::new("/opt/bin/reflecto"), "work").unwrap();
        assert!(text.contains("\nExecStart=/opt/bin/reflecto listen --profile work\n"));
        assert!(render(Path::new("/opt/my bin/reflecto"), "default").is_err());
        assert!(render(Path::new("/opt/bin/reflecto"), "a b").is_err());
    }
}
