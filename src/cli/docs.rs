//! Generated documentation: shell completions and man pages, both from the clap definitions,
//! so they cannot describe flags that do not exist.

use super::{Cli, internal};
use crate::api::ApiError;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write reflecto.1 and one reflecto-<command>.1 per subcommand into this directory
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<(), ApiError> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "reflecto", &mut std::io::stdout());
    Ok(())
}

pub fn man(args: ManArgs) -> Result<(), ApiError> {
    match args.out_dir {
        Some(dir) => write_man_pages(&dir)
            .map_err(|e| internal(&format!("writing man pages to {}", dir.display()), e)),
        None => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(|e| internal("writing the man page", e)),
    }
}

/// Writes the whole man page tree (what `man/` in the repository holds).
pub fn write_man_pages(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)
}

/// Writes every shell's completion script into `dir` (what `completions/` holds).
pub fn write_completions(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::PowerShell,
        Shell::Elvish,
    ] {
        clap_complete::generate_to(shell, &mut Cli::command(), "reflecto", dir)?;
    }
    Ok(())
}
