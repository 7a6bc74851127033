//! Generated documentation: shell completions and man pages, both from the clap definitions,
//! so they cannot describe flags that do not exist.

use super::{Cli, internal};
use crate::api::{ApiError, EXIT_CODES, ErrorCode};
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
    let man = clap_mangen::Man::new(cmd);
    let name = man.get_filename();
    let mut page = Vec::new();
    man.render(&mut page).expect("rendering into memory");
    let extra = match name.as_str() {
        "reflecto.1" => [exit_status(), environment(), files(), examples_top()].concat(),
        "reflecto-send.1" => [exit_status(), environment(), files(), examples_send()].concat(),
        "reflecto-login.1" | "reflecto-auth-status.1" => [environment(), files()].concat(),
        "reflecto-admin.1" => [exit_status(), environment(), files(), examples_admin()].concat(),
        "reflecto-serve.1" => [exit_status(), environment(), files(), examples_serve()].concat(),
        "reflecto-pair.1" => [exit_status(), environment(), files(), examples_pair()].concat(),
        "reflecto-listen.1" => [exit_status(), environment(), files(), examples_listen()].concat(),
        "reflecto-status.1" => [exit_status(), environment(), examples_status()].concat(),
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

fn exit_status() -> String {
    let items: Vec<(String, String)> = EXIT_CODES
        .iter()
        .map(|(code, meaning)| (code.to_string(), (*meaning).to_owned()))
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
pub const EXTRA_ENVIRONMENT: [(&str, &str); 3] = [
    (
        "REFLECTO_TOKEN",
        "The sender token (rfk_live_…) for send, status and --check; overrides every profile's stored token. Keeps the token out of shell history and CI logs.",
    ),
    (
        "REFLECTO_CONFIG_DIR",
        "The client's config directory (profiles and the credentials file) instead of the platform's.",
    ),
    (
        "REFLECTO_LOG",
        "The relay's log filter (tracing EnvFilter syntax, e.g. info or reflecto=debug).",
    ),
];

/// Every `REFLECTO_*` variable: the extras above, then each flag's, with its help text.
pub fn environment_variables() -> Vec<(String, String)> {
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
        map.insert(name.to_owned(), text.to_owned());
    }
    walk(&Cli::command(), &mut map);
    map.into_iter().collect()
}

fn environment() -> String {
    section("ENVIRONMENT", &environment_variables())
}

fn files() -> String {
    section(
        "FILES",
        &[
            ("$XDG_CONFIG_HOME/reflecto/config.toml".to_owned(), "Profiles and the server each remembers (~/.config/reflecto on Linux, ~/Library/Application Support/dev.reflecto.reflecto on macOS, %APPDATA%\\reflecto\\reflecto\\config on Windows; REFLECTO_CONFIG_DIR overrides).".to_owned()),
            ("$XDG_CONFIG_HOME/reflecto/credentials.toml".to_owned(), "Tokens, only when no OS keyring is reachable. Must be mode 0600: reflecto refuses a file other users can read.".to_owned()),
            ("$XDG_DATA_HOME/reflecto/".to_owned(), "The relay's data directory (0700): reflecto.db, its SQLite store, and reflecto.lock with the running relay's pid (~/.local/share/reflecto on Linux; REFLECTO_DATA_DIR or --data-dir overrides).".to_owned()),
            ("$XDG_DATA_HOME/reflecto/listen-PROFILE.seen".to_owned(), "The message ids `reflecto listen` showed recently, so none is shown twice across restarts.".to_owned()),
            ("reflecto config path".to_owned(), "Prints the three paths as this machine resolves them.".to_owned()),
        ],
    )
}

fn examples(items: &[(&str, &str)]) -> String {
    let items: Vec<(String, String)> = items
        .iter()
        .map(|(cmd, text)| ((*cmd).to_owned(), (*text).to_owned()))
        .collect();
    section("EXAMPLES", &items)
}

fn examples_top() -> String {
    examples(&[
        (
            "reflecto login --server https://relay.example",
            "Store a token (pasted at the hidden prompt) after the relay confirms it.",
        ),
        (
            "reflecto send 'Backup done' -p high --tag ops",
            "Send a notification to every paired device.",
        ),
        (
            "make test; reflecto send \"tests exited $?\"",
            "Notify when a long command ends.",
        ),
        (
            "reflecto explain rate_limit_exceeded",
            "What an error code means and what to do.",
        ),
        (
            "reflecto serve --data-dir /var/lib/reflecto",
            "Run a relay on this machine.",
        ),
    ])
}

fn examples_serve() -> String {
    examples(&[
        (
            "reflecto serve --listen 0.0.0.0:8080 --retention 30d",
            "Serve on every interface (behind a TLS proxy) and keep finished messages 30 days.",
        ),
        (
            "reflecto serve --config /etc/reflecto/relay.toml --print-config",
            "Show the configuration flags, REFLECTO_* variables and the file resolve to.",
        ),
        (
            "REFLECTO_LOG=debug reflecto serve --log-format json",
            "Debug logs as JSON lines (message text never appears in them).",
        ),
    ])
}

fn examples_admin() -> String {
    examples(&[
        (
            "reflecto admin user add alice && reflecto admin token create --user alice --label ci",
            "A receiver and a sender token for her (printed once).",
        ),
        (
            "reflecto admin pair --user alice",
            "A 6-digit code, valid 10 minutes, for `reflecto pair` on a desktop.",
        ),
        (
            "reflecto admin backup /var/backups/reflecto.db",
            "A consistent copy of the store while the relay runs.",
        ),
    ])
}

fn examples_pair() -> String {
    examples(&[(
        "reflecto pair 123456 --server https://relay.example --label laptop",
        "Make this computer a desktop device; its key and credential go to the OS keyring.",
    )])
}

fn examples_listen() -> String {
    examples(&[
        (
            "reflecto listen",
            "Show notifications on the desktop as they arrive.",
        ),
        (
            "reflecto listen --no-notify --exec 'cat >> ~/notifications.jsonl'",
            "Log every notification as a JSON line instead.",
        ),
        (
            "systemctl --user enable --now reflecto-listen.service",
            "Keep it running with the user unit install.sh installed.",
        ),
    ])
}

fn examples_status() -> String {
    examples(&[
        (
            "reflecto status msg_3f6e… --wait 30",
            "Follow each device's delivery until all end; exit 7 unless all were delivered.",
        ),
        (
            "reflecto send 'Deploy done' --wait 60",
            "Send, then wait the same way.",
        ),
    ])
}

fn examples_send() -> String {
    examples(&[
        (
            "reflecto send 'Deploy finished' -t CI --url https://ci.example/42",
            "A titled notification that opens a link.",
        ),
        (
            "echo done | REFLECTO_TOKEN=rfk_live_… reflecto send --server https://relay.example",
            "The message from stdin, the token from the environment (CI).",
        ),
        (
            "reflecto send --batch events.jsonl",
            "One request per JSON line, e.g. {\"message\":\"disk 91% full\",\"priority\":\"high\",\"tags\":[\"ops\"]}; a 429 is waited out.",
        ),
        (
            "reflecto send --batch events.jsonl --skip 20",
            "Resume a batch interrupted at line 21.",
        ),
        (
            "reflecto send x --json | jq .id",
            "JSON on stdout, also on failure ({\"error\":{\"code\",\"message\"}}).",
        ),
    ])
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
        for (status, _) in EXIT_CODES {
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
    fn roff_escapes_leading_dots_and_hyphens() {
        assert_eq!(roff(".hidden"), "\\&.hidden");
        assert_eq!(roff("--json"), "\\-\\-json");
    }
}
