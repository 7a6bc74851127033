//! Generated documentation: shell completions and man pages, both from the clap definitions,
//! so they cannot describe flags that do not exist.

mod examples;
mod exit;

use super::{Cli, internal};
use crate::api::{ApiError, ErrorCode};
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
        None => {
            let mut cmd = Cli::command().disable_help_subcommand(true);
            cmd.build();
            std::io::Write::write_all(&mut std::io::stdout(), &render_page(cmd).1)
                .map_err(|e| internal("writing the man page", e))
        }
    }
}

/// Writes the whole man page tree (what `man/` in the repository holds): clap_mangen's pages,
/// plus the sections clap cannot know (exit status, environment, files, examples).
pub fn write_man_pages(dir: &Path) -> std::io::Result<()> {
    fn generate(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            generate(sub, dir)?;
        }
        let (name, page) = render_page(cmd);
        std::fs::write(dir.join(name), page)
    }
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    generate(cmd, dir)
}

/// One page: its file name and its roff text.
fn render_page(cmd: clap::Command) -> (String, Vec<u8>) {
    let own = cmd.clone();
    let man = clap_mangen::Man::new(cmd);
    let name = man.get_filename();
    let mut page = Vec::new();
    man.render(&mut page).expect("rendering into memory");
    let exit = || exit_status(&name);
    // The variables read outside clap that each command uses (SPEC §2.5: only its own).
    const CLIENT: &[&str] = &["REFLECTO_TOKEN", "REFLECTO_CONFIG_DIR"];
    let env = |extras: &[&str]| environment(&own, extras);
    let extra = match name.as_str() {
        "reflecto.1" => [exit(), env(&ALL_EXTRAS), files(), examples::top()].concat(),
        "reflecto-send.1" => [exit(), env(CLIENT), files(), examples::send()].concat(),
        "reflecto-login.1" => [exit(), env(&["REFLECTO_CONFIG_DIR"]), files()].concat(),
        "reflecto-auth-status.1" => [env(CLIENT), files()].concat(),
        "reflecto-admin.1" => [
            exit(),
            env(&["REFLECTO_ADMIN_TOKEN", "REFLECTO_CONFIG_DIR"]),
            files(),
            examples::admin(),
        ]
        .concat(),
        "reflecto-serve.1" => [exit(), env(&["REFLECTO_LOG"]), files(), examples::serve()].concat(),
        "reflecto-pair.1" => [
            exit(),
            env(&["REFLECTO_CONFIG_DIR"]),
            files(),
            examples::pair(),
        ]
        .concat(),
        "reflecto-listen.1" => [
            exit(),
            env(&["REFLECTO_CONFIG_DIR"]),
            files(),
            examples::listen(),
        ]
        .concat(),
        "reflecto-status.1" => [exit(), env(CLIENT), examples::status()].concat(),
        "reflecto-run.1" => [exit(), env(CLIENT), files(), examples::run()].concat(),
        "reflecto-ping.1" => [exit(), env(CLIENT), files(), examples::ping()].concat(),
        "reflecto-heartbeats.1" => [exit(), env(CLIENT), files()].concat(),
        "reflecto-setup.1" => [
            exit(),
            env(&["REFLECTO_CONFIG_DIR"]),
            files(),
            examples::setup(),
        ]
        .concat(),
        _ => String::new(),
    };
    page.extend_from_slice(extra.as_bytes());
    (name, page)
}

/// Roff-escapes text for a paragraph line: backslashes, hyphens, and a leading dot or quote.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// A section of tagged paragraphs: `.TP` term, then its description.
fn section(title: &str, items: &[(String, String)]) -> String {
    let mut out = format!(".SH \"{title}\"\n");
    for (term, text) in items {
        out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(term), roff(text)));
    }
    out
}

fn exit_status(page: &str) -> String {
    let items: Vec<(String, String)> = exit::exit_statuses(page)
        .into_iter()
        .map(|(code, meaning)| (code.to_string(), meaning.to_owned()))
        .collect();
    let mut out = section("EXIT STATUS", &items);
    out.push_str(&format!(
        ".PP\n{}\n",
        roff("`reflecto explain N` lists the error codes behind exit status N; `reflecto explain CODE` explains one.")
    ));
    out
}

/// The `REFLECTO_*` variables read outside clap (clap's `env =` ones are collected from the
/// definitions, so a new flag's variable cannot be missing from the page).
pub const EXTRA_ENVIRONMENT: [(&str, &str); 4] = [
    (
        "REFLECTO_TOKEN",
        "The sender token (rfk_live_…) for send, status and --check; overrides every profile's stored token. Keeps the token out of shell history and CI logs.",
    ),
    (
        "REFLECTO_CONFIG_DIR",
        "The client's config directory (profiles and the credentials file) instead of the platform's.",
    ),
    (
        "REFLECTO_ADMIN_TOKEN",
        "The admin token (rfa_live_…) for `reflecto admin --server URL`; overrides the one `reflecto login --admin` stored.",
    ),
    (
        "REFLECTO_LOG",
        "The relay's log filter (tracing EnvFilter syntax, e.g. info or reflecto=debug).",
    ),
];

const ALL_EXTRAS: [&str; 4] = [
    "REFLECTO_TOKEN",
    "REFLECTO_CONFIG_DIR",
    "REFLECTO_ADMIN_TOKEN",
    "REFLECTO_LOG",
];

/// Every `REFLECTO_*` variable: the extras above, then each flag's, with its help text.
pub fn environment_variables() -> Vec<(String, String)> {
    variables_of(&Cli::command(), &ALL_EXTRAS)
}

/// The variables of `cmd` (its flags' and its subcommands'), plus the named `extras`.
fn variables_of(cmd: &clap::Command, extras: &[&str]) -> Vec<(String, String)> {
    fn walk(cmd: &clap::Command, out: &mut std::collections::BTreeMap<String, String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                let name = env.to_string_lossy().into_owned();
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                let text = format!("--{}: {help}", arg.get_long().unwrap_or_default());
                out.entry(name).or_insert(text);
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut map = std::collections::BTreeMap::new();
    for (name, text) in EXTRA_ENVIRONMENT {
        if extras.contains(&name) {
            map.insert(name.to_owned(), text.to_owned());
        }
    }
    walk(cmd, &mut map);
    map.into_iter().collect()
}

fn environment(cmd: &clap::Command, extras: &[&str]) -> String {
    section("ENVIRONMENT", &variables_of(cmd, extras))
}

fn files() -> String {
    section(
        "FILES",
        &[
            ("$XDG_CONFIG_HOME/reflecto/config.toml".to_owned(), "Profiles and the server each remembers (~/.config/reflecto on Linux, ~/Library/Application Support/dev.reflecto.reflecto on macOS, %APPDATA%\\reflecto\\reflecto\\config on Windows; REFLECTO_CONFIG_DIR overrides).".to_owned()),
            ("$XDG_CONFIG_HOME/reflecto/credentials.toml".to_owned(), "Tokens, only when no OS keyring is reachable. Must be mode 0600: reflecto refuses a file other users can read.".to_owned()),
            ("$XDG_DATA_HOME/reflecto/".to_owned(), "The relay's data directory (0700): reflecto.db, its SQLite store, and reflecto.lock with the running relay's pid (~/.local/share/reflecto on Linux; REFLECTO_DATA_DIR or --data-dir overrides).".to_owned()),
            ("$XDG_DATA_HOME/reflecto/listen-PROFILE.seen".to_owned(), "The message ids `reflecto listen` showed recently, so none is shown twice across restarts.".to_owned()),
            ("$XDG_DATA_HOME/reflecto/listen-PROFILE.shown".to_owned(), "The notification daemon's ids of what `reflecto listen` left on the desktop, so a later run closes a cleared message and replaces a key's note.".to_owned()),
            ("reflecto config path".to_owned(), "Prints the three paths as this machine resolves them.".to_owned()),
        ],
    )
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

/// A value parser that accepts any string (the shared engine judges it, so a bad value gets
/// the relay's error code) yet tells help and completions the values it knows.
#[derive(Clone, Copy)]
pub struct Hinted(pub fn() -> Vec<&'static str>);

impl clap::builder::TypedValueParser for Hinted {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            (self.0)()
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
}

pub fn priority_names() -> Vec<&'static str> {
    crate::api::Priority::ALL
        .into_iter()
        .map(crate::api::Priority::as_str)
        .collect()
}

/// What `explain` knows: every error code, every exit status, and `all`.
pub fn explain_topics() -> Vec<&'static str> {
    let mut topics: Vec<&'static str> = ErrorCode::ALL.into_iter().map(ErrorCode::as_str).collect();
    topics.extend(["0", "1", "2", "3", "4", "5", "6", "7", "130", "all"]);
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_topics_cover_every_code_and_exit_status() {
        let topics = explain_topics();
        for code in ErrorCode::ALL {
            assert!(topics.contains(&code.as_str()), "{code}");
        }
        for (status, _) in crate::api::EXIT_CODES {
            assert!(topics.contains(&status.to_string().as_str()), "{status}");
        }
    }

    #[test]
    fn environment_lists_every_flag_variable_once() {
        let vars = environment_variables();
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        for expected in [
            "REFLECTO_TOKEN",
            "REFLECTO_SERVER",
            "REFLECTO_LIMIT_IP_MINUTE",
        ] {
            assert!(names.contains(&expected), "{expected}");
        }
        let mut sorted = names.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }

    #[test]
    fn each_page_says_only_the_statuses_its_command_ends_with() {
        let serve: Vec<u8> = exit::exit_statuses("reflecto-serve.1")
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(serve, [0, 1, 2]);
        let overview = exit::exit_statuses("reflecto.1");
        assert_eq!(overview.len(), crate::api::EXIT_CODES.len());
    }

    #[test]
    fn roff_escapes_leading_dots_and_hyphens() {
        assert_eq!(roff(".hidden"), "\\&.hidden");
        assert_eq!(roff("--json"), "\\-\\-json");
    }
}
