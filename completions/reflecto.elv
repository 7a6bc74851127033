
use builtin;
use str;

set edit:completion:arg-completer[reflecto] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'reflecto'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'reflecto'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand send 'Send a notification to your devices'
            cand login 'Store a token for a profile (from stdin or a hidden prompt) in the OS keyring'
            cand logout 'Forget a profile and its stored token'
            cand auth 'Inspect stored credentials'
            cand serve 'Run the relay: the HTTP API, the durable queue and delivery, on one machine'
            cand pair 'Make this computer a desktop device of a relay user, with a one-time pairing code'
            cand listen 'Show this computer''s notifications as they arrive (desktop, stdout, --exec)'
            cand setup 'Make this computer a sender and receiver of the relay on this machine, in one command'
            cand run 'Run a command, then send a notification saying how it ended; exit as it did'
            cand status 'Show a message''s delivery state per device (or follow it with --wait)'
            cand clear 'Remove a notification from every screen (a message, or the newest of a key)'
            cand ask 'Ask a question with answer buttons; print the answer a person chose'
            cand ping 'Check a heartbeat in (a cron job''s "still running"), or report its failure with --fail'
            cand heartbeats 'The heartbeats of your token''s owner and their states'
            cand respond 'Acknowledge a message as this computer''s paired device, with one of its responses'
            cand admin 'Operator commands on the relay''s store (users, tokens, devices, pairing)'
            cand explain 'Explain what an error code means and what to do about it'
            cand completions 'Print a shell completion script to stdout'
            cand man 'Write the man pages (to stdout, or one file per command into --out-dir)'
            cand config 'Where reflecto keeps its config, credentials and relay data'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;send'= {
            cand -t 'A title above the message (1–100 bytes)'
            cand --title 'A title above the message (1–100 bytes)'
            cand -p 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])'
            cand --priority 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])'
            cand --tag 'A tag (repeatable; up to 5 are kept)'
            cand --url 'A link the notification opens (http or https, up to 512 bytes)'
            cand --url-title 'The link''s text instead of the URL (up to 32 bytes)'
            cand --action 'A button: ''LABEL=URL'' (repeatable; up to 3 are kept)'
            cand --action-response 'A button that answers: ''LABEL[=RESPONSE]'' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE'
            cand -d 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated'
            cand --device 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated'
            cand --ttl 'Seconds the notification stays deliverable (0–259200)'
            cand --key 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones'
            cand --retry 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes'
            cand --expire 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send'
            cand --callback 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)'
            cand --server 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]'
            cand --profile 'Credential profile'
            cand --retry-max-wait 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]'
            cand --batch 'Send JSON lines from FILE (or - for stdin), one request each, in order'
            cand --skip 'With --batch: skip lines 1..=N (resume after an interruption at line N+1)'
            cand --wait 'After the send, wait up to SECONDS for every delivery to end; exit 7 unless all were delivered'
            cand --until 'With --wait: follow until every delivery ended (delivered), or until a person acknowledged the message on a device (acknowledged; exit 7 if nobody did in time)'
            cand --markdown 'Render the message as Markdown'
            cand --json 'Print the relay''s JSON response verbatim'
            cand -q 'Print nothing on success (errors still go to stderr)'
            cand --quiet 'Print nothing on success (errors still go to stderr)'
            cand --token-stdin 'Read the token from the first line of stdin instead of REFLECTO_TOKEN or the profile''s stored token'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;login'= {
            cand --server 'Relay URL this profile sends to (the token is only ever sent there) [default: the profile''s server; required for a new profile]'
            cand --profile 'Credential profile to store the token in'
            cand --insecure-storage 'Store the token in a 0600 file even if a keyring is available'
            cand --secure-storage-only 'Refuse to store the token anywhere but the OS keyring'
            cand --no-verify 'Store the token without asking the relay whether it knows it (offline set-up)'
            cand --admin 'Store an admin token (rfa_live_…) for `reflecto admin --server`, beside the profile''s sender token (checked with GET /v1/admin/status)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;logout'= {
            cand --profile 'Credential profile whose token is forgotten'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;auth'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand status 'Where each profile''s token lives (masked), and where the config and credentials files are'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;auth;status'= {
            cand --json 'One JSON object on stdout: the file paths, each profile, and the checks'
            cand --check 'Ask each profile''s relay about its token (GET /v1/token): owner, scope, quota left'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;auth;help'= {
            cand status 'Where each profile''s token lives (masked), and where the config and credentials files are'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;auth;help;status'= {
        }
        &'reflecto;auth;help;help'= {
        }
        &'reflecto;serve'= {
            cand --config 'TOML configuration file (flags and REFLECTO_* variables override it)'
            cand --listen 'Address to listen on [default: 127.0.0.1:8080]'
            cand --data-dir 'Where the SQLite store lives [default: the platform data dir, e.g. ~/.local/share/reflecto]'
            cand --database 'Share a PostgreSQL database with other relays (postgres://user:password@host/db) instead of SQLite in the data dir'
            cand --lease-secs 'Seconds a delivery attempt holds its job before another relay may take it over [default: 30]'
            cand --fcm-credentials 'Firebase service-account JSON; without it android deliveries wait'
            cand --fcm-endpoint 'FCM base URL [default: https://fcm.googleapis.com]'
            cand --trust-proxy 'Take the client IP from X-Forwarded-For (only behind a proxy you run)'
            cand --webpush-allow-local 'Accept Web Push endpoints that are plain http or resolve to loopback, private or link-local addresses (a UnifiedPush distributor on the LAN, tests); off, pairing refuses them so the relay cannot be made to post into its own network'
            cand --callback-allow-local 'Accept `callback` URLs (SPEC §1.17) that are plain http or resolve to loopback, private or link-local addresses (tests, a receiver on the LAN); off, only public https'
            cand --vapid-subject 'Contact sent to Web Push services in the VAPID token (mailto: or https:). Set it to an address you read: push services use it to reach the operator [default: mailto:admin@<hostname>]'
            cand --public-url 'The address people reach the relay at (https://relay.example), used in pairing links and their QR codes [default: each request''s own origin]'
            cand --log-format 'Log format (which lines: REFLECTO_LOG or RUST_LOG, see below)'
            cand --retention 'How long a finished message is kept, e.g. 90s, 12h, 7d (0 keeps forever) [default: 7d]'
            cand --limits 'Rate-limit preset: self-hosted (the default) or hosted (the hosted free tier: 60, 500, 1000, 20, 200); a layer set by its own flag, variable or in the file overrides it'
            cand --limit-token-burst 'Sends per token per rolling minute (0 disables) [default: 60]'
            cand --limit-token-monthly 'Sends per token per calendar month, UTC (0 disables) [default: 0; hosted: 500]'
            cand --limit-receiver-daily 'Sends per receiving user per rolling 24 h (0 disables) [default: 10000; hosted: 1000]'
            cand --limit-ip-minute 'API requests per client IP per rolling minute (0 disables) [default: 300; hosted: 20]'
            cand --limit-ip-hour 'API requests per client IP per rolling hour (0 disables) [default: 3000; hosted: 200]'
            cand --header-timeout 'Seconds a client may take to send a request''s headers, from its first byte [default: 10]'
            cand --body-timeout 'Seconds a client may take to send a request body after its headers [default: 30]'
            cand --idle-timeout 'Seconds a connection may sit idle between requests; desktop streams are never idle [default: 60]'
            cand --max-connections 'Connections served at once; more wait until one closes [default: 4096]'
            cand --max-header-bytes 'Largest request line plus headers, in bytes; larger requests get 431 [default: 16384]'
            cand --print-config 'Print the resolved configuration as TOML and exit'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;pair'= {
            cand --server 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]; saved in the profile'
            cand --profile 'Credential profile the pairing is stored under'
            cand --label 'How the device is listed [default: this computer''s host name]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;listen'= {
            cand --profile 'Credential profile this computer was paired under (`reflecto pair`)'
            cand --exec 'Run CMD through `sh -c` for each notification, with REFLECTO_ID, REFLECTO_TITLE, REFLECTO_MESSAGE, REFLECTO_PRIORITY, REFLECTO_TAGS, REFLECTO_URL and REFLECTO_SOURCE set and the JSON object on stdin'
            cand --json 'Print one JSON object per notification: {"event_id","id","envelope"}'
            cand --no-notify 'Do not show desktop notifications (print and --exec only)'
            cand --poll 'Handle what is pending, ack it, and exit'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;setup'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'The relay''s URL [default: the address the relay running on the data dir recorded]'
            cand --user 'The user this computer sends as and receives for; created unless it exists [default: your login name]'
            cand --profile 'Credential profile that keeps the token and this computer''s device'
            cand --service 'Install, enable and start the reflecto-listen systemd user unit'
            cand --json 'Print a JSON summary on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;run'= {
            cand -p 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])'
            cand --priority 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])'
            cand --tag 'A tag (repeatable; up to 5 are kept)'
            cand --url 'A link the notification opens (http or https, up to 512 bytes)'
            cand --url-title 'The link''s text instead of the URL (up to 32 bytes)'
            cand --action 'A button: ''LABEL=URL'' (repeatable; up to 3 are kept)'
            cand --action-response 'A button that answers: ''LABEL[=RESPONSE]'' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE'
            cand -d 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated'
            cand --device 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated'
            cand --ttl 'Seconds the notification stays deliverable (0–259200)'
            cand --key 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones'
            cand --retry 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes'
            cand --expire 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send'
            cand --callback 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)'
            cand --server 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]'
            cand --profile 'Credential profile'
            cand --retry-max-wait 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]'
            cand --lines 'How many of the last lines of COMMAND''s stdout, and of its stderr, the message keeps'
            cand --markdown 'Render the message as Markdown'
            cand --on-failure 'Send only when COMMAND fails (a non-zero status or a signal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;status'= {
            cand --server 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]'
            cand --profile 'Credential profile'
            cand --wait 'Follow the status until every delivery has ended, at most SECONDS (one request per change, or per minute); exit 7 unless all were delivered'
            cand --until 'With --wait: follow until every delivery ended (delivered), or until a person acknowledged the message on a device (acknowledged; exit 7 if nobody did in time)'
            cand --json 'Print the relay''s JSON (with --wait: one object per change)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;clear'= {
            cand --key 'Clear the newest message sent with this key (`send --key`) instead'
            cand --server 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]'
            cand --profile 'Credential profile'
            cand --retry-max-wait 'Longest total wait for retries on 429, 5xx and connection errors'
            cand --json 'Print the relay''s answer as JSON: {"id","cancelled","cleared"}'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;ask'= {
            cand --option 'An answer button: ''LABEL[=RESPONSE]'' (1–3; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL)'
            cand --wait 'How long to wait for an answer before giving up (exit 7) and clearing the question'
            cand -t 'A title above the question (1–100 bytes)'
            cand --title 'A title above the question (1–100 bytes)'
            cand -p 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])'
            cand --priority 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])'
            cand --tag 'A tag (repeatable; up to 5 are kept)'
            cand --url 'A link the notification opens (http or https, up to 512 bytes)'
            cand --url-title 'The link''s text instead of the URL (up to 32 bytes)'
            cand --action 'A button: ''LABEL=URL'' (repeatable; up to 3 are kept)'
            cand --action-response 'A button that answers: ''LABEL[=RESPONSE]'' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE'
            cand -d 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated'
            cand --device 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated'
            cand --ttl 'Seconds the notification stays deliverable (0–259200)'
            cand --key 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones'
            cand --retry 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes'
            cand --expire 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send'
            cand --callback 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)'
            cand --server 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]'
            cand --profile 'Credential profile'
            cand --retry-max-wait 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]'
            cand --markdown 'Render the message as Markdown'
            cand --json 'Print {"id","response","device_id","acknowledged_at"} instead of the response alone'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;ping'= {
            cand --every 'How often it checks in, e.g. 1d, 12h, 90m (1 minute–31 days; required on the first ping, then kept)'
            cand --grace 'How long past due the alarm waits, e.g. 1h (0–1 day; default a tenth of --every, at most 1 h)'
            cand --fail 'Report a failure instead: "<NAME> failed" is sent at once, with TEXT as its message'
            cand --server 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]'
            cand --profile 'Credential profile'
            cand --retry-max-wait 'Longest total wait, retries on 429, 5xx and connection errors included (at least 1 s)'
            cand --json 'Print the relay''s answer as JSON: {"name","every","grace","state","last_ping_at","next_due_at"}'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;heartbeats'= {
            cand --server 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]'
            cand --profile 'Credential profile'
            cand --retry-max-wait 'Longest total wait, retries on 429, 5xx and connection errors included (at least 1 s)'
            cand --json 'Print the relay''s answer as JSON: {"heartbeats":[…]}'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;respond'= {
            cand --profile 'Credential profile this computer was paired under (`reflecto pair`)'
            cand --retry-max-wait 'Longest total wait for retries on 429, 5xx and connection errors'
            cand --json 'Print the relay''s answer as JSON: {"id","acknowledged_at","device_id","response"}'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand user 'Manage users (the receivers of notifications)'
            cand token 'Manage sender tokens'
            cand device 'Manage devices'
            cand audit 'Print the audit log, newest first: who added, removed, created, revoked or paired what'
            cand pair 'Print a 6-digit pairing code for a user, valid 10 minutes'
            cand backup 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay''s data dir (PostgreSQL: use pg_dump)'
            cand copy 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;admin;user'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand add 'Add a user'
            cand list 'List users'
            cand remove 'Remove a user with their tokens, devices and messages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;admin;user;add'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;user;list'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --json 'As JSON on stdout (times in RFC 3339)'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;user;remove'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;user;help'= {
            cand add 'Add a user'
            cand list 'List users'
            cand remove 'Remove a user with their tokens, devices and messages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;admin;user;help;add'= {
        }
        &'reflecto;admin;user;help;list'= {
        }
        &'reflecto;admin;user;help;remove'= {
        }
        &'reflecto;admin;user;help;help'= {
        }
        &'reflecto;admin;token'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'Create a token; prints it on stdout, this once'
            cand list 'List tokens (never their secrets)'
            cand revoke 'Revoke a token by its tok_ id; effective on the relay''s next request'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;admin;token;create'= {
            cand --user 'The user the token sends to (their devices receive)'
            cand --label 'Shown on devices as the notification''s source'
            cand --priority-cap 'Highest priority the token may send'
            cand --scope-devices 'Comma list of device ids/labels (or all/mobile/desktop) the token may reach'
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --admin 'Make an admin token (rfa_live_…) for the operator API instead: no user, cannot send'
            cand --test 'Make an rfk_test_ token'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;token;list'= {
            cand --user 'Only this user''s'
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --json 'As JSON on stdout (times in RFC 3339)'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;token;revoke'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;token;help'= {
            cand create 'Create a token; prints it on stdout, this once'
            cand list 'List tokens (never their secrets)'
            cand revoke 'Revoke a token by its tok_ id; effective on the relay''s next request'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;admin;token;help;create'= {
        }
        &'reflecto;admin;token;help;list'= {
        }
        &'reflecto;admin;token;help;revoke'= {
        }
        &'reflecto;admin;token;help;help'= {
        }
        &'reflecto;admin;device'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand add 'Add a device directly (without pairing); prints its dev_ id and its device credential'
            cand list 'List devices'
            cand remove 'Remove a device; its undelivered jobs fail with device_removed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;admin;device;add'= {
            cand --user 'The user who owns the device'
            cand --label 'The device''s name, for --device selectors and status lines'
            cand --type 'type'
            cand --fcm-token 'FCM registration token (android only)'
            cand --public-key 'X25519 public key (base64url): the device''s notifications are sealed to it (SPEC §1.12)'
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;device;list'= {
            cand --user 'Only this user''s'
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --json 'As JSON on stdout (times in RFC 3339)'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;device;remove'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;device;help'= {
            cand add 'Add a device directly (without pairing); prints its dev_ id and its device credential'
            cand list 'List devices'
            cand remove 'Remove a device; its undelivered jobs fail with device_removed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;admin;device;help;add'= {
        }
        &'reflecto;admin;device;help;list'= {
        }
        &'reflecto;admin;device;help;remove'= {
        }
        &'reflecto;admin;device;help;help'= {
        }
        &'reflecto;admin;audit'= {
            cand --limit 'How many entries, newest first'
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --json 'As JSON on stdout (times in RFC 3339)'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;pair'= {
            cand --user 'The user whose device the code pairs'
            cand --public-url 'The address phones reach the relay at, for the link [default: the config file''s public_url, else the address of the relay running on the data dir]'
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --qr 'Also print the link <public url>/app/#code=… and it as a QR code, so a phone pairs by scanning'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;backup'= {
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --force 'Replace FILE if it exists (without it, an existing FILE is refused)'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;copy'= {
            cand --to 'The empty target database (postgres://user:password@host/db); from the environment it stays off the command line, where `ps` would show its password'
            cand --data-dir 'The relay''s data directory [default: the platform data dir]'
            cand --database 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir'
            cand --config 'Take the data directory from the relay''s TOML configuration'
            cand --server 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)'
            cand --profile 'With --server: the credential profile whose admin token to use'
            cand --token-stdin 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;admin;help'= {
            cand user 'Manage users (the receivers of notifications)'
            cand token 'Manage sender tokens'
            cand device 'Manage devices'
            cand audit 'Print the audit log, newest first: who added, removed, created, revoked or paired what'
            cand pair 'Print a 6-digit pairing code for a user, valid 10 minutes'
            cand backup 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay''s data dir (PostgreSQL: use pg_dump)'
            cand copy 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;admin;help;user'= {
            cand add 'Add a user'
            cand list 'List users'
            cand remove 'Remove a user with their tokens, devices and messages'
        }
        &'reflecto;admin;help;user;add'= {
        }
        &'reflecto;admin;help;user;list'= {
        }
        &'reflecto;admin;help;user;remove'= {
        }
        &'reflecto;admin;help;token'= {
            cand create 'Create a token; prints it on stdout, this once'
            cand list 'List tokens (never their secrets)'
            cand revoke 'Revoke a token by its tok_ id; effective on the relay''s next request'
        }
        &'reflecto;admin;help;token;create'= {
        }
        &'reflecto;admin;help;token;list'= {
        }
        &'reflecto;admin;help;token;revoke'= {
        }
        &'reflecto;admin;help;device'= {
            cand add 'Add a device directly (without pairing); prints its dev_ id and its device credential'
            cand list 'List devices'
            cand remove 'Remove a device; its undelivered jobs fail with device_removed'
        }
        &'reflecto;admin;help;device;add'= {
        }
        &'reflecto;admin;help;device;list'= {
        }
        &'reflecto;admin;help;device;remove'= {
        }
        &'reflecto;admin;help;audit'= {
        }
        &'reflecto;admin;help;pair'= {
        }
        &'reflecto;admin;help;backup'= {
        }
        &'reflecto;admin;help;copy'= {
        }
        &'reflecto;admin;help;help'= {
        }
        &'reflecto;explain'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;man'= {
            cand --out-dir 'Write reflecto.1 and one reflecto-<command>.1 per subcommand into this directory'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;config'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand path 'Print the config file, credentials file and relay data directory paths'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;config;path'= {
            cand --json 'The three paths as one JSON object'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'reflecto;config;help'= {
            cand path 'Print the config file, credentials file and relay data directory paths'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;config;help;path'= {
        }
        &'reflecto;config;help;help'= {
        }
        &'reflecto;help'= {
            cand send 'Send a notification to your devices'
            cand login 'Store a token for a profile (from stdin or a hidden prompt) in the OS keyring'
            cand logout 'Forget a profile and its stored token'
            cand auth 'Inspect stored credentials'
            cand serve 'Run the relay: the HTTP API, the durable queue and delivery, on one machine'
            cand pair 'Make this computer a desktop device of a relay user, with a one-time pairing code'
            cand listen 'Show this computer''s notifications as they arrive (desktop, stdout, --exec)'
            cand setup 'Make this computer a sender and receiver of the relay on this machine, in one command'
            cand run 'Run a command, then send a notification saying how it ended; exit as it did'
            cand status 'Show a message''s delivery state per device (or follow it with --wait)'
            cand clear 'Remove a notification from every screen (a message, or the newest of a key)'
            cand ask 'Ask a question with answer buttons; print the answer a person chose'
            cand ping 'Check a heartbeat in (a cron job''s "still running"), or report its failure with --fail'
            cand heartbeats 'The heartbeats of your token''s owner and their states'
            cand respond 'Acknowledge a message as this computer''s paired device, with one of its responses'
            cand admin 'Operator commands on the relay''s store (users, tokens, devices, pairing)'
            cand explain 'Explain what an error code means and what to do about it'
            cand completions 'Print a shell completion script to stdout'
            cand man 'Write the man pages (to stdout, or one file per command into --out-dir)'
            cand config 'Where reflecto keeps its config, credentials and relay data'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'reflecto;help;send'= {
        }
        &'reflecto;help;login'= {
        }
        &'reflecto;help;logout'= {
        }
        &'reflecto;help;auth'= {
            cand status 'Where each profile''s token lives (masked), and where the config and credentials files are'
        }
        &'reflecto;help;auth;status'= {
        }
        &'reflecto;help;serve'= {
        }
        &'reflecto;help;pair'= {
        }
        &'reflecto;help;listen'= {
        }
        &'reflecto;help;setup'= {
        }
        &'reflecto;help;run'= {
        }
        &'reflecto;help;status'= {
        }
        &'reflecto;help;clear'= {
        }
        &'reflecto;help;ask'= {
        }
        &'reflecto;help;ping'= {
        }
        &'reflecto;help;heartbeats'= {
        }
        &'reflecto;help;respond'= {
        }
        &'reflecto;help;admin'= {
            cand user 'Manage users (the receivers of notifications)'
            cand token 'Manage sender tokens'
            cand device 'Manage devices'
            cand audit 'Print the audit log, newest first: who added, removed, created, revoked or paired what'
            cand pair 'Print a 6-digit pairing code for a user, valid 10 minutes'
            cand backup 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay''s data dir (PostgreSQL: use pg_dump)'
            cand copy 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL'
        }
        &'reflecto;help;admin;user'= {
            cand add 'Add a user'
            cand list 'List users'
            cand remove 'Remove a user with their tokens, devices and messages'
        }
        &'reflecto;help;admin;user;add'= {
        }
        &'reflecto;help;admin;user;list'= {
        }
        &'reflecto;help;admin;user;remove'= {
        }
        &'reflecto;help;admin;token'= {
            cand create 'Create a token; prints it on stdout, this once'
            cand list 'List tokens (never their secrets)'
            cand revoke 'Revoke a token by its tok_ id; effective on the relay''s next request'
        }
        &'reflecto;help;admin;token;create'= {
        }
        &'reflecto;help;admin;token;list'= {
        }
        &'reflecto;help;admin;token;revoke'= {
        }
        &'reflecto;help;admin;device'= {
            cand add 'Add a device directly (without pairing); prints its dev_ id and its device credential'
            cand list 'List devices'
            cand remove 'Remove a device; its undelivered jobs fail with device_removed'
        }
        &'reflecto;help;admin;device;add'= {
        }
        &'reflecto;help;admin;device;list'= {
        }
        &'reflecto;help;admin;device;remove'= {
        }
        &'reflecto;help;admin;audit'= {
        }
        &'reflecto;help;admin;pair'= {
        }
        &'reflecto;help;admin;backup'= {
        }
        &'reflecto;help;admin;copy'= {
        }
        &'reflecto;help;explain'= {
        }
        &'reflecto;help;completions'= {
        }
        &'reflecto;help;man'= {
        }
        &'reflecto;help;config'= {
            cand path 'Print the config file, credentials file and relay data directory paths'
        }
        &'reflecto;help;config;path'= {
        }
        &'reflecto;help;help'= {
        }
    ]
    $completions[$command]
}
