//! Real parts a test drives (tools on PATH, python modules, PostgreSQL): present, or the test
//! is skipped outside CI and fails under it.

use std::process::Command;

/// Whether `program ARGS…` runs and succeeds: a tool, or python3 importing the modules a test
/// needs.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A real part a test drives is there, or the test cannot run: under `CI` its absence fails the
/// test (.ci/run installs every part), elsewhere the test is skipped saying what to install.
pub fn required(found: bool, what: &str, install: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is required under CI ({install})"
        );
        eprintln!("skipped: {what} not found ({install})");
    }
    found
}

/// python3 imports `modules` (a Python `import` list), which pip installs as `packages` (see
/// [`required`]).
pub fn python_with(modules: &str, packages: &str) -> bool {
    required(
        runs("python3", &["-c", &format!("import {modules}")]),
        &format!("python3 with {packages}"),
        &format!("pip install {packages}"),
    )
}

/// Every command-line tool in `needed` is on PATH (see [`required`]).
pub fn tools(needed: &[&str], install: &str) -> bool {
    let missing: Vec<_> = needed
        .iter()
        .filter(|tool| !runs("sh", &["-c", &format!("command -v {tool}")]))
        .collect();
    required(
        missing.is_empty(),
        &format!("{missing:?}"),
        &format!("apt-get install {install}"),
    )
}
