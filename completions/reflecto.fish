# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_reflecto_global_optspecs
    string join \n h/help V/version
end

function __fish_reflecto_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_reflecto_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_reflecto_using_subcommand
    set -l cmd (__fish_reflecto_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c reflecto -n "__fish_reflecto_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reflecto -n "__fish_reflecto_needs_command" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "send" -d 'Send a notification to your devices'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "login" -d 'Store a token for a profile (from stdin or a hidden prompt) in the OS keyring'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "logout" -d 'Forget a profile and its stored token'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "auth" -d 'Inspect stored credentials'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "serve" -d 'Run the relay: the HTTP API, the durable queue and delivery, on one machine'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "pair" -d 'Make this computer a desktop device of a relay user, with a one-time pairing code'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "listen" -d 'Show this computer\'s notifications as they arrive (desktop, stdout, --exec)'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "setup" -d 'Make this computer a sender and receiver of the relay on this machine, in one command'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "run" -d 'Run a command, then send a notification saying how it ended; exit as it did'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "status" -d 'Show a message\'s delivery state per device (or follow it with --wait)'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "clear" -d 'Remove a notification from every screen (a message, or the newest of a key)'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "ask" -d 'Ask a question with answer buttons; print the answer a person chose'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "ping" -d 'Check a heartbeat in (a cron job\'s "still running"), or report its failure with --fail'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "heartbeats" -d 'The heartbeats of your token\'s owner and their states'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "respond" -d 'Acknowledge a message as this computer\'s paired device, with one of its responses'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "admin" -d 'Operator commands on the relay\'s store (users, tokens, devices, pairing)'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "explain" -d 'Explain what an error code means and what to do about it'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "man" -d 'Write the man pages (to stdout, or one file per command into --out-dir)'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "config" -d 'Where reflecto keeps its config, credentials and relay data'
complete -c reflecto -n "__fish_reflecto_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -s t -l title -d 'A title above the message (1–100 bytes)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -s p -l priority -d 'min, low, default, high or urgent (checked by the relay\'s rules: error[invalid_priority])' -r -f -a "min\t''
low\t''
default\t''
high\t''
urgent\t''"
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l tag -d 'A tag (repeatable; up to 5 are kept)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l url -d 'A link the notification opens (http or https, up to 512 bytes)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l url-title -d 'The link\'s text instead of the URL (up to 32 bytes)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l action -d 'A button: \'LABEL=URL\' (repeatable; up to 3 are kept)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l action-response -d 'A button that answers: \'LABEL[=RESPONSE]\' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -s d -l device -d 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l ttl -d 'Seconds the notification stays deliverable (0–259200)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l key -d 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l retry -d 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l expire -d 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l callback -d 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l server -d 'Relay URL [default: the profile\'s server, else https://api.reflecto.dev]' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l profile -d 'Credential profile' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l retry-max-wait -d 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l batch -d 'Send JSON lines from FILE (or - for stdin), one request each, in order' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l skip -d 'With --batch: skip lines 1..=N (resume after an interruption at line N+1)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l wait -d 'After the send, wait up to SECONDS for every delivery to end; exit 7 unless all were delivered' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l until -d 'With --wait: follow until every delivery ended (delivered), or until a person acknowledged the message on a device (acknowledged; exit 7 if nobody did in time)' -r -f -a "delivered\t'Every delivery ended; exit 0 when all were delivered'
acknowledged\t'A person acknowledged the message on one of the devices'"
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l markdown -d 'Render the message as Markdown'
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l json -d 'Print the relay\'s JSON response verbatim'
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -s q -l quiet -d 'Print nothing on success (errors still go to stderr)'
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -l token-stdin -d 'Read the token from the first line of stdin instead of REFLECTO_TOKEN or the profile\'s stored token'
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reflecto -n "__fish_reflecto_using_subcommand send" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand login" -l server -d 'Relay URL this profile sends to (the token is only ever sent there) [default: the profile\'s server; required for a new profile]' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand login" -l profile -d 'Credential profile to store the token in' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand login" -l insecure-storage -d 'Store the token in a 0600 file even if a keyring is available'
complete -c reflecto -n "__fish_reflecto_using_subcommand login" -l secure-storage-only -d 'Refuse to store the token anywhere but the OS keyring'
complete -c reflecto -n "__fish_reflecto_using_subcommand login" -l no-verify -d 'Store the token without asking the relay whether it knows it (offline set-up)'
complete -c reflecto -n "__fish_reflecto_using_subcommand login" -l admin -d 'Store an admin token (rfa_live_…) for `reflecto admin --server`, beside the profile\'s sender token (checked with GET /v1/admin/status)'
complete -c reflecto -n "__fish_reflecto_using_subcommand login" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand login" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand logout" -l profile -d 'Credential profile whose token is forgotten' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand logout" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand logout" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and not __fish_seen_subcommand_from status help" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'Where each profile\'s token lives (masked), and where the config and credentials files are'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and __fish_seen_subcommand_from status" -l json -d 'One JSON object on stdout: the file paths, each profile, and the checks'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and __fish_seen_subcommand_from status" -l check -d 'Ask each profile\'s relay about its token (GET /v1/token): owner, scope, quota left'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "status" -d 'Where each profile\'s token lives (masked), and where the config and credentials files are'
complete -c reflecto -n "__fish_reflecto_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l config -d 'TOML configuration file (flags and REFLECTO_* variables override it)' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l listen -d 'Address to listen on [default: 127.0.0.1:8080]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l data-dir -d 'Where the SQLite store lives [default: the platform data dir, e.g. ~/.local/share/reflecto]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l database -d 'Share a PostgreSQL database with other relays (postgres://user:password@host/db) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l lease-secs -d 'Seconds a delivery attempt holds its job before another relay may take it over [default: 30]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l fcm-credentials -d 'Firebase service-account JSON; without it android deliveries wait' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l fcm-endpoint -d 'FCM base URL [default: https://fcm.googleapis.com]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l trust-proxy -d 'Take the client IP from X-Forwarded-For (only behind a proxy you run)' -r -f -a "true\t''
false\t''"
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l webpush-allow-local -d 'Accept Web Push endpoints that are plain http or resolve to loopback, private or link-local addresses (a UnifiedPush distributor on the LAN, tests); off, pairing refuses them so the relay cannot be made to post into its own network' -r -f -a "true\t''
false\t''"
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l callback-allow-local -d 'Accept `callback` URLs (SPEC §1.17) that are plain http or resolve to loopback, private or link-local addresses (tests, a receiver on the LAN); off, only public https' -r -f -a "true\t''
false\t''"
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l vapid-subject -d 'Contact sent to Web Push services in the VAPID token (mailto: or https:). Set it to an address you read: push services use it to reach the operator [default: mailto:admin@<hostname>]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l public-url -d 'The address people reach the relay at (https://relay.example), used in pairing links and their QR codes [default: each request\'s own origin]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l log-format -d 'Log format (which lines: REFLECTO_LOG or RUST_LOG, see below)' -r -f -a "text\t''
json\t''"
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l retention -d 'How long a finished message is kept, e.g. 90s, 12h, 7d (0 keeps forever) [default: 7d]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l limits -d 'Rate-limit preset: self-hosted (the default) or hosted (the hosted free tier: 60, 500, 1000, 20, 200); a layer set by its own flag, variable or in the file overrides it' -r -f -a "self-hosted\t'A relay run for its operator: token_burst 60, token_monthly off, receiver_daily 10000, ip_minute 300, ip_hour 3000'
hosted\t'The hosted free tier: token_burst 60, token_monthly 500, receiver_daily 1000, ip_minute 20, ip_hour 200'"
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l limit-token-burst -d 'Sends per token per rolling minute (0 disables) [default: 60]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l limit-token-monthly -d 'Sends per token per calendar month, UTC (0 disables) [default: 0; hosted: 500]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l limit-receiver-daily -d 'Sends per receiving user per rolling 24 h (0 disables) [default: 10000; hosted: 1000]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l limit-ip-minute -d 'API requests per client IP per rolling minute (0 disables) [default: 300; hosted: 20]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l limit-ip-hour -d 'API requests per client IP per rolling hour (0 disables) [default: 3000; hosted: 200]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l header-timeout -d 'Seconds a client may take to send a request\'s headers, from its first byte [default: 10]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l body-timeout -d 'Seconds a client may take to send a request body after its headers [default: 30]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l idle-timeout -d 'Seconds a connection may sit idle between requests; desktop streams are never idle [default: 60]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l max-connections -d 'Connections served at once; more wait until one closes [default: 4096]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l max-header-bytes -d 'Largest request line plus headers, in bytes; larger requests get 431 [default: 16384]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -l print-config -d 'Print the resolved configuration as TOML and exit'
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reflecto -n "__fish_reflecto_using_subcommand serve" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand pair" -l server -d 'Relay URL [default: the profile\'s server, else https://api.reflecto.dev]; saved in the profile' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand pair" -l profile -d 'Credential profile the pairing is stored under' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand pair" -l label -d 'How the device is listed [default: this computer\'s host name]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand pair" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand pair" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand listen" -l profile -d 'Credential profile this computer was paired under (`reflecto pair`)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand listen" -l exec -d 'Run CMD through `sh -c` for each notification, with REFLECTO_ID, REFLECTO_TITLE, REFLECTO_MESSAGE, REFLECTO_PRIORITY, REFLECTO_TAGS, REFLECTO_URL and REFLECTO_SOURCE set and the JSON object on stdin' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand listen" -l json -d 'Print one JSON object per notification: {"event_id","id","envelope"}'
complete -c reflecto -n "__fish_reflecto_using_subcommand listen" -l no-notify -d 'Do not show desktop notifications (print and --exec only)'
complete -c reflecto -n "__fish_reflecto_using_subcommand listen" -l poll -d 'Handle what is pending, ack it, and exit'
complete -c reflecto -n "__fish_reflecto_using_subcommand listen" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand listen" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -l server -d 'The relay\'s URL [default: the address the relay running on the data dir recorded]' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -l user -d 'The user this computer sends as and receives for; created unless it exists [default: your login name]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -l profile -d 'Credential profile that keeps the token and this computer\'s device' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -l service -d 'Install, enable and start the reflecto-listen systemd user unit'
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -l json -d 'Print a JSON summary on stdout'
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand setup" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -s p -l priority -d 'min, low, default, high or urgent (checked by the relay\'s rules: error[invalid_priority])' -r -f -a "min\t''
low\t''
default\t''
high\t''
urgent\t''"
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l tag -d 'A tag (repeatable; up to 5 are kept)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l url -d 'A link the notification opens (http or https, up to 512 bytes)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l url-title -d 'The link\'s text instead of the URL (up to 32 bytes)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l action -d 'A button: \'LABEL=URL\' (repeatable; up to 3 are kept)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l action-response -d 'A button that answers: \'LABEL[=RESPONSE]\' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -s d -l device -d 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l ttl -d 'Seconds the notification stays deliverable (0–259200)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l key -d 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l retry -d 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l expire -d 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l callback -d 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l server -d 'Relay URL [default: the profile\'s server, else https://api.reflecto.dev]' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l profile -d 'Credential profile' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l retry-max-wait -d 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l lines -d 'How many of the last lines of COMMAND\'s stdout, and of its stderr, the message keeps' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l markdown -d 'Render the message as Markdown'
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -l on-failure -d 'Send only when COMMAND fails (a non-zero status or a signal)'
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand run" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand status" -l server -d 'Relay URL [default: the profile\'s server, else https://api.reflecto.dev]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand status" -l profile -d 'Credential profile' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand status" -l wait -d 'Follow the status until every delivery has ended, at most SECONDS (one request per change, or per minute); exit 7 unless all were delivered' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand status" -l until -d 'With --wait: follow until every delivery ended (delivered), or until a person acknowledged the message on a device (acknowledged; exit 7 if nobody did in time)' -r -f -a "delivered\t'Every delivery ended; exit 0 when all were delivered'
acknowledged\t'A person acknowledged the message on one of the devices'"
complete -c reflecto -n "__fish_reflecto_using_subcommand status" -l json -d 'Print the relay\'s JSON (with --wait: one object per change)'
complete -c reflecto -n "__fish_reflecto_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reflecto -n "__fish_reflecto_using_subcommand status" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand clear" -l key -d 'Clear the newest message sent with this key (`send --key`) instead' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand clear" -l server -d 'Relay URL [default: the profile\'s server, else https://api.reflecto.dev]' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand clear" -l profile -d 'Credential profile' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand clear" -l retry-max-wait -d 'Longest total wait for retries on 429, 5xx and connection errors' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand clear" -l json -d 'Print the relay\'s answer as JSON: {"id","cancelled","cleared"}'
complete -c reflecto -n "__fish_reflecto_using_subcommand clear" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand clear" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l option -d 'An answer button: \'LABEL[=RESPONSE]\' (1–3; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l wait -d 'How long to wait for an answer before giving up (exit 7) and clearing the question' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -s t -l title -d 'A title above the question (1–100 bytes)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -s p -l priority -d 'min, low, default, high or urgent (checked by the relay\'s rules: error[invalid_priority])' -r -f -a "min\t''
low\t''
default\t''
high\t''
urgent\t''"
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l tag -d 'A tag (repeatable; up to 5 are kept)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l url -d 'A link the notification opens (http or https, up to 512 bytes)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l url-title -d 'The link\'s text instead of the URL (up to 32 bytes)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l action -d 'A button: \'LABEL=URL\' (repeatable; up to 3 are kept)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l action-response -d 'A button that answers: \'LABEL[=RESPONSE]\' (repeatable; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -, defaults to LABEL). Pressing it acknowledges the message with RESPONSE' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -s d -l device -d 'Device selector: all, mobile, desktop, a dev_ id or a label; comma-separated' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l ttl -d 'Seconds the notification stays deliverable (0–259200)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l key -d 'Replace the notification with this key (1–64 of A-Z a-z 0-9 . _ : -): devices show the newest in place of the earlier ones' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l retry -d 'With -p urgent and --expire: deliver the message again every SECONDS (30–3600) until someone acknowledges it, it is cleared, or --expire passes' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l expire -d 'With --retry: stop repeating SECONDS (60–10800, at most the ttl) after the send' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l callback -d 'An https URL the relay POSTs a signed event to when the message is first acknowledged or its --expire runs out (Standard Webhooks, keyed with the SHA-256 of the token)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l server -d 'Relay URL [default: the profile\'s server, else https://api.reflecto.dev]' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l profile -d 'Credential profile' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l retry-max-wait -d 'Longest total wait for retries on 429, 5xx and connection errors [default: 60; with --batch a 429 is waited out however long unless this is given]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l markdown -d 'Render the message as Markdown'
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -l json -d 'Print {"id","response","device_id","acknowledged_at"} instead of the response alone'
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand ask" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -l every -d 'How often it checks in, e.g. 1d, 12h, 90m (1 minute–31 days; required on the first ping, then kept)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -l grace -d 'How long past due the alarm waits, e.g. 1h (0–1 day; default a tenth of --every, at most 1 h)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -l fail -d 'Report a failure instead: "<NAME> failed" is sent at once, with TEXT as its message' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -l server -d 'Relay URL [default: the profile\'s server, else https://api.reflecto.dev]' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -l profile -d 'Credential profile' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -l retry-max-wait -d 'Longest total wait, retries on 429, 5xx and connection errors included (at least 1 s)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -l json -d 'Print the relay\'s answer as JSON: {"name","every","grace","state","last_ping_at","next_due_at"}'
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand ping" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand heartbeats" -l server -d 'Relay URL [default: the profile\'s server, else https://api.reflecto.dev]' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand heartbeats" -l profile -d 'Credential profile' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand heartbeats" -l retry-max-wait -d 'Longest total wait, retries on 429, 5xx and connection errors included (at least 1 s)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand heartbeats" -l json -d 'Print the relay\'s answer as JSON: {"heartbeats":[…]}'
complete -c reflecto -n "__fish_reflecto_using_subcommand heartbeats" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand heartbeats" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand respond" -l profile -d 'Credential profile this computer was paired under (`reflecto pair`)' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand respond" -l retry-max-wait -d 'Longest total wait for retries on 429, 5xx and connection errors' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand respond" -l json -d 'Print the relay\'s answer as JSON: {"id","acknowledged_at","device_id","response"}'
complete -c reflecto -n "__fish_reflecto_using_subcommand respond" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand respond" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -l server -d 'Run the command through this relay\'s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile\'s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -l profile -d 'With --server: the credential profile whose admin token to use' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -l token-stdin -d 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -f -a "user" -d 'Manage users (the receivers of notifications)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -f -a "token" -d 'Manage sender tokens'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -f -a "device" -d 'Manage devices'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -f -a "audit" -d 'Print the audit log, newest first: who added, removed, created, revoked or paired what'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -f -a "pair" -d 'Print a 6-digit pairing code for a user, valid 10 minutes'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -f -a "backup" -d 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay\'s data dir (PostgreSQL: use pg_dump)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -f -a "copy" -d 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and not __fish_seen_subcommand_from user token device audit pair backup copy help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -l server -d 'Run the command through this relay\'s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile\'s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -l profile -d 'With --server: the credential profile whose admin token to use' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -l token-stdin -d 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "add" -d 'Add a user'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "list" -d 'List users'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "remove" -d 'Remove a user with their tokens, devices and messages'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -l server -d 'Run the command through this relay\'s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile\'s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -l profile -d 'With --server: the credential profile whose admin token to use' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -l token-stdin -d 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -f -a "create" -d 'Create a token; prints it on stdout, this once'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -f -a "list" -d 'List tokens (never their secrets)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -f -a "revoke" -d 'Revoke a token by its tok_ id; effective on the relay\'s next request'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from token" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -l server -d 'Run the command through this relay\'s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile\'s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -l profile -d 'With --server: the credential profile whose admin token to use' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -l token-stdin -d 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -f -a "add" -d 'Add a device directly (without pairing); prints its dev_ id and its device credential'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -f -a "list" -d 'List devices'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -f -a "remove" -d 'Remove a device; its undelivered jobs fail with device_removed'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from device" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -l limit -d 'How many entries, newest first' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -l server -d 'Run the command through this relay\'s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile\'s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -l profile -d 'With --server: the credential profile whose admin token to use' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -l json -d 'As JSON on stdout (times in RFC 3339)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -l token-stdin -d 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from audit" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l user -d 'The user whose device the code pairs' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l public-url -d 'The address phones reach the relay at, for the link [default: the config file\'s public_url, else the address of the relay running on the data dir]' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l server -d 'Run the command through this relay\'s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile\'s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l profile -d 'With --server: the credential profile whose admin token to use' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l qr -d 'Also print the link <public url>/app/#code=… and it as a QR code, so a phone pairs by scanning'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -l token-stdin -d 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from pair" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -l server -d 'Run the command through this relay\'s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile\'s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -l profile -d 'With --server: the credential profile whose admin token to use' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -l force -d 'Replace FILE if it exists (without it, an existing FILE is refused)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -l token-stdin -d 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from backup" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -l to -d 'The empty target database (postgres://user:password@host/db); from the environment it stays off the command line, where `ps` would show its password' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -l data-dir -d 'The relay\'s data directory [default: the platform data dir]' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -l database -d 'The relay\'s PostgreSQL database (postgres://…) instead of SQLite in the data dir' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -l config -d 'Take the data directory from the relay\'s TOML configuration' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -l server -d 'Run the command through this relay\'s /v1/admin API with an admin token (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile\'s from `reflecto login --admin`) instead of on a local store (--data-dir, --database and --config are then not read)' -r -f
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -l profile -d 'With --server: the credential profile whose admin token to use' -r
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -l token-stdin -d 'With --server: read the admin token (rfa_live_…) from the first line of stdin'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from copy" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "user" -d 'Manage users (the receivers of notifications)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "token" -d 'Manage sender tokens'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "device" -d 'Manage devices'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "audit" -d 'Print the audit log, newest first: who added, removed, created, revoked or paired what'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "pair" -d 'Print a 6-digit pairing code for a user, valid 10 minutes'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "backup" -d 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay\'s data dir (PostgreSQL: use pg_dump)'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "copy" -d 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL'
complete -c reflecto -n "__fish_reflecto_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand explain" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand explain" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand completions" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand completions" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand man" -l out-dir -d 'Write reflecto.1 and one reflecto-<command>.1 per subcommand into this directory' -r -F
complete -c reflecto -n "__fish_reflecto_using_subcommand man" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand man" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and not __fish_seen_subcommand_from path help" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and not __fish_seen_subcommand_from path help" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and not __fish_seen_subcommand_from path help" -f -a "path" -d 'Print the config file, credentials file and relay data directory paths'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and not __fish_seen_subcommand_from path help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and __fish_seen_subcommand_from path" -l json -d 'The three paths as one JSON object'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and __fish_seen_subcommand_from path" -s h -l help -d 'Print help'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and __fish_seen_subcommand_from path" -s V -l version -d 'Print version'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "path" -d 'Print the config file, credentials file and relay data directory paths'
complete -c reflecto -n "__fish_reflecto_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "send" -d 'Send a notification to your devices'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "login" -d 'Store a token for a profile (from stdin or a hidden prompt) in the OS keyring'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "logout" -d 'Forget a profile and its stored token'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "auth" -d 'Inspect stored credentials'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "serve" -d 'Run the relay: the HTTP API, the durable queue and delivery, on one machine'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "pair" -d 'Make this computer a desktop device of a relay user, with a one-time pairing code'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "listen" -d 'Show this computer\'s notifications as they arrive (desktop, stdout, --exec)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "setup" -d 'Make this computer a sender and receiver of the relay on this machine, in one command'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "run" -d 'Run a command, then send a notification saying how it ended; exit as it did'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "status" -d 'Show a message\'s delivery state per device (or follow it with --wait)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "clear" -d 'Remove a notification from every screen (a message, or the newest of a key)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "ask" -d 'Ask a question with answer buttons; print the answer a person chose'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "ping" -d 'Check a heartbeat in (a cron job\'s "still running"), or report its failure with --fail'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "heartbeats" -d 'The heartbeats of your token\'s owner and their states'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "respond" -d 'Acknowledge a message as this computer\'s paired device, with one of its responses'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "admin" -d 'Operator commands on the relay\'s store (users, tokens, devices, pairing)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "explain" -d 'Explain what an error code means and what to do about it'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "man" -d 'Write the man pages (to stdout, or one file per command into --out-dir)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "config" -d 'Where reflecto keeps its config, credentials and relay data'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and not __fish_seen_subcommand_from send login logout auth serve pair listen setup run status clear ask ping heartbeats respond admin explain completions man config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "status" -d 'Where each profile\'s token lives (masked), and where the config and credentials files are'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "user" -d 'Manage users (the receivers of notifications)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "token" -d 'Manage sender tokens'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "device" -d 'Manage devices'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "audit" -d 'Print the audit log, newest first: who added, removed, created, revoked or paired what'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "pair" -d 'Print a 6-digit pairing code for a user, valid 10 minutes'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "backup" -d 'Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore by copying it to reflecto.db in a stopped relay\'s data dir (PostgreSQL: use pg_dump)'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "copy" -d 'Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs, counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without re-pairing or re-issuing tokens. Stop the relay first; then start relays with --database URL'
complete -c reflecto -n "__fish_reflecto_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "path" -d 'Print the config file, credentials file and relay data directory paths'
