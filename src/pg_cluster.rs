//! A throwaway PostgreSQL cluster in a temp dir, so tests and benchmarks run against a real server.
//!
//! The server binaries come from the machine (`apt-get install postgresql`); nothing is
//! downloaded. `initdb` refuses to run as root, so under root the cluster is created and run as
//! the `postgres` user through `runuser`. A cluster listens on 127.0.0.1 only, trusts every
//! local connection and runs with `fsync=off`: it holds nothing worth keeping. A test that needs
//! more of the server (TLS) starts its own cluster with [`PgCluster::start_with`].

use std::ffi::OsStr;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Enough for several relays, each with its own connection pool, on one cluster.
const MAX_CONNECTIONS: u32 = 300;
/// How long `pg_ctl start` may wait for the server to accept connections.
const START_TIMEOUT_SECS: u32 = 60;
/// A free port can be taken by someone else between our probe and the server's bind.
const START_ATTEMPTS: u32 = 3;

/// Names temp dirs and databases uniquely within this process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `$REFLECTO_PG_BIN` if set, else the
/// newest `/usr/lib/postgresql/*/bin` (Debian's layout), else a directory on `PATH` with both
/// `initdb` and `pg_ctl`. `None` when PostgreSQL is not installed.
pub fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REFLECTO_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    newest_debian_bin(Path::new("/usr/lib/postgresql")).or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    })
}

/// `/usr/lib/postgresql/<version>/bin` with the highest version, compared numerically (so 9.6
/// sorts below 15).
fn newest_debian_bin(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = version_key(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// "15" → [15], "9.6" → [9, 6]; `None` for a name that is not a version.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// A running PostgreSQL server in its own temp dir. Dropping it stops the server and removes
/// the dir; the one from [`shared`] is stopped by a watchdog when the process ends.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// What a cluster of its own adds to the default one: files in its data dir and settings for
/// `postgresql.conf`, e.g. `server.key` and `ssl = on` for a TLS server.
#[derive(Debug, Default, Clone)]
pub struct Extras {
    /// (file name in the data dir, contents); written mode 0600 (replacing a file initdb
    /// made, such as `pg_hba.conf`), owned by the server's user, as PostgreSQL demands of a
    /// private key.
    pub files: Vec<(String, Vec<u8>)>,
    /// (name, value) lines appended to `postgresql.conf`; a relative path in a value is relative
    /// to the data dir.
    pub settings: Vec<(String, String)>,
}

impl PgCluster {
    /// Creates a cluster in a fresh temp dir and starts it on a free port of 127.0.0.1, waiting
    /// until it accepts connections.
    pub fn start() -> io::Result<PgCluster> {
        PgCluster::start_with(&Extras::default())
    }

    /// [`PgCluster::start`] with `extras` in place before the server first starts.
    pub fn start_with(extras: &Extras) -> io::Result<PgCluster> {
        let bin = binaries().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL is not installed (apt-get install postgresql, or set REFLECTO_PG_BIN \
                 to the directory holding initdb and pg_ctl)",
            )
        })?;
        for tool in ["initdb", "pg_ctl", "postgres"] {
            if !bin.join(tool).is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no {tool} in {}", bin.display()),
                ));
            }
        }
        let mut cluster = PgCluster {
            bin,
            dir: fresh_temp_dir()?,
            port: 0,
            as_postgres: rustix::process::geteuid().is_root(),
        };
        // From here on, Drop cleans up whatever a failed step left behind.
        cluster.init()?;
        cluster.add(extras)?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            cluster.port = free_port()?;
            match cluster.launch() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one start attempt"))
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the cluster's default database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp dir holding the data dir, the server log and the socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a new, empty database with a unique name and returns its URL, so each test gets
    /// its own database on one shared cluster.
    pub fn create_database(&self) -> io::Result<String> {
        let name = format!(
            "reflecto_{}_{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg(&name)
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS")
            .stdin(Stdio::null())
            .output()?;
        check(&out, "createdb")?;
        Ok(self.database_url(&name))
    }

    fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn init(&self) -> io::Result<()> {
        if self.as_postgres {
            let out = Command::new("chown")
                .arg("postgres:")
                .arg(&self.dir)
                .output()?;
            check(
                &out,
                "chown postgres: (running as root, the server runs as postgres)",
            )?;
        }
        let out = self
            .tool("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
            // The C locale exists everywhere; a missing $LANG locale would fail initdb.
            .args(["--locale=C", "--no-sync"])
            .output()?;
        check(&out, "initdb")
    }

    fn add(&self, extras: &Extras) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        for (name, contents) in &extras.files {
            let path = self.data_dir().join(name);
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?
                .write_all(contents)?;
            if self.as_postgres {
                let out = Command::new("chown").arg("postgres:").arg(&path).output()?;
                check(&out, "chown postgres: (a server file)")?;
            }
        }
        if !extras.settings.is_empty() {
            // Appending keeps the file's owner; later lines win over initdb's.
            let mut conf = std::fs::OpenOptions::new()
                .append(true)
                .open(self.data_dir().join("postgresql.conf"))?;
            for (name, value) in &extras.settings {
                writeln!(conf, "{name} = '{}'", value.replace('\'', "''"))?;
            }
        }
        Ok(())
    }

    fn launch(&self) -> io::Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections={MAX_CONNECTIONS}",
            self.port,
            self.dir.display()
        );
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", &START_TIMEOUT_SECS.to_string(), "start", "-o"])
            .arg(options)
            .output()?;
        check(&out, "pg_ctl start").map_err(|e| {
            io::Error::other(format!(
                "{e}\nserver log (last lines):\n{}",
                self.log_tail()
            ))
        })
    }

    /// `pg_ctl stop -m immediate`: no checkpoint, nothing here is kept.
    fn stop(&self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// A server tool, run as `postgres` when we are root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args([OsStr::new("-u"), OsStr::new("postgres"), OsStr::new("--")]);
            c.arg(program);
            c
        } else {
            Command::new(program)
        };
        // The postgres user may not be able to enter our working directory.
        command.current_dir(&self.dir).stdin(Stdio::null());
        command
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Starts a detached shell that waits for this process to end, then stops the server and
    /// removes its dir: the shared cluster lives in a static, which is never dropped. It runs
    /// in its own process group, so a Ctrl-C or a test runner's kill of ours does not end it.
    fn spawn_watchdog(&self) -> io::Result<()> {
        use std::os::unix::process::CommandExt;
        let runas = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "trap '' INT TERM HUP; while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {runas}\"$1\" -D \"$2\" -m immediate -w stop; rm -rf \"$3\"",
            pid = std::process::id()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("watchdog")
            .arg(self.bin.join("pg_ctl"))
            .arg(self.data_dir())
            .arg(&self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            // Inherited pipes would keep a test runner waiting for the watchdog.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(drop)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            self.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The process's one cluster, started on first use and stopped by a watchdog after the process
/// exits. Tests share it and each takes its own database with [`PgCluster::create_database`].
pub fn shared() -> io::Result<&'static PgCluster> {
    static SHARED: OnceLock<Result<PgCluster, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let cluster = PgCluster::start().map_err(|e| e.to_string())?;
            cluster
                .spawn_watchdog()
                .map_err(|e| format!("could not start the cluster's watchdog: {e}"))?;
            Ok(cluster)
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

fn fresh_temp_dir() -> io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    loop {
        let dir = std::env::temp_dir().join(format!(
            "reflecto-pg-{}-{}-{nanos}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            other => return other.map(|()| dir),
        }
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn check(out: &Output, what: &str) -> io::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        String::from_utf8_lossy(&out.stdout).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// PostgreSQL is installed, or the test cannot run: under `CI` that fails the test.
    fn installed() -> bool {
        let found = binaries().is_some();
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required under CI (apt-get install postgresql)"
            );
            eprintln!("skipped: PostgreSQL not found (apt-get install postgresql)");
        }
        found
    }

    fn psql(cluster: &PgCluster, url: &str, sql: &str) -> String {
        let out = Command::new(cluster.bin.join("psql"))
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-tAc", sql, url])
            .output()
            .unwrap();
        check(&out, "psql").unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn accepts(port: u16) -> bool {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    /// Waits for a condition the watchdog brings about, without asserting how fast.
    fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        condition()
    }

    #[test]
    fn version_dirs_sort_numerically() {
        let root = std::env::temp_dir().join(format!("reflecto-pgbin-{}", std::process::id()));
        for version in ["9.6", "15", "13", "notes"] {
            std::fs::create_dir_all(root.join(version).join("bin")).unwrap();
            std::fs::write(root.join(version).join("bin/initdb"), "").unwrap();
        }
        let newest = newest_debian_bin(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(newest, Some(root.join("15").join("bin")));
        assert_eq!(version_key("9.6"), Some(vec![9, 6]));
        assert_eq!(version_key("main"), None);
    }

    #[test]
    fn each_created_database_is_its_own() {
        if !installed() {
            return;
        }
        let cluster = shared().unwrap();
        let (a, b) = (
            cluster.create_database().unwrap(),
            cluster.create_database().unwrap(),
        );
        assert_ne!(a, b);
        assert!(a.starts_with(&format!(
            "postgres://postgres@127.0.0.1:{}/",
            cluster.port()
        )));
        assert_eq!(psql(cluster, &a, "select 1"), "1");
        assert_eq!(psql(cluster, &b, "select 1"), "1");
        psql(cluster, &a, "create table marker (x int)");
        let count = "select count(*) from pg_tables where tablename = 'marker'";
        assert_eq!(psql(cluster, &a, count), "1");
        assert_eq!(psql(cluster, &b, count), "0");
        let max = psql(cluster, &cluster.url(), "show max_connections");
        assert!(max.parse::<u32>().unwrap() >= 200, "max_connections {max}");
    }

    #[test]
    fn dropping_a_cluster_stops_its_server_and_removes_its_dir() {
        if !installed() {
            return;
        }
        let cluster = PgCluster::start().unwrap();
        let (port, dir) = (cluster.port(), cluster.dir().to_owned());
        assert_eq!(psql(&cluster, &cluster.url(), "select 1"), "1");
        drop(cluster);
        assert!(!accepts(port), "the server still accepts on port {port}");
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }

    #[test]
    fn a_cluster_of_its_own_gets_its_files_and_settings() {
        if !installed() {
            return;
        }
        let cluster = PgCluster::start_with(&Extras {
            files: vec![("marker.txt".into(), b"kept".to_vec())],
            settings: vec![("cluster_name".into(), "it's mine".into())],
        })
        .unwrap();
        let marker = cluster.dir().join("data").join("marker.txt");
        assert_eq!(std::fs::read(&marker).unwrap(), b"kept");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&marker).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let url = cluster.url();
        assert_eq!(psql(&cluster, &url, "show cluster_name"), "it's mine");
    }

    /// Run by the test below in a child process: starts the shared cluster, prints its port and
    /// dir, and exits without stopping it.
    #[test]
    #[ignore = "a child process of shared_cluster_is_stopped_after_its_process_exits"]
    fn shared_cluster_child() {
        if std::env::var_os("REFLECTO_PG_CLUSTER_CHILD").is_none() {
            return;
        }
        let cluster = shared().unwrap();
        println!(
            "cluster port={} dir={}",
            cluster.port(),
            cluster.dir().display()
        );
    }

    #[test]
    fn shared_cluster_is_stopped_after_its_process_exits() {
        if !installed() {
            return;
        }
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "pg_cluster::tests::shared_cluster_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("REFLECTO_PG_CLUSTER_CHILD", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}");
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("cluster port=").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no cluster line in: {stdout}"));
        let (port, dir) = line.split_once(" dir=").unwrap();
        let (port, dir): (u16, PathBuf) = (port.parse().unwrap(), PathBuf::from(dir));
        assert!(
            eventually(|| !accepts(port) && !dir.exists()),
            "the shared cluster on port {port} outlived its process"
        );
    }
}
