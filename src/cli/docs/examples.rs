//! The EXAMPLES section of each man page: commands a reader can copy, each with what it does.

use super::section;

fn examples(items: &[(&str, &str)]) -> String {
    let items: Vec<(String, String)> = items
        .iter()
        .map(|(cmd, text)| ((*cmd).to_owned(), (*text).to_owned()))
        .collect();
    section("EXAMPLES", &items)
}

pub fn top() -> String {
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

pub fn serve() -> String {
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

pub fn admin() -> String {
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
        (
            "reflecto admin token create --admin --label laptop",
            "An admin token (rfa_live_…, printed once) for the operator API and `admin --server`.",
        ),
        (
            "REFLECTO_ADMIN_TOKEN=rfa_live_… reflecto admin --server https://relay.example device list",
            "The same commands from another machine, through the relay's /v1/admin API.",
        ),
        (
            "reflecto admin audit --limit 20",
            "Who added, removed, created, revoked or paired what, newest first.",
        ),
    ])
}

pub fn pair() -> String {
    examples(&[(
        "reflecto pair 123456 --server https://relay.example --label laptop",
        "Make this computer a desktop device; its key and credential go to the OS keyring.",
    )])
}

pub fn listen() -> String {
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

pub fn setup() -> String {
    examples(&[
        (
            "reflecto setup --service",
            "On the relay's machine: a user (your login name), a sender token in the default profile, this computer as a sealed desktop device, a test notification, the reflecto-listen user unit started, and a link for the phone. Run again, it reuses them.",
        ),
        (
            "reflecto setup --data-dir /var/lib/reflecto --user alice",
            "The relay's store in another data dir; the relay's address comes from its reflecto.lock.",
        ),
        (
            "reflecto setup --database \"$REFLECTO_DATABASE_URL\" --server https://relay.example",
            "A relay on PostgreSQL records no address: name it.",
        ),
    ])
}

pub fn status() -> String {
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

pub fn send() -> String {
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
            "make 2>&1 | reflecto send -t 'build log'",
            "The end of a command's output: over 1500 bytes, only the last 1500 are kept (from a line start).",
        ),
        (
            "tail -f app.log | jq -Rc --unbuffered '{message: .}' | reflecto send --batch -",
            "One notification per log line, each sent as it arrives.",
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

pub fn run() -> String {
    examples(&[
        (
            "reflecto run -- make test",
            "Run the tests, then get '✔ make test succeeded in 4m 2s' or '✘ make test failed (exit 2) after 1m 10s' with the last 10 lines of output; exits as make did.",
        ),
        (
            "reflecto run --on-failure --lines 20 -- /usr/local/bin/backup.sh",
            "In a crontab: a notification (priority high) only when the backup fails, with 20 lines of its output.",
        ),
        (
            "reflecto run -p low --tag build -- cargo build --release && ./deploy",
            "The send flags go before --; the exit status still decides whether ./deploy runs.",
        ),
    ])
}

pub fn ping() -> String {
    examples(&[
        (
            "0 3 * * * /usr/local/bin/backup.sh && reflecto ping backup --every 1d --grace 1h --retry-max-wait 30",
            "In a crontab: the nightly backup checks in after it succeeds; if no check-in comes for 25 hours, your devices get 'backup is late' (once), and 'backup is back' when it checks in again.",
        ),
        (
            "/usr/local/bin/backup.sh || reflecto ping backup --fail \"exit $?\"",
            "Report the failure at once: 'backup failed' with the text as its message.",
        ),
        (
            "reflecto heartbeats",
            "Every heartbeat of your token's owner, its state, and when it is next due.",
        ),
    ])
}
