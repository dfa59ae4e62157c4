//! A throwaway PostgreSQL cluster: `initdb` in a temporary folder, `pg_ctl` serving on a unix
//! socket there (and on no TCP address), stopped and removed when dropped. Used by the tests,
//! `jol demo --store postgres` and the benchmarks, with Debian's `postgresql` package (or any
//! PostgreSQL whose `initdb` is on the PATH or under `/usr/lib/postgresql/*/bin`). As root,
//! PostgreSQL runs as the `postgres` user (it refuses to run as root).
//!
//! It knows nothing of Jol: a database is handed out as its libpq connection string, which the
//! caller turns into the store's settings (`jol::store::PgSettings::new`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Why a throwaway cluster could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("PostgreSQL is not installed (no initdb on the PATH or under /usr/lib/postgresql/*/bin): install Debian's `postgresql`")]
    NotInstalled,
    #[error("cannot make the cluster's folder: {0}")]
    Dir(#[from] std::io::Error),
    #[error("{command} failed: {detail}")]
    Command { command: String, detail: String },
}

/// How a cluster is stopped (`pg_ctl -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Wait for nothing: sessions are ended, a checkpoint is written.
    Fast,
    /// Like a crash: no checkpoint, recovery from the WAL on the next start.
    Immediate,
}

impl Shutdown {
    fn mode(self) -> &'static str {
        match self {
            Shutdown::Fast => "fast",
            Shutdown::Immediate => "immediate",
        }
    }
}

/// A running throwaway cluster.
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run PostgreSQL's commands as this user (when we are root).
    user: Option<&'static str>,
}

const SUPERUSER: &str = "jol";

impl Cluster {
    /// `initdb` and start a cluster; `settings` are extra `-c name=value` server settings.
    pub fn start(settings: &[(&str, &str)]) -> Result<Cluster, ClusterError> {
        let bin = find_bin().ok_or(ClusterError::NotInstalled)?;
        let dir = tempfile::Builder::new().prefix("jol-pg-").tempdir()?;
        let user = is_root().then_some("postgres");
        if let Some(user) = user {
            run(Command::new("chown").arg(user).arg(dir.path()))?;
        }
        // The server listens on no TCP address: the port only names its socket, in a folder of
        // its own, so any free one does.
        let port = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let cluster = Cluster {
            bin,
            dir,
            port,
            user,
        };
        let data = cluster.data_dir();
        cluster.pg("initdb", |c| {
            c.arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--no-instructions",
            ])
        })?;
        let mut conf = String::from("listen_addresses = ''\nmax_connections = 200\nfsync = on\n");
        for (name, value) in settings {
            conf.push_str(&format!("{name} = '{value}'\n"));
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))?;
        cluster.start_server()?;
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder of the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn start_server(&self) -> Result<(), ClusterError> {
        let (data, log) = (self.data_dir(), self.dir.path().join("server.log"));
        let options = format!("-k {} -p {}", self.dir.path().display(), self.port);
        self.pg("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options, "start"])
        })
        .map(|_| ())
    }

    /// Stop the server.
    pub fn stop(&self, how: Shutdown) -> Result<(), ClusterError> {
        let data = self.data_dir();
        self.pg("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-w", "-m", how.mode(), "stop"])
        })
        .map(|_| ())
    }

    /// Start the server again after [`Cluster::stop`].
    pub fn restart(&self) -> Result<(), ClusterError> {
        self.start_server()
    }

    /// Create a database and return its connection string.
    pub fn database(&self, name: &str) -> Result<String, ClusterError> {
        let port = self.port.to_string();
        self.pg("createdb", |c| {
            c.arg("-h")
                .arg(self.dir.path())
                .args(["-p", &port, "-U", SUPERUSER, name])
        })?;
        Ok(self.url(name))
    }

    /// The connection string of a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={database}",
            self.dir.path().display(),
            self.port
        )
    }

    /// Run one of PostgreSQL's programs (as `postgres` when we are root).
    fn pg(
        &self,
        program: &str,
        args: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Result<Output, ClusterError> {
        let path = self.bin.join(program);
        let mut command = match self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        // PostgreSQL's programs must be able to enter the working folder.
        command.current_dir(self.dir.path());
        run(args(&mut command))
    }
}

/// One cluster for the whole process (the unit tests' stores on PostgreSQL, each in a database
/// of its own): started on first use, stopped by a watchdog shell when the process exits (a static
/// is never dropped).
pub fn shared() -> Result<&'static Cluster, String> {
    static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let cluster = Cluster::start(&[]).map_err(|e| e.to_string())?;
            cluster.stop_when_gone(std::process::id());
            Ok(cluster)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A database of its own in the [`shared`] cluster: its connection string.
pub fn fresh_database() -> Result<String, String> {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let cluster = shared()?;
    let name = format!("t{}", NEXT.fetch_add(1, Ordering::SeqCst));
    cluster.database(&name).map_err(|e| e.to_string())
}

impl Cluster {
    /// Stop the server and remove its folder once process `pid` has exited.
    fn stop_when_gone(&self, pid: u32) {
        let pg_ctl = self.bin.join("pg_ctl");
        let as_user = self
            .user
            .map_or(String::new(), |u| format!("runuser -u {u} -- "));
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; cd /; {as_user}'{}' -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
            pg_ctl.display(),
            self.data_dir().display(),
            self.dir.path().display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop(Shutdown::Immediate);
    }
}

fn run(command: &mut Command) -> Result<Output, ClusterError> {
    let described = format!("{command:?}");
    let output = command.output().map_err(|e| ClusterError::Command {
        command: described.clone(),
        detail: e.to_string(),
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ClusterError::Command {
            command: described,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// PostgreSQL's programs: beside `initdb` on the PATH, or the newest Debian version.
fn find_bin() -> Option<PathBuf> {
    // On the PATH maybe as a link: PostgreSQL's programs are beside the file it points to.
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .filter_map(|d| std::fs::canonicalize(d.join("initdb")).ok())
            .find_map(|initdb| initdb.parent().map(Path::to_path_buf))
    });
    if let Some(dir) = on_path.filter(|d| d.join("pg_ctl").is_file()) {
        return Some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}
