
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'reflecto' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'reflecto'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'reflecto' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send a notification to your devices')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Store a token for a profile (from stdin or a hidden prompt) in the OS keyring')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget a profile and its stored token')
            [CompletionResult]::new('auth', 'auth', [CompletionResultType]::ParameterValue, 'Inspect stored credentials')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the relay: the HTTP API, the durable queue and delivery, on one machine')
            [CompletionResult]::new('pair', 'pair', [CompletionResultType]::ParameterValue, 'Make this computer a desktop device of a relay user, with a one-time pairing code')
            [CompletionResult]::new('listen', 'listen', [CompletionResultType]::ParameterValue, 'Show this computer''s notifications as they arrive (desktop, stdout, --exec)')
            [CompletionResult]::new('setup', 'setup', [CompletionResultType]::ParameterValue, 'Make this computer a sender and receiver of the relay on this machine, in one command')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command, then send a notification saying how it ended; exit as it did')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show a message''s delivery state per device (or follow it with --wait)')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Remove a notification from every screen (a message, or the newest of a key)')
            [CompletionResult]::new('ask', 'ask', [CompletionResultType]::ParameterValue, 'Ask a question with answer buttons; print the answer a person chose')
            [CompletionResult]::new('ping', 'ping', [CompletionResultType]::ParameterValue, 'Check a heartbeat in (a cron job''s "still running"), or report its failure with --fail')
            [CompletionResult]::new('heartbeats', 'heartbeats', [CompletionResultType]::ParameterValue, 'The heartbeats of your token''s owner and their states')
            [CompletionResult]::new('respond', 'respond', [CompletionResultType]::ParameterValue, 'Acknowledge a message as this computer''s paired device, with one of its responses')
            [CompletionResult]::new('admin', 'admin', [CompletionResultType]::ParameterValue, 'Operator commands on the relay''s store (users, tokens, devices, pairing)')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Explain what an error code means and what to do about it')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write the man pages (to stdout, or one file per command into --out-dir)')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Where reflecto keeps its config, credentials and relay data')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;send' {
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'A title above the message (1–100 bytes)')
            [CompletionResult]::new('--title', '--title', [CompletionResultType]::ParameterName, 'A title above the message (1–100 bytes)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])')
            [CompletionResult]::new('--priority', '--priority', [CompletionResultType]::ParameterName, 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'A tag (repeatable; up to 5 are kept)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'A link the notification opens (http or https, up to 512 bytes)')
            [CompletionResult]::new('--url-title', '--url-title', [CompletionResultType]::ParameterName, 'The link''s text instead of the URL (up to 32 bytes)')
            [CompletionResult]::new('--action', '--action', [CompletionResultType]::ParameterName, 'A button: ''LABEL=URL'' (repeatable; up to 3 are kept)')
            [CompletionResult]::new('--action-response', '--action-response', [CompletionResultType]::ParameterName, 'A button that answers: ''LABEL[=RESPONSE]'' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Seconds the notification stays deliverable (0–259200)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes')
            [CompletionResult]::new('--expire', '--expire', [CompletionResultType]::ParameterName, 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send')
            [CompletionResult]::new('--callback', '--callback', [CompletionResultType]::ParameterName, 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile')
            [CompletionResult]::new('--retry-max-wait', '--retry-max-wait', [CompletionResultType]::ParameterName, 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]')
            [CompletionResult]::new('--batch', '--batch', [CompletionResultType]::ParameterName, 'Send JSON lines from FILE (or - for stdin), one request each, in order')
            [CompletionResult]::new('--skip', '--skip', [CompletionResultType]::ParameterName, 'With --batch: skip lines 1..=N (resume after an interruption at line N+1)')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'After the send, wait up to SECONDS for every delivery to end; exit 7 unless all were delivered')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'With --wait: follow until every delivery ended (delivered), or until a person acknowledged the message on a device (acknowledged; exit 7 if nobody did in time)')
            [CompletionResult]::new('--markdown', '--markdown', [CompletionResultType]::ParameterName, 'Render the message as Markdown')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the relay''s JSON response verbatim')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success (errors still go to stderr)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success (errors still go to stderr)')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'Read the token from the first line of stdin instead of REFLECTO_TOKEN or the profile''s stored token')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;login' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL this profile sends to (the token is only ever sent there) [default: the profile''s server; required for a new profile]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile to store the token in')
            [CompletionResult]::new('--insecure-storage', '--insecure-storage', [CompletionResultType]::ParameterName, 'Store the token in a 0600 file even if a keyring is available')
            [CompletionResult]::new('--secure-storage-only', '--secure-storage-only', [CompletionResultType]::ParameterName, 'Refuse to store the token anywhere but the OS keyring')
            [CompletionResult]::new('--no-verify', '--no-verify', [CompletionResultType]::ParameterName, 'Store the token without asking the relay whether it knows it (offline set-up)')
            [CompletionResult]::new('--admin', '--admin', [CompletionResultType]::ParameterName, 'Store an admin token (rfa_live_…) for `reflecto admin --server`, beside the profile''s sender token (checked with GET /v1/admin/status)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;logout' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile whose token is forgotten')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;auth' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Where each profile''s token lives (masked), and where the config and credentials files are')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;auth;status' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object on stdout: the file paths, each profile, and the checks')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Ask each profile''s relay about its token (GET /v1/token): owner, scope, quota left')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;auth;help' {
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Where each profile''s token lives (masked), and where the config and credentials files are')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;auth;help;status' {
            break
        }
        'reflecto;auth;help;help' {
            break
        }
        'reflecto;serve' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'TOML configuration file (flags and REFLECTO_* variables override it)')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on [default: 127.0.0.1:8080]')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Where the SQLite store lives [default: the platform data dir, e.g. ~/.local/share/reflecto]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'Share a PostgreSQL database with other relays (postgres://user:password@host/db) instead of SQLite in the data dir')
            [CompletionResult]::new('--lease-secs', '--lease-secs', [CompletionResultType]::ParameterName, 'Seconds a delivery attempt holds its job before another relay may take it over [default: 30]')
            [CompletionResult]::new('--fcm-credentials', '--fcm-credentials', [CompletionResultType]::ParameterName, 'Firebase service-account JSON; without it android deliveries wait')
            [CompletionResult]::new('--fcm-endpoint', '--fcm-endpoint', [CompletionResultType]::ParameterName, 'FCM base URL [default: https://fcm.googleapis.com]')
            [CompletionResult]::new('--trust-proxy', '--trust-proxy', [CompletionResultType]::ParameterName, 'Take the client IP from X-Forwarded-For (only behind a proxy you run)')
            [CompletionResult]::new('--webpush-allow-local', '--webpush-allow-local', [CompletionResultType]::ParameterName, 'Accept Web Push endpoints that are plain http or resolve to loopback, private or link-local addresses (a UnifiedPush distributor on the LAN, tests); off, pairing refuses them so the relay cannot be made to post into its own network')
            [CompletionResult]::new('--callback-allow-local', '--callback-allow-local', [CompletionResultType]::ParameterName, 'Accept `callback` URLs (SPEC §1.17) that are plain http or resolve to loopback, private or link-local addresses (tests, a receiver on the LAN); off, only public https')
            [CompletionResult]::new('--vapid-subject', '--vapid-subject', [CompletionResultType]::ParameterName, 'Contact sent to Web Push services in the VAPID token (mailto: or https:). Set it to an address you read: push services use it to reach the operator [default: mailto:admin@<hostname>]')
            [CompletionResult]::new('--public-url', '--public-url', [CompletionResultType]::ParameterName, 'The address people reach the relay at (https://relay.example), used in pairing links and their QR codes [default: each request''s own origin]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format (which lines: REFLECTO_LOG or RUST_LOG, see below)')
            [CompletionResult]::new('--retention', '--retention', [CompletionResultType]::ParameterName, 'How long a finished message is kept, e.g. 90s, 12h, 7d (0 keeps forever) [default: 7d]')
            [CompletionResult]::new('--limits', '--limits', [CompletionResultType]::ParameterName, 'Rate-limit preset: self-hosted (the default) or hosted (the hosted free tier: 60, 500, 1000, 20, 200); a layer set by its own flag, variable or in the file overrides it')
            [CompletionResult]::new('--limit-token-burst', '--limit-token-burst', [CompletionResultType]::ParameterName, 'Sends per token per rolling minute (0 disables) [default: 60]')
            [CompletionResult]::new('--limit-token-monthly', '--limit-token-monthly', [CompletionResultType]::ParameterName, 'Sends per token per calendar month, UTC (0 disables) [default: 0; hosted: 500]')
            [CompletionResult]::new('--limit-receiver-daily', '--limit-receiver-daily', [CompletionResultType]::ParameterName, 'Sends per receiving user per rolling 24 h (0 disables) [default: 10000; hosted: 1000]')
            [CompletionResult]::new('--limit-ip-minute', '--limit-ip-minute', [CompletionResultType]::ParameterName, 'API requests per client IP per rolling minute (0 disables) [default: 300; hosted: 20]')
            [CompletionResult]::new('--limit-ip-hour', '--limit-ip-hour', [CompletionResultType]::ParameterName, 'API requests per client IP per rolling hour (0 disables) [default: 3000; hosted: 200]')
            [CompletionResult]::new('--header-timeout', '--header-timeout', [CompletionResultType]::ParameterName, 'Seconds a client may take to send a request''s headers, from its first byte [default: 10]')
            [CompletionResult]::new('--body-timeout', '--body-timeout', [CompletionResultType]::ParameterName, 'Seconds a client may take to send a request body after its headers [default: 30]')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Seconds a connection may sit idle between requests; desktop streams are never idle [default: 60]')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Connections served at once; more wait until one closes [default: 4096]')
            [CompletionResult]::new('--max-header-bytes', '--max-header-bytes', [CompletionResultType]::ParameterName, 'Largest request line plus headers, in bytes; larger requests get 431 [default: 16384]')
            [CompletionResult]::new('--print-config', '--print-config', [CompletionResultType]::ParameterName, 'Print the resolved configuration as TOML and exit')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;pair' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]; saved in the profile')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile the pairing is stored under')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'How the device is listed [default: this computer''s host name]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;listen' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile this computer was paired under (`reflecto pair`)')
            [CompletionResult]::new('--exec', '--exec', [CompletionResultType]::ParameterName, 'Run CMD through `sh -c` for each notification, with REFLECTO_ID, REFLECTO_TITLE, REFLECTO_MESSAGE, REFLECTO_PRIORITY, REFLECTO_TAGS, REFLECTO_URL and REFLECTO_SOURCE set and the JSON object on stdin')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object per notification: {"event_id","id","envelope"}')
            [CompletionResult]::new('--no-notify', '--no-notify', [CompletionResultType]::ParameterName, 'Do not show desktop notifications (print and --exec only)')
            [CompletionResult]::new('--poll', '--poll', [CompletionResultType]::ParameterName, 'Handle what is pending, ack it, and exit')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;setup' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'The relay''s URL [default: the address the relay running on the data dir recorded]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user this computer sends as and receives for; created unless it exists [default: your login name]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile that keeps the token and this computer''s device')
            [CompletionResult]::new('--service', '--service', [CompletionResultType]::ParameterName, 'Install, enable and start the reflecto-listen systemd user unit')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON summary on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;run' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])')
            [CompletionResult]::new('--priority', '--priority', [CompletionResultType]::ParameterName, 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'A tag (repeatable; up to 5 are kept)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'A link the notification opens (http or https, up to 512 bytes)')
            [CompletionResult]::new('--url-title', '--url-title', [CompletionResultType]::ParameterName, 'The link''s text instead of the URL (up to 32 bytes)')
            [CompletionResult]::new('--action', '--action', [CompletionResultType]::ParameterName, 'A button: ''LABEL=URL'' (repeatable; up to 3 are kept)')
            [CompletionResult]::new('--action-response', '--action-response', [CompletionResultType]::ParameterName, 'A button that answers: ''LABEL[=RESPONSE]'' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Seconds the notification stays deliverable (0–259200)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes')
            [CompletionResult]::new('--expire', '--expire', [CompletionResultType]::ParameterName, 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send')
            [CompletionResult]::new('--callback', '--callback', [CompletionResultType]::ParameterName, 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile')
            [CompletionResult]::new('--retry-max-wait', '--retry-max-wait', [CompletionResultType]::ParameterName, 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]')
            [CompletionResult]::new('--lines', '--lines', [CompletionResultType]::ParameterName, 'How many of the last lines of COMMAND''s stdout, and of its stderr, the message keeps')
            [CompletionResult]::new('--markdown', '--markdown', [CompletionResultType]::ParameterName, 'Render the message as Markdown')
            [CompletionResult]::new('--on-failure', '--on-failure', [CompletionResultType]::ParameterName, 'Send only when COMMAND fails (a non-zero status or a signal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;status' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Follow the status until every delivery has ended, at most SECONDS (one request per change, or per minute); exit 7 unless all were delivered')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'With --wait: follow until every delivery ended (delivered), or until a person acknowledged the message on a device (acknowledged; exit 7 if nobody did in time)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the relay''s JSON (with --wait: one object per change)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;clear' {
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Clear the newest message sent with this key (`send --key`) instead')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile')
            [CompletionResult]::new('--retry-max-wait', '--retry-max-wait', [CompletionResultType]::ParameterName, 'Longest total wait for retries on 429, 5xx and connection errors')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the relay''s answer as JSON: {"id","cancelled","cleared"}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;ask' {
            [CompletionResult]::new('--option', '--option', [CompletionResultType]::ParameterName, 'An answer button: ''LABEL[=RESPONSE]'' (1–3; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL)')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'How long to wait for an answer before giving up (exit 7) and clearing the question')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'A title above the question (1–100 bytes)')
            [CompletionResult]::new('--title', '--title', [CompletionResultType]::ParameterName, 'A title above the question (1–100 bytes)')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])')
            [CompletionResult]::new('--priority', '--priority', [CompletionResultType]::ParameterName, 'min, low, default, high or urgent (checked by the relay''s rules: error[invalid_priority])')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'A tag (repeatable; up to 5 are kept)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'A link the notification opens (http or https, up to 512 bytes)')
            [CompletionResult]::new('--url-title', '--url-title', [CompletionResultType]::ParameterName, 'The link''s text instead of the URL (up to 32 bytes)')
            [CompletionResult]::new('--action', '--action', [CompletionResultType]::ParameterName, 'A button: ''LABEL=URL'' (repeatable; up to 3 are kept)')
            [CompletionResult]::new('--action-response', '--action-response', [CompletionResultType]::ParameterName, 'A button that answers: ''LABEL[=RESPONSE]'' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated')
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Seconds the notification stays deliverable (0–259200)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes')
            [CompletionResult]::new('--expire', '--expire', [CompletionResultType]::ParameterName, 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send')
            [CompletionResult]::new('--callback', '--callback', [CompletionResultType]::ParameterName, 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile')
            [CompletionResult]::new('--retry-max-wait', '--retry-max-wait', [CompletionResultType]::ParameterName, 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]')
            [CompletionResult]::new('--markdown', '--markdown', [CompletionResultType]::ParameterName, 'Render the message as Markdown')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print {"id","response","device_id","acknowledged_at"} instead of the response alone')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;ping' {
            [CompletionResult]::new('--every', '--every', [CompletionResultType]::ParameterName, 'How often it checks in, e.g. 1d, 12h, 90m (1 minute–31 days; required on the first ping, then kept)')
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'How long past due the alarm waits, e.g. 1h (0–1 day; default a tenth of --every, at most 1 h)')
            [CompletionResult]::new('--fail', '--fail', [CompletionResultType]::ParameterName, 'Report a failure instead: "<NAME> failed" is sent at once, with TEXT as its message')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile')
            [CompletionResult]::new('--retry-max-wait', '--retry-max-wait', [CompletionResultType]::ParameterName, 'Longest total wait, retries on 429, 5xx and connection errors included (at least 1 s)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the relay''s answer as JSON: {"name","every","grace","state","last_ping_at","next_due_at"}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;heartbeats' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Relay URL [default: the profile''s server, else https://api.reflecto.dev]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile')
            [CompletionResult]::new('--retry-max-wait', '--retry-max-wait', [CompletionResultType]::ParameterName, 'Longest total wait, retries on 429, 5xx and connection errors included (at least 1 s)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the relay''s answer as JSON: {"heartbeats":[…]}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;respond' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Credential profile this computer was paired under (`reflecto pair`)')
            [CompletionResult]::new('--retry-max-wait', '--retry-max-wait', [CompletionResultType]::ParameterName, 'Longest total wait for retries on 429, 5xx and connection errors')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the relay''s answer as JSON: {"id","acknowledged_at","device_id","response"}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('user', 'user', [CompletionResultType]::ParameterValue, 'Manage users (the receivers of notifications)')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Manage sender tokens')
            [CompletionResult]::new('device', 'device', [CompletionResultType]::ParameterValue, 'Manage devices')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Print the audit log, newest first: who added, removed, created, revoked or paired what')
            [CompletionResult]::new('pair', 'pair', [CompletionResultType]::ParameterValue, 'Print a 6-digit pairing code for a user, valid 10 minutes')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay''s data dir (PostgreSQL: use pg_dump)')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;admin;user' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a user')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a user with their tokens, devices and messages')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;admin;user;add' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;user;list' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'As JSON on stdout (times in RFC 3339)')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;user;remove' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;user;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a user')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a user with their tokens, devices and messages')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;admin;user;help;add' {
            break
        }
        'reflecto;admin;user;help;list' {
            break
        }
        'reflecto;admin;user;help;remove' {
            break
        }
        'reflecto;admin;user;help;help' {
            break
        }
        'reflecto;admin;token' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a token; prints it on stdout, this once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List tokens (never their secrets)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a token by its tok_ id; effective on the relay''s next request')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;admin;token;create' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user the token sends to (their devices receive)')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'Shown on devices as the notification''s source')
            [CompletionResult]::new('--priority-cap', '--priority-cap', [CompletionResultType]::ParameterName, 'Highest priority the token may send')
            [CompletionResult]::new('--scope-devices', '--scope-devices', [CompletionResultType]::ParameterName, 'Comma list of device ids/labels (or all/mobile/desktop) the token may reach')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--admin', '--admin', [CompletionResultType]::ParameterName, 'Make an admin token (rfa_live_…) for the operator API instead: no user, cannot send')
            [CompletionResult]::new('--test', '--test', [CompletionResultType]::ParameterName, 'Make an rfk_test_ token')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;token;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only this user''s')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'As JSON on stdout (times in RFC 3339)')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;token;revoke' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;token;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a token; prints it on stdout, this once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List tokens (never their secrets)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a token by its tok_ id; effective on the relay''s next request')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;admin;token;help;create' {
            break
        }
        'reflecto;admin;token;help;list' {
            break
        }
        'reflecto;admin;token;help;revoke' {
            break
        }
        'reflecto;admin;token;help;help' {
            break
        }
        'reflecto;admin;device' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a device directly (without pairing); prints its dev_ id and its device credential')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List devices')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a device; its undelivered jobs fail with device_removed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;admin;device;add' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user who owns the device')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'The device''s name, for --device selectors and status lines')
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'type')
            [CompletionResult]::new('--fcm-token', '--fcm-token', [CompletionResultType]::ParameterName, 'FCM registration token (android only)')
            [CompletionResult]::new('--public-key', '--public-key', [CompletionResultType]::ParameterName, 'X25519 public key (base64url): the device''s notifications are sealed to it (SPEC §1.12)')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;device;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only this user''s')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'As JSON on stdout (times in RFC 3339)')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;device;remove' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;device;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a device directly (without pairing); prints its dev_ id and its device credential')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List devices')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a device; its undelivered jobs fail with device_removed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;admin;device;help;add' {
            break
        }
        'reflecto;admin;device;help;list' {
            break
        }
        'reflecto;admin;device;help;remove' {
            break
        }
        'reflecto;admin;device;help;help' {
            break
        }
        'reflecto;admin;audit' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many entries, newest first')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'As JSON on stdout (times in RFC 3339)')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;pair' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user whose device the code pairs')
            [CompletionResult]::new('--public-url', '--public-url', [CompletionResultType]::ParameterName, 'The address phones reach the relay at, for the link [default: the config file''s public_url, else the address of the relay running on the data dir]')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--qr', '--qr', [CompletionResultType]::ParameterName, 'Also print the link <public url>/app/#code=… and it as a QR code, so a phone pairs by scanning')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;backup' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace FILE if it exists (without it, an existing FILE is refused)')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;copy' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The empty target database (postgres://user:password@host/db); from the environment it stays off the command line, where `ps` would show its password')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'The relay''s data directory [default: the platform data dir]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'The relay''s PostgreSQL database (postgres://…) instead of SQLite in the data dir')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Take the data directory from the relay''s TOML configuration')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Run the command through this relay''s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile''s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'With --server: the credential profile whose admin token to use')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'With --server: read the admin token (rfa_live_…) from the first line of stdin')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;admin;help' {
            [CompletionResult]::new('user', 'user', [CompletionResultType]::ParameterValue, 'Manage users (the receivers of notifications)')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Manage sender tokens')
            [CompletionResult]::new('device', 'device', [CompletionResultType]::ParameterValue, 'Manage devices')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Print the audit log, newest first: who added, removed, created, revoked or paired what')
            [CompletionResult]::new('pair', 'pair', [CompletionResultType]::ParameterValue, 'Print a 6-digit pairing code for a user, valid 10 minutes')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay''s data dir (PostgreSQL: use pg_dump)')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;admin;help;user' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a user')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a user with their tokens, devices and messages')
            break
        }
        'reflecto;admin;help;user;add' {
            break
        }
        'reflecto;admin;help;user;list' {
            break
        }
        'reflecto;admin;help;user;remove' {
            break
        }
        'reflecto;admin;help;token' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a token; prints it on stdout, this once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List tokens (never their secrets)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a token by its tok_ id; effective on the relay''s next request')
            break
        }
        'reflecto;admin;help;token;create' {
            break
        }
        'reflecto;admin;help;token;list' {
            break
        }
        'reflecto;admin;help;token;revoke' {
            break
        }
        'reflecto;admin;help;device' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a device directly (without pairing); prints its dev_ id and its device credential')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List devices')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a device; its undelivered jobs fail with device_removed')
            break
        }
        'reflecto;admin;help;device;add' {
            break
        }
        'reflecto;admin;help;device;list' {
            break
        }
        'reflecto;admin;help;device;remove' {
            break
        }
        'reflecto;admin;help;audit' {
            break
        }
        'reflecto;admin;help;pair' {
            break
        }
        'reflecto;admin;help;backup' {
            break
        }
        'reflecto;admin;help;copy' {
            break
        }
        'reflecto;admin;help;help' {
            break
        }
        'reflecto;explain' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;man' {
            [CompletionResult]::new('--out-dir', '--out-dir', [CompletionResultType]::ParameterName, 'Write reflecto.1 and one reflecto-<command>.1 per subcommand into this directory')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;config' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the config file, credentials file and relay data directory paths')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;config;path' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'The three paths as one JSON object')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'reflecto;config;help' {
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the config file, credentials file and relay data directory paths')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;config;help;path' {
            break
        }
        'reflecto;config;help;help' {
            break
        }
        'reflecto;help' {
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send a notification to your devices')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Store a token for a profile (from stdin or a hidden prompt) in the OS keyring')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget a profile and its stored token')
            [CompletionResult]::new('auth', 'auth', [CompletionResultType]::ParameterValue, 'Inspect stored credentials')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the relay: the HTTP API, the durable queue and delivery, on one machine')
            [CompletionResult]::new('pair', 'pair', [CompletionResultType]::ParameterValue, 'Make this computer a desktop device of a relay user, with a one-time pairing code')
            [CompletionResult]::new('listen', 'listen', [CompletionResultType]::ParameterValue, 'Show this computer''s notifications as they arrive (desktop, stdout, --exec)')
            [CompletionResult]::new('setup', 'setup', [CompletionResultType]::ParameterValue, 'Make this computer a sender and receiver of the relay on this machine, in one command')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command, then send a notification saying how it ended; exit as it did')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show a message''s delivery state per device (or follow it with --wait)')
            [CompletionResult]::new('clear', 'clear', [CompletionResultType]::ParameterValue, 'Remove a notification from every screen (a message, or the newest of a key)')
            [CompletionResult]::new('ask', 'ask', [CompletionResultType]::ParameterValue, 'Ask a question with answer buttons; print the answer a person chose')
            [CompletionResult]::new('ping', 'ping', [CompletionResultType]::ParameterValue, 'Check a heartbeat in (a cron job''s "still running"), or report its failure with --fail')
            [CompletionResult]::new('heartbeats', 'heartbeats', [CompletionResultType]::ParameterValue, 'The heartbeats of your token''s owner and their states')
            [CompletionResult]::new('respond', 'respond', [CompletionResultType]::ParameterValue, 'Acknowledge a message as this computer''s paired device, with one of its responses')
            [CompletionResult]::new('admin', 'admin', [CompletionResultType]::ParameterValue, 'Operator commands on the relay''s store (users, tokens, devices, pairing)')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Explain what an error code means and what to do about it')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write the man pages (to stdout, or one file per command into --out-dir)')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Where reflecto keeps its config, credentials and relay data')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'reflecto;help;send' {
            break
        }
        'reflecto;help;login' {
            break
        }
        'reflecto;help;logout' {
            break
        }
        'reflecto;help;auth' {
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Where each profile''s token lives (masked), and where the config and credentials files are')
            break
        }
        'reflecto;help;auth;status' {
            break
        }
        'reflecto;help;serve' {
            break
        }
        'reflecto;help;pair' {
            break
        }
        'reflecto;help;listen' {
            break
        }
        'reflecto;help;setup' {
            break
        }
        'reflecto;help;run' {
            break
        }
        'reflecto;help;status' {
            break
        }
        'reflecto;help;clear' {
            break
        }
        'reflecto;help;ask' {
            break
        }
        'reflecto;help;ping' {
            break
        }
        'reflecto;help;heartbeats' {
            break
        }
        'reflecto;help;respond' {
            break
        }
        'reflecto;help;admin' {
            [CompletionResult]::new('user', 'user', [CompletionResultType]::ParameterValue, 'Manage users (the receivers of notifications)')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'Manage sender tokens')
            [CompletionResult]::new('device', 'device', [CompletionResultType]::ParameterValue, 'Manage devices')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Print the audit log, newest first: who added, removed, created, revoked or paired what')
            [CompletionResult]::new('pair', 'pair', [CompletionResultType]::ParameterValue, 'Print a 6-digit pairing code for a user, valid 10 minutes')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay''s data dir (PostgreSQL: use pg_dump)')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL')
            break
        }
        'reflecto;help;admin;user' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a user')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a user with their tokens, devices and messages')
            break
        }
        'reflecto;help;admin;user;add' {
            break
        }
        'reflecto;help;admin;user;list' {
            break
        }
        'reflecto;help;admin;user;remove' {
            break
        }
        'reflecto;help;admin;token' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a token; prints it on stdout, this once')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List tokens (never their secrets)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a token by its tok_ id; effective on the relay''s next request')
            break
        }
        'reflecto;help;admin;token;create' {
            break
        }
        'reflecto;help;admin;token;list' {
            break
        }
        'reflecto;help;admin;token;revoke' {
            break
        }
        'reflecto;help;admin;device' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a device directly (without pairing); prints its dev_ id and its device credential')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List devices')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a device; its undelivered jobs fail with device_removed')
            break
        }
        'reflecto;help;admin;device;add' {
            break
        }
        'reflecto;help;admin;device;list' {
            break
        }
        'reflecto;help;admin;device;remove' {
            break
        }
        'reflecto;help;admin;audit' {
            break
        }
        'reflecto;help;admin;pair' {
            break
        }
        'reflecto;help;admin;backup' {
            break
        }
        'reflecto;help;admin;copy' {
            break
        }
        'reflecto;help;explain' {
            break
        }
        'reflecto;help;completions' {
            break
        }
        'reflecto;help;man' {
            break
        }
        'reflecto;help;config' {
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the config file, credentials file and relay data directory paths')
            break
        }
        'reflecto;help;config;path' {
            break
        }
        'reflecto;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
