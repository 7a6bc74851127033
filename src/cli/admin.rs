//! `reflecto admin`: operator commands on the relay's store. They open the same SQLite file
//! as a running relay, which sees every change on its next request.

use super::internal;
use crate::api::{ApiError, DeviceType, ErrorCode, Priority};
use crate::server::config::{PartialConfig, default_data_dir};
use crate::server::messages_rfc3339 as rfc3339;
use crate::store::limits::Limits;
use crate::store::{Database, NewDevice, NewToken, Store, StoreError, now_ms};
use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct AdminArgs {
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
    #[command(subcommand)]
    pub command: AdminCommand,
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
    /// Print a 6-digit pairing code for a user, valid 10 minutes
    Pair {
        #[arg(long)]
        user: String,
    },
    /// Write a consistent copy of the SQLite store to FILE (0600) while the relay runs; restore
    /// by copying it to reflecto.db in a stopped relay's data dir (PostgreSQL: use pg_dump)
    Backup { file: PathBuf },
    /// Copy the whole SQLite store (users, token hashes, devices, codes, messages, jobs,
    /// counters, the VAPID key) into an empty PostgreSQL database, so the relay moves without
    /// re-pairing or re-issuing tokens. Stop the relay first; then start relays with
    /// --database URL
    Copy {
        /// The empty target database (postgres://user:password@host/db)
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user
    Add { name: String },
    /// List users
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a user with their tokens, devices and messages
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it on stdout, this once
    Create {
        #[arg(long)]
        user: String,
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
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its tok_ id; effective on the relay's next request
    Revoke { token_id: String },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Add a device directly (without pairing); prints its dev_ id, and for an extension its credential
    Add {
        #[arg(long)]
        user: String,
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
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a device; its undelivered jobs fail with device_removed
    Remove { device_id: String },
}

impl AdminCommand {
    /// Whether a listing asked for JSON (then a failure is printed as JSON too).
    pub fn wants_json(&self) -> bool {
        matches!(
            self,
            AdminCommand::User(UserCommand::List { json: true })
                | AdminCommand::Token(TokenCommand::List { json: true, .. })
                | AdminCommand::Device(DeviceCommand::List { json: true, .. })
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

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) => {
            ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
        }
        StoreError::Conflict(why) => ApiError::new(ErrorCode::Conflict, why),
        other => internal("store", other),
    }
}

/// `--data-dir`, else the config file's `data_dir`, else the platform default. Only `user
/// add` may create a new store: a typo in the path must not look like an empty relay.
async fn open(args: &AdminArgs) -> Result<(Store, Database), ApiError> {
    let file = match &args.config {
        Some(path) => {
            PartialConfig::from_file(path).map_err(|e| ApiError::new(ErrorCode::IoError, e))?
        }
        None => PartialConfig::default(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(default_data_dir);
    let url = args.database.clone().or(file.database);
    let database = Database::choose(url.as_deref(), &data_dir)
        .map_err(|e| ApiError::new(ErrorCode::UsageError, e))?;
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
    let db = data_dir.join(crate::store::DB_FILE);
    if matches!(database, Database::Sqlite(_)) && !creates && !db.exists() {
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
    let store = Store::open(&database, Limits::default(), now_ms())
        .await
        .map_err(|e| database.open_failed(e))?;
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
    let _lock = crate::server::lock::acquire(dir)?;
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
        .block_on(run_on_store(args))
}

async fn run_on_store(args: AdminArgs) -> Result<(), ApiError> {
    let (store, args_database_dir) = open(&args).await?;
    let now = now_ms();
    match args.command {
        AdminCommand::User(UserCommand::Add { name }) => {
            if name.trim().is_empty() {
                return Err(ApiError::new(
                    ErrorCode::UsageError,
                    "user name must not be empty",
                ));
            }
            let user = store
                .add_user(name.trim(), now)
                .await
                .map_err(store_error)?;
            println!("{}", user.name);
        }
        AdminCommand::User(UserCommand::List { json }) => {
            let users = store.list_users().await.map_err(store_error)?;
            if json {
                return print_json(&users);
            }
            for u in users {
                println!("{}\t{}", u.name, rfc3339(u.created_at));
            }
        }
        AdminCommand::User(UserCommand::Remove { name }) => {
            store.remove_user(&name).await.map_err(store_error)?
        }
        AdminCommand::Token(TokenCommand::Create {
            user,
            label,
            priority_cap,
            scope_devices,
            test,
        }) => {
            let new = NewToken {
                user,
                label,
                priority_cap,
                scope_devices,
                test,
            };
            let (record, secret) = store.create_token(new, now).await.map_err(store_error)?;
            eprintln!(
                "created {} for {} (shown once; store it now)",
                record.id, record.user
            );
            println!("{}", secret.expose());
        }
        AdminCommand::Token(TokenCommand::List { user, json }) => {
            let tokens = store
                .list_tokens(user.as_deref())
                .await
                .map_err(store_error)?;
            if json {
                return print_json(&tokens);
            }
            for t in tokens {
                let state = if t.revoked { "revoked" } else { "active" };
                let cap = t.priority_cap.map_or("-".to_owned(), |p| p.to_string());
                let scope = t.scope_devices.as_deref().unwrap_or("-");
                let used = t.last_used_at.map_or("never".to_owned(), rfc3339);
                println!(
                    "{}\t{}\t{}\t{state}\tcap={cap}\tscope={scope}\tlast_used={used}",
                    t.id, t.user, t.label
                );
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { token_id }) => {
            store
                .revoke_token(&token_id, now)
                .await
                .map_err(store_error)?;
            eprintln!("revoked {token_id}");
        }
        AdminCommand::Device(DeviceCommand::Add {
            user,
            label,
            device_type,
            fcm_token,
            public_key,
        }) => {
            let paired = store
                .add_device(
                    &user,
                    NewDevice {
                        label,
                        device_type,
                        fcm_token,
                        public_key,
                        webpush: None,
                    },
                    now,
                )
                .await
                .map_err(store_error)?;
            println!("{}", paired.device.id);
            if let Some(credential) = paired.credential {
                eprintln!("device credential for GET /v1/sync (shown once):");
                println!("{}", credential.expose());
            }
        }
        AdminCommand::Device(DeviceCommand::List { user, json }) => {
            let devices = store
                .list_devices(user.as_deref())
                .await
                .map_err(store_error)?;
            if json {
                return print_json(&devices);
            }
            for d in devices {
                let reach = if d.reachable {
                    "reachable"
                } else {
                    "unreachable"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{reach}",
                    d.id, d.user, d.label, d.device_type
                );
            }
        }
        AdminCommand::Device(DeviceCommand::Remove { device_id }) => store
            .remove_device(&device_id, now)
            .await
            .map_err(store_error)?,
        AdminCommand::Pair { user } => {
            let code = store
                .create_pair_code(&user, now)
                .await
                .map_err(store_error)?;
            eprintln!("pairing code for {user}, valid 10 minutes:");
            println!("{code}");
        }
        AdminCommand::Backup { file } => {
            store.backup(&file).await.map_err(store_error)?;
            eprintln!("backup written to {}", file.display());
        }
        AdminCommand::Copy { to } => copy(&store, &args_database_dir, &to).await?,
    }
    Ok(())
}
