//! `reflecto admin`: operator commands on the relay's store. They open the same SQLite file
//! as a running relay, which sees every change on its next request.

use super::internal;
use crate::api::admin::*;
use crate::api::token::Secret;
use crate::api::{ApiError, DeviceType, ErrorCode, Priority};
use crate::client::admin::AdminClient;
use crate::relay::config::{PartialConfig, default_data_dir};
use crate::server::admin::ops::{MAX_PAGE, OpError, Operator};
use crate::server::messages_rfc3339 as rfc3339;
use crate::store::admin::Actor;
use crate::store::limits::Limits;
use crate::store::{Database, NewDevice, Store, StoreError, now_ms};
use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Where the relay's store is: shared by `admin` and `setup`, which both work on it directly.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The relay's data directory [default: the platform data dir]
    #[arg(
        long,
        env = "REFLECTO_DATA_DIR",
        value_name = "DIR",
        global = true,
        conflicts_with = "config"
    )]
    pub data_dir: Option<PathBuf>,
    /// The relay's PostgreSQL database (postgres://…) instead of SQLite in the data dir
    #[arg(
        long,
        env = "REFLECTO_DATABASE_URL",
        value_name = "URL",
        global = true,
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Take the data directory from the relay's TOML configuration
    #[arg(long, env = "REFLECTO_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// `--server`: the same commands through a relay's operator API instead of its store.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Run the command through this relay's /v1/admin API with an admin token
    /// (REFLECTO_ADMIN_TOKEN, --token-stdin, or the profile's from `reflecto login --admin`)
    /// instead of on a local store (--data-dir, --database and --config are then not read)
    // No `conflicts_with`: clap counts a flag's environment variable as given, so a machine
    // with REFLECTO_DATA_DIR set could not use --server at all.
    #[arg(long, value_name = "URL", global = true, value_hint = clap::ValueHint::Url)]
    pub server: Option<String>,
    /// With --server: read the admin token (rfa_live_…) from the first line of stdin
    #[arg(long, global = true, requires = "server")]
    pub token_stdin: bool,
    /// With --server: the credential profile whose admin token to use
    #[arg(long, env = "REFLECTO_PROFILE", default_value = crate::credentials::DEFAULT_PROFILE, value_name = "NAME", global = true)]
    pub profile: String,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users (the receivers of notifications)
    #[command(subcommand)]
    User(UserCommand),
    /// Manage sender tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage devices
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Print the audit log, newest first: who added, removed, created, revoked or paired what
    Audit {
        /// As JSON on stdout (times in RFC 3339)
        #[arg(long)]
        json: bool,
        /// How many entries, newest first
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
    },
    /// Print a 6-digit pairing code for a user, valid 10 minutes
    Pair {
        /// The user whose device the code pairs
        #[arg(long)]
        user: String,
        /// Also print the link <public url>/app/#code=… and it as a QR code, so a phone pairs by scanning
        #[arg(long)]
        qr: bool,
        /// The address phones reach the relay at, for the link [default: the config file's
        /// public_url, else the address of the relay running on the data dir]
        #[arg(long, env = "REFLECTO_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String>,
    },
    /// Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore
    /// by copying it to reflecto.db in a stopped relay's data dir (PostgreSQL: use pg_dump)
    Backup {
        /// The backup file to write (its directory must exist)
        file: PathBuf,
        /// Replace FILE if it exists (without it, an existing FILE is refused)
        #[arg(long)]
        force: bool,
    },
    /// Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs,
    /// counters, the VAPID key, heartbeats) into an empty PostgreSQL database, so the relay moves without
    /// re-pairing or re-issuing tokens. Stop the relay first; then start relays with
    /// --database URL
    Copy {
        /// The empty target database (postgres://user:password@host/db); from the environment
        /// it stays off the command line, where `ps` would show its password
        #[arg(
            long,
            value_name = "URL",
            env = "REFLECTO_COPY_TO",
            hide_env_values = true
        )]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user
    Add {
        /// The user's name (what --user takes elsewhere)
        name: String,
    },
    /// List users
    List {
        /// As JSON on stdout (times in RFC 3339)
        #[arg(long)]
        json: bool,
    },
    /// Remove a user with their tokens, devices and messages
    Remove {
        /// The user to remove
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it on stdout, this once
    Create {
        /// The user the token sends to (their devices receive)
        #[arg(long, required_unless_present = "admin")]
        user: Option<String>,
        /// Make an admin token (rfa_live_…) for the operator API instead: no user, cannot send
        #[arg(long, conflicts_with_all = ["user", "priority_cap", "scope_devices", "test"])]
        admin: bool,
        /// Shown on devices as the notification's source
        #[arg(long)]
        label: String,
        /// Highest priority the token may send
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["min", "low", "default", "high", "urgent"]).map(|s| parse_priority(&s).expect("a listed value")))]
        priority_cap: Option<Priority>,
        /// Comma list of device ids/labels (or all/mobile/desktop) the token may reach
        #[arg(long)]
        scope_devices: Option<String>,
        /// Make an rfk_test_ token
        #[arg(long)]
        test: bool,
    },
    /// List tokens (never their secrets)
    List {
        /// Only this user's
        #[arg(long)]
        user: Option<String>,
        /// As JSON on stdout (times in RFC 3339)
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its tok_ id; effective on the relay's next request
    Revoke {
        /// The token's tok_ id (from `admin token list`), not its secret
        token_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Add a device directly (without pairing); prints its dev_ id and its device credential
    Add {
        /// The user who owns the device
        #[arg(long)]
        user: String,
        /// The device's name, for --device selectors and status lines
        #[arg(long)]
        label: String,
        #[arg(long = "type", value_parser = clap::builder::PossibleValuesParser::new(["android", "extension"]).map(|s| parse_device_type(&s).expect("a listed value")))]
        device_type: DeviceType,
        /// FCM registration token (android only)
        #[arg(
            long,
            required_if_eq("device_type", "android"),
            allow_hyphen_values = true
        )]
        fcm_token: Option<String>,
        /// X25519 public key (base64url): the device's notifications are sealed to it (SPEC §1.12)
        // base64url keys start with '-' one time in 64: that is a value, not a flag.
        #[arg(long, value_name = "KEY", value_parser = parse_public_key, allow_hyphen_values = true)]
        public_key: Option<String>,
    },
    /// List devices
    List {
        /// Only this user's
        #[arg(long)]
        user: Option<String>,
        /// As JSON on stdout (times in RFC 3339)
        #[arg(long)]
        json: bool,
    },
    /// Remove a device; its undelivered jobs fail with device_removed
    Remove {
        /// The device's dev_ id (from `admin device list`)
        device_id: String,
    },
}

impl AdminCommand {
    /// Whether a listing asked for JSON (then a failure is printed as JSON too).
    pub fn wants_json(&self) -> bool {
        matches!(
            self,
            AdminCommand::User(UserCommand::List { json: true })
                | AdminCommand::Token(TokenCommand::List { json: true, .. })
                | AdminCommand::Device(DeviceCommand::List { json: true, .. })
                | AdminCommand::Audit { json: true, .. }
        )
    }
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse()
        .map_err(|()| "one of min, low, default, high, urgent".to_owned())
}

fn parse_device_type(s: &str) -> Result<DeviceType, String> {
    DeviceType::parse(s).ok_or_else(|| "android or extension".to_owned())
}

/// Any 32-byte X25519 key in base64url, padded or not; stored without padding.
fn parse_public_key(s: &str) -> Result<String, String> {
    crate::api::sealed::parse_public_key(s)
        .map(|k| crate::api::sealed::encode(k.as_bytes()))
        .map_err(|e| e.to_string())
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) => {
            ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
        }
        StoreError::Conflict(why) => ApiError::new(ErrorCode::Conflict, why),
        other => internal("store", other),
    }
}

/// Where a backup goes, checked before copying: a missing directory, a directory named as the
/// file, or a file that exists without `--force` are the operator's mistakes (exit 2), and
/// never create a directory or replace a file they did not mean to.
fn check_backup_target(file: &Path, force: bool) -> Result<(), ApiError> {
    let io = |why: String| ApiError::new(ErrorCode::IoError, why);
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(io(format!(
                "cannot write the backup {}: {} is not a directory",
                file.display(),
                dir.display()
            )));
        }
        Err(e) => {
            return Err(io(format!(
                "cannot write the backup {}: directory {}: {e}; create it first",
                file.display(),
                dir.display()
            )));
        }
    }
    match std::fs::metadata(file) {
        Ok(meta) if meta.is_dir() => Err(io(format!(
            "{} is a directory; name the backup file, e.g. {}",
            file.display(),
            file.join(crate::store::DB_FILE).display()
        ))),
        Ok(_) if !force => Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{} already exists; pass --force to overwrite it, or name another file",
                file.display()
            ),
        )),
        _ => Ok(()),
    }
}

impl StoreArgs {
    /// `--data-dir`, else the config file's `data_dir`, else the platform default; the
    /// database URL from `--database`, else the config file's.
    pub fn locate(&self) -> Result<Database, ApiError> {
        let file = match &self.config {
            Some(path) => {
                PartialConfig::from_file(path).map_err(|e| ApiError::new(ErrorCode::IoError, e))?
            }
            None => PartialConfig::default(),
        };
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let url = self.database.clone().or(file.database);
        Database::choose(url.as_deref(), &data_dir)
            .map_err(|e| ApiError::new(ErrorCode::UsageError, e))
    }
}

/// Opens the located store (an SQLite one is created if missing: callers check first).
pub async fn open_store(database: &Database) -> Result<Store, ApiError> {
    Store::open(database, Limits::default(), now_ms())
        .await
        .map_err(|e| database.open_failed(e))
}

/// The store `admin` works on. Only `user add` may create a new store: a typo in the path
/// must not look like an empty relay.
async fn open(args: &AdminArgs) -> Result<(Store, Database), ApiError> {
    let database = args.store.locate()?;
    // Refused before connecting: opening would migrate (write to) the database it was asked
    // to back up, and the answer is the same whether or not the server is up.
    if matches!(args.command, AdminCommand::Backup { .. })
        && matches!(database, Database::Postgres(_))
    {
        return Err(ApiError::new(
            ErrorCode::UsageError,
            "`admin backup` copies an SQLite store; back up a PostgreSQL database with pg_dump (e.g. `pg_dump --format=custom --file=FILE URL`) and restore with pg_restore",
        ));
    }
    let creates = matches!(args.command, AdminCommand::User(UserCommand::Add { .. }));
    if let Database::Sqlite(data_dir) = &database {
        let db = data_dir.join(crate::store::DB_FILE);
        if !creates && !db.exists() {
            return Err(ApiError::new(
                ErrorCode::StoreNotFound,
                format!(
                    "no relay store at {} (looked for {}); check --data-dir / REFLECTO_DATA_DIR, or create one with `reflecto admin --data-dir {} user add NAME`",
                    data_dir.display(),
                    db.display(),
                    data_dir.display()
                ),
            ));
        }
    }
    let store = open_store(&database).await?;
    Ok((store, database))
}

/// `admin copy --to URL`: the relay must be stopped (its data-dir lock free), or sends it
/// accepted during the copy would be left behind.
async fn copy(store: &Store, source: &Database, to: &str) -> Result<(), ApiError> {
    let Database::Sqlite(dir) = source else {
        return Err(ApiError::new(
            ErrorCode::UsageError,
            "admin copy reads the SQLite store in --data-dir; between PostgreSQL databases use pg_dump and pg_restore",
        ));
    };
    let target =
        Database::choose(Some(to), dir).map_err(|e| ApiError::new(ErrorCode::UsageError, e))?;
    let Database::Postgres(url) = &target else {
        return Err(ApiError::new(
            ErrorCode::UsageError,
            "--to takes a postgres:// URL",
        ));
    };
    let _lock = crate::relay::lock::acquire(dir)?;
    eprintln!("copying {} into {}", source.describe(), target.describe());
    let copied = store
        .copy_to(url, |table, rows| eprintln!("  {table:<20} {rows:>8} rows"))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(why) => ApiError::new(ErrorCode::Conflict, why),
            other => target.open_failed(other),
        })?;
    let total: u64 = copied.iter().map(|(_, n)| n).sum();
    eprintln!(
        "copied {total} rows; start the relays with --database {} (the SQLite store is left as it was)",
        target.describe()
    );
    Ok(())
}

/// JSON as the API writes it: every `…_at` Unix-ms number becomes RFC 3339.
fn print_json<T: Serialize>(value: &T) -> Result<(), ApiError> {
    fn times_to_rfc3339(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Array(items) => items.iter_mut().for_each(times_to_rfc3339),
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match v.as_i64() {
                        Some(ms) if key.ends_with("_at") => {
                            *v = serde_json::Value::String(rfc3339(ms));
                        }
                        _ => times_to_rfc3339(v),
                    }
                }
            }
            _ => {}
        }
    }
    let mut value = serde_json::to_value(value).map_err(|e| internal("rendering JSON", e))?;
    times_to_rfc3339(&mut value);
    println!(
        "{}",
        serde_json::to_string_pretty(&value).map_err(|e| internal("rendering JSON", e))?
    );
    Ok(())
}

pub fn run(args: AdminArgs) -> Result<(), ApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| internal("starting the runtime", e))?
        .block_on(run_admin(args))
}

/// Where the commands run: on the store itself, or through a relay's operator API. Both give
/// back the API's views, printed by one set of functions, so the output is the same.
enum Target {
    Local { store: Store, database: Database },
    Remote(AdminClient),
}

/// An operator API error as the CLI reports it: a store fault is the CLI's own failure.
fn op_error(e: OpError) -> ApiError {
    match e {
        OpError::Api(e) => e,
        OpError::Store(e) => store_error(e),
    }
}

impl Target {
    fn operator(store: &Store) -> Operator<'_> {
        Operator {
            store,
            actor: Actor::Cli,
            now: now_ms(),
        }
    }

    /// One operation on the store (a store fault is the CLI's own failure) or through the
    /// operator API, whichever this target is.
    async fn either<'a, T>(
        &'a self,
        local: impl AsyncFnOnce(Operator<'a>) -> Result<T, OpError>,
        remote: impl AsyncFnOnce(&'a AdminClient) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        match self {
            Target::Local { store, .. } => local(Self::operator(store)).await.map_err(op_error),
            Target::Remote(c) => remote(c).await,
        }
    }

    /// The code, and through `--server` the relay's link to it.
    async fn pair(&self, user: &str) -> Result<(String, Option<String>), ApiError> {
        self.either(
            async |op| op.pair(user).await.map(|(code, _)| (code, None)),
            async |c| c.pair(user).await.map(|p| (p.code, Some(p.link))),
        )
        .await
    }

    /// Up to `limit` entries, newest first, a page at a time.
    async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, ApiError> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        while entries.len() < limit {
            let before = entries.last().map(|e| e.id);
            let want = (limit - entries.len()).min(MAX_PAGE);
            let page = self
                .either(
                    async |op| op.audit_page(before, want).await,
                    async |c| c.audit(before, want).await.map(|page| page.items),
                )
                .await?;
            let done = page.len() < want;
            entries.extend(page);
            if done {
                break;
            }
        }
        Ok(entries)
    }

    /// The local store, for what only works on one (`device add`, `backup`, `copy`).
    fn local(&self, what: &str) -> Result<(&Store, &Database), ApiError> {
        match self {
            Target::Local { store, database } => Ok((store, database)),
            Target::Remote(c) => Err(ApiError::new(
                ErrorCode::UsageError,
                format!(
                    "`admin {what}` works on the relay's store, not through --server {}; run it where the store is (without --server)",
                    c.server()
                ),
            )),
        }
    }
}

/// The admin token for `--server`: `--token-stdin`, else `REFLECTO_ADMIN_TOKEN`, else the
/// profile's from `reflecto login --admin`.
fn admin_token(remote: &RemoteArgs, server: &str) -> Result<Secret, ApiError> {
    let token = if remote.token_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| internal("reading the admin token from stdin", e))?;
        Some(line.trim().to_owned())
    } else {
        std::env::var("REFLECTO_ADMIN_TOKEN")
            .ok()
            .map(|t| t.trim().to_owned())
    };
    match token.filter(|t| !t.is_empty()) {
        Some(t) => Ok(Secret::new(t)),
        None => super::auth::stored_admin_token(&remote.profile, server)?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoStoredToken,
                format!(
                    "--server needs an admin token: set REFLECTO_ADMIN_TOKEN, pass --token-stdin, or run `reflecto login --admin --server URL` (profile '{}')",
                    remote.profile
                ),
            )
        }),
    }
}

async fn run_admin(args: AdminArgs) -> Result<(), ApiError> {
    let target = match &args.remote.server {
        Some(server) => Target::Remote(AdminClient::new(
            server,
            admin_token(&args.remote, server)?,
        )?),
        None => {
            let (store, database) = open(&args).await?;
            Target::Local { store, database }
        }
    };
    let mut command = args.command;
    // `pair --qr` on a local store: the public URL is found before a code is spent.
    if let (
        AdminCommand::Pair {
            qr: true,
            public_url,
            ..
        },
        Target::Local { .. },
    ) = (&mut command, &target)
    {
        *public_url = Some(super::admin_pair::public_url(
            public_url.as_deref(),
            &args.store,
        )?);
    }
    run_command(&target, command).await
}

async fn run_command(target: &Target, command: AdminCommand) -> Result<(), ApiError> {
    match command {
        AdminCommand::User(UserCommand::Add { name }) => {
            let added = target
                .either(
                    async |op| op.add_user(&name).await,
                    async |c| c.add_user(&name).await,
                )
                .await?;
            println!("{}", added.name);
        }
        AdminCommand::User(UserCommand::List { json }) => {
            let users = target
                .either(
                    async |op| op.list_users().await,
                    async |c| c.list_users().await,
                )
                .await?;
            if json {
                return print_json(&users);
            }
            for u in users {
                println!("{}\t{}", u.name, u.created_at);
            }
        }
        AdminCommand::User(UserCommand::Remove { name }) => {
            target
                .either(
                    async |op| op.remove_user(&name).await,
                    async |c| c.remove_user(&name).await,
                )
                .await?
        }
        AdminCommand::Token(TokenCommand::Create {
            user,
            admin,
            label,
            priority_cap,
            scope_devices,
            test,
        }) => {
            let request = NewTokenRequest {
                admin,
                user,
                label,
                priority_cap,
                scope_devices,
                test,
            };
            let created = target
                .either(
                    async |op| op.create_token(request.clone()).await,
                    async |c| c.create_token(&request).await,
                )
                .await?;
            let owner = created.record.user.as_deref().unwrap_or("the operator API");
            eprintln!(
                "created {} for {owner} (shown once; store it now)",
                created.record.id
            );
            println!("{}", created.token);
        }
        AdminCommand::Token(TokenCommand::List { user, json }) => {
            let user = user.as_deref();
            let tokens = target
                .either(
                    async |op| op.list_tokens(user).await,
                    async |c| c.list_tokens(user).await,
                )
                .await?;
            if json {
                return print_json(&tokens);
            }
            for t in tokens {
                let state = if t.revoked { "revoked" } else { "active" };
                let used = t.last_used_at.as_deref().unwrap_or("never");
                if t.admin {
                    println!(
                        "{}\t(admin)\t{}\t{state}\tadmin\tlast_used={used}",
                        t.id, t.label
                    );
                    continue;
                }
                let cap = t.priority_cap.map_or("-".to_owned(), |p| p.to_string());
                let scope = t.scope_devices.as_deref().unwrap_or("-");
                println!(
                    "{}\t{}\t{}\t{state}\tcap={cap}\tscope={scope}\tlast_used={used}",
                    t.id,
                    t.user.as_deref().unwrap_or("-"),
                    t.label
                );
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { token_id }) => {
            target
                .either(
                    async |op| op.revoke_token(&token_id).await,
                    async |c| c.revoke_token(&token_id).await,
                )
                .await?;
            eprintln!("revoked {token_id}");
        }
        AdminCommand::Device(DeviceCommand::Add {
            user,
            label,
            device_type,
            fcm_token,
            public_key,
        }) => {
            let (store, _) = target.local("device add")?;
            let new = NewDevice {
                label,
                device_type,
                fcm_token,
                public_key,
                webpush: None,
            };
            let (id, credential) = Target::operator(store)
                .add_device(&user, new)
                .await
                .map_err(op_error)?;
            println!("{id}");
            eprintln!(
                "device credential (shown once; acknowledges messages, and an extension reads GET /v1/sync with it):"
            );
            println!("{credential}");
        }
        AdminCommand::Device(DeviceCommand::List { user, json }) => {
            let user = user.as_deref();
            let devices = target
                .either(
                    async |op| op.list_devices(user).await,
                    async |c| c.list_devices(user).await,
                )
                .await?;
            if json {
                return print_json(&devices);
            }
            for d in devices {
                // SPEC §2.5: a device that never connected is not called reachable.
                let reach = match (d.reachable, &d.last_seen_at) {
                    (false, _) => "unreachable".to_owned(),
                    (true, None) => "never seen".to_owned(),
                    (true, Some(at)) => format!("seen {at}"),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{reach}",
                    d.id, d.user, d.label, d.device_type
                );
            }
        }
        AdminCommand::Device(DeviceCommand::Remove { device_id }) => {
            target
                .either(
                    async |op| op.remove_device(&device_id).await,
                    async |c| c.remove_device(&device_id).await,
                )
                .await?
        }
        AdminCommand::Pair {
            user,
            qr,
            public_url,
        } => {
            let (code, relay_link) = target.pair(&user).await?;
            // Through --server the relay's own link; on a local store, run_admin's public URL.
            let link =
                relay_link.or_else(|| public_url.map(|url| crate::qr::pairing_link(&url, &code)));
            super::admin_pair::print_pairing(&user, &code, link.filter(|_| qr).as_deref());
        }
        AdminCommand::Audit { json, limit } => {
            let entries = target.audit(limit as usize).await?;
            if json {
                return print_json(&entries);
            }
            for e in entries {
                let ip = e.ip.as_deref().unwrap_or("-");
                let what = if e.target.is_empty() { "-" } else { &e.target };
                println!("{}\t{}\t{}\t{what}\t{ip}", e.at, e.actor, e.action);
            }
        }
        AdminCommand::Backup { file, force } => {
            let (store, _) = target.local("backup")?;
            check_backup_target(&file, force)?;
            store.backup(&file).await.map_err(|e| match e {
                // The copy could not be written where it was asked to go (a read-only or
                // full file system, no permission): the user's to fix, not a bug.
                crate::store::StoreError::Unavailable(why) => ApiError::new(
                    ErrorCode::IoError,
                    format!("cannot write the backup: {why}"),
                ),
                other => store_error(other),
            })?;
            eprintln!("backup written to {}", file.display());
        }
        AdminCommand::Copy { to } => {
            let (store, database) = target.local("copy")?;
            copy(store, database, &to).await?
        }
    }
    Ok(())
}
