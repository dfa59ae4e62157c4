//! The PostgreSQL engine: the store's ordered key-value table in a database several replicas of
//! one member share (see `docs/deploy-ha.md`).
//!
//! It owns the connection pool, the SQL of each key-value operation, the fencing of writes
//! ([`lease`]: only the replica holding the writer lease may commit them), the versioned schema
//! ([`schema`]), the change notifications that wake long-polls on every replica (`LISTEN` /
//! `NOTIFY`). The throwaway cluster of the tests, the demo and the benchmarks is not the node's:
//! it is the `throwaway-pg` crate (`tools/throwaway-pg`), a dev-dependency here.
//!
//! Every write is one transaction, durable when it returns (as the server's
//! `synchronous_commit` says), sent as one round trip. Writes by the writer are fenced by its
//! lease epoch; appends to a side log (the access log, the quarantine), which any replica makes,
//! are serialized by a transaction-scoped advisory lock on the log's counter instead.
//!
//! tokio-postgres is asynchronous while the store interface is blocking (the embedded engines
//! are), so the connections live on a small runtime of their own and each call waits for its
//! answer; a caller inside the node's runtime blocks its thread as it would on a disk write.

pub(crate) mod lease;
pub(crate) mod schema;

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls, Statement};

use super::kv::{Entry, Op};
use crate::budget::Budget;

/// The smallest pool: a side-log append holds a connection while it reads with another, and
/// the two side logs may append at once.
const MIN_POOL: usize = 4;

/// The channel writers notify after each commit.
pub(crate) const CHANGED: &str = "jol_changed";
/// The SQLSTATE `jol_fence` raises when a write comes from a replica that is not the writer.
const NOT_WRITER: &str = "JL001";

/// A fresh database for a unit test of the PostgreSQL engine, in the test process's throwaway
/// cluster, with short leases (600 ms, polled every 20 ms). PostgreSQL must be installed
/// (`cargo xtask install` installs it); `JOL_NO_POSTGRES=1` leaves the test out, loudly, by
/// returning `None`.
#[cfg(test)]
pub(crate) fn test_database(what: &str) -> Option<PgSettings> {
    if std::env::var_os("JOL_NO_POSTGRES").is_some() {
        eprintln!("JOL_NO_POSTGRES is set: {what} is NOT tested");
        return None;
    }
    let url = throwaway_pg::fresh_database().unwrap_or_else(|e| {
        panic!("{what} cannot be tested: {e} (`cargo xtask install` as root installs it)")
    });
    let mut settings = PgSettings::new(url);
    (settings.lease_ms, settings.poll_ms) = (600, 20);
    Some(settings)
}

/// The folder of `settings`' database in the test cluster's data directory, after a
/// checkpoint (so what the database holds is in its files): where a test looks for bytes.
#[cfg(test)]
pub(crate) fn test_database_files(settings: &PgSettings) -> std::path::PathBuf {
    let config = settings.config().unwrap();
    let folder: String = block(async move {
        let client = connect(config).await?;
        client.batch_execute("CHECKPOINT").await?;
        let row = client
            .query_one(
                "SELECT current_setting('data_directory') || '/base/' || oid::text \
                 FROM pg_database WHERE datname = current_database()",
                &[],
            )
            .await?;
        Ok(row.get(0))
    })
    .unwrap();
    folder.into()
}

/// Where the database is and how many connections a process may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgSettings {
    /// A libpq-style connection string: `postgres://user:password@host:port/db` or
    /// `host=/run/postgresql dbname=jol user=jol` (a host starting with `/` is a socket folder).
    pub(crate) url: String,
    /// Connections this process may open for store work, at least 4 (the lease and the listener
    /// have one each besides).
    #[serde(default = "default_pool")]
    pub(crate) pool: usize,
    /// How long the writer's lease lasts without renewal: a paused or cut-off writer loses the
    /// role after this long, and a replica takes over. A writer that died is replaced sooner
    /// (its session is gone).
    #[serde(default = "default_lease_ms")]
    pub(crate) lease_ms: u64,
    /// How often a standby replica checks whether it can take the writer role.
    #[serde(default = "default_poll_ms")]
    pub(crate) poll_ms: u64,
}

fn default_pool() -> usize {
    8
}
fn default_lease_ms() -> u64 {
    5_000
}
fn default_poll_ms() -> u64 {
    250
}

impl PgSettings {
    /// The settings of the database at `url`, the rest by default.
    pub fn new(url: impl Into<String>) -> PgSettings {
        PgSettings {
            url: url.into(),
            pool: default_pool(),
            lease_ms: default_lease_ms(),
            poll_ms: default_poll_ms(),
        }
    }

    fn config(&self) -> Result<tokio_postgres::Config, PgError> {
        let mut config: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::Url(e.to_string()))?;
        bounded(&mut config);
        Ok(config)
    }

    /// The database, for messages: host and database name, never the password.
    pub(crate) fn describe(&self) -> String {
        let Ok(c) = self.config() else {
            return "postgres (unparsable url)".into();
        };
        let host = match c.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        format!(
            "postgres database {:?} on {host}",
            c.get_dbname().unwrap_or("(default)")
        )
    }
}

/// What a dead or unreachable server may cost a connection, where the url does not say
/// otherwise: connecting at most [`CONNECT_TIMEOUT`], and a path that silently drops packets
/// noticed within about half a minute (TCP keepalives and user timeout; the defaults wait two
/// hours). The call then fails with the socket's error: a 503 to the caller, never a hang. The
/// session's own bounds are set once connected ([`SESSION_BOUNDS`]).
fn bounded(config: &mut tokio_postgres::Config) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    if config.get_keepalives_idle() == DEFAULT_KEEPALIVES_IDLE {
        config
            .keepalives_idle(Duration::from_secs(15))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
    }
}

/// What a stalled replica may cost the others, set in each session Jol opens (by `SET`, which
/// a pooler in session mode such as PgBouncer passes on, where a startup `options` it may
/// refuse): a transaction left idle (a replica frozen between the lock of a side log and its
/// commit) is ended by the server after a minute, and a lock is waited for at most half a
/// minute, so one stalled replica cannot hold every other's appends. A longer wait than the
/// slowest legitimate one (a side log's append re-counting a large quarantine under its lock
/// takes seconds) fails with the server's error, a 503. A setting the url's `options` names
/// is left to them.
const SESSION_BOUNDS: [(&str, &str); 2] = [
    ("idle_in_transaction_session_timeout", "60s"),
    ("lock_timeout", "30s"),
];

/// The `SET`s of [`SESSION_BOUNDS`] the url's `options` do not name.
fn session_bounds(options: Option<&str>) -> String {
    let named = options.map(option_names).unwrap_or_default();
    SESSION_BOUNDS
        .iter()
        .filter(|(name, _)| !named.iter().any(|n| n == name))
        .map(|(name, value)| format!("SET {name} = '{value}';"))
        .collect()
}

/// The settings a startup `options` string sets (`-c name=value`, `-cname=value`,
/// `--name=value`), by name.
fn option_names(options: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next(),
            w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
        };
        if let Some((name, _)) = setting.and_then(|s| s.split_once('=')) {
            names.push(name.replace('-', "_"));
        }
    }
    names
}

/// The longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// tokio-postgres's keepalive idle time when the url names none.
const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// A failure of the PostgreSQL engine.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The url is not a connection string.
    #[error("the store url is not a PostgreSQL connection string: {0}")]
    Url(String),
    /// The server's error, with its message (tokio-postgres's own text drops it).
    #[error("PostgreSQL: {0}")]
    Db(String),
    /// A write only the writer may make, from a replica that is not.
    #[error(
        "this replica is not the writer (another replica holds the lease, or this one lost it)"
    )]
    NotWriter,
    /// The database needs `jol store migrate`.
    #[error("the database's Jol schema is version {found}; this jol needs {wanted}: run `jol store migrate`")]
    SchemaOld {
        /// The database's version.
        found: i32,
        /// This jol's.
        wanted: i32,
    },
    /// The database is newer than this jol.
    #[error("the database's Jol schema is version {found}, newer than this jol knows ({wanted}): upgrade jol")]
    SchemaNew {
        /// The database's version.
        found: i32,
        /// This jol's.
        wanted: i32,
    },
    /// The connection task stopped.
    #[error("the PostgreSQL connection task stopped")]
    Lost,
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> PgError {
        match e.code() {
            Some(code) if code.code() == NOT_WRITER => PgError::NotWriter,
            _ => PgError::Db(db_message(&e)),
        }
    }
}

/// The server's own message when there is one (tokio-postgres's Display says only "db error").
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The runtime the connections live on: one per process, never dropped (a runtime may not be
/// dropped inside another, where stores are dropped).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jol-postgres")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the PostgreSQL runtime: {e}"))
    })
}

/// Round trips to PostgreSQL this process has made (each store call is one), for benchmarks.
static ROUND_TRIPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many round trips to PostgreSQL this process has made so far.
pub fn round_trips() -> u64 {
    ROUND_TRIPS.load(Ordering::Relaxed)
}

/// Run `fut` on the connections' runtime and wait for it.
fn block<T: Send + 'static>(
    fut: impl Future<Output = Result<T, PgError>> + Send + 'static,
) -> Result<T, PgError> {
    ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().unwrap_or(Err(PgError::Lost))
}

/// Open one connection, its connection task on the runtime.
async fn connect(config: tokio_postgres::Config) -> Result<Client, PgError> {
    let bounds = session_bounds(config.get_options());
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    if !bounds.is_empty() {
        client.batch_execute(&bounds).await?;
    }
    Ok(client)
}

/// Run one statement (or several, `;`-separated) on a connection of its own.
pub fn execute(settings: &PgSettings, sql: String) -> Result<(), PgError> {
    let config = settings.config()?;
    block(async move {
        connect(config).await?.batch_execute(&sql).await?;
        Ok(())
    })
}

/// One pooled connection with its prepared statements.
struct Conn {
    client: Client,
    get: Statement,
    range: Statement,
    last: Statement,
    /// The sizes of many keys' values.
    sizes: Statement,
    /// The sizes of a range's values, in key order.
    range_sizes: Statement,
}

impl Conn {
    async fn open(config: tokio_postgres::Config) -> Result<Conn, PgError> {
        let client = connect(config).await?;
        let get = client.prepare("SELECT v FROM jol_kv WHERE k = $1").await?;
        let range = client
            .prepare("SELECT k, v FROM jol_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3")
            .await?;
        let last = client
            .prepare("SELECT k, v FROM jol_kv WHERE k >= $1 AND k < $2 ORDER BY k DESC LIMIT 1")
            .await?;
        let sizes = client
            .prepare("SELECT k, octet_length(v) FROM jol_kv WHERE k = ANY($1)")
            .await?;
        let range_sizes = client
            .prepare(
                "SELECT octet_length(v) FROM jol_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3",
            )
            .await?;
        Ok(Conn {
            client,
            get,
            range,
            last,
            sizes,
            range_sizes,
        })
    }
}

/// The connections of one store: at most `size` open at once, idle ones kept.
struct Pool {
    config: tokio_postgres::Config,
    size: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Arc<Conn>>,
    open: usize,
}

impl Pool {
    /// A connection: an idle one that is still open, or a new one while under the size.
    fn take(&self) -> Result<Arc<Conn>, PgError> {
        let mut state = self.state.lock().map_err(|_| PgError::Lost)?;
        loop {
            while let Some(conn) = state.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(conn);
                }
                state.open -= 1;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                let opened = block(Conn::open(self.config.clone())).map(Arc::new);
                if opened.is_err() {
                    if let Ok(mut s) = self.state.lock() {
                        s.open -= 1;
                    }
                    self.freed.notify_one();
                }
                return opened;
            }
            state = self.freed.wait(state).map_err(|_| PgError::Lost)?;
        }
    }

    fn give_back(&self, conn: Arc<Conn>) {
        if let Ok(mut state) = self.state.lock() {
            if conn.client.is_closed() {
                state.open -= 1;
            } else {
                state.idle.push(conn);
            }
        }
        self.freed.notify_one();
    }

    /// Run `work` on a pooled connection.
    fn with<T: Send + 'static, F>(&self, work: impl FnOnce(Arc<Conn>) -> F) -> Result<T, PgError>
    where
        F: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let conn = self.take()?;
        let result = block(work(conn.clone()));
        self.give_back(conn);
        result
    }
}

/// The store's table in PostgreSQL.
pub struct PgKv {
    settings: PgSettings,
    pool: Pool,
    /// The writer lease's epoch while this process holds it, 0 otherwise ([`lease`]).
    epoch: Arc<AtomicI64>,
    /// When the lease this process took would have ended for its previous holder.
    previous: Arc<PreviousLease>,
}

/// When the previous holder's lease would have run out, as the lease task learnt when it took
/// the lease. A holder whose session is gone is replaced at once, but its process may live on
/// until then, reading its window of recent events (`store::recent`): this replica's writer
/// erases nothing before that ([`PgKv::erasures_wait`]).
#[derive(Debug, Default)]
pub(crate) struct PreviousLease(Mutex<Option<std::time::Instant>>);

impl PreviousLease {
    pub(crate) fn ends_at(&self, at: std::time::Instant) {
        if let Ok(mut ends) = self.0.lock() {
            *ends = Some(at);
        }
    }

    fn left(&self) -> std::time::Duration {
        let ends = self.0.lock().ok().and_then(|e| *e);
        ends.map_or(std::time::Duration::ZERO, |at| {
            at.saturating_duration_since(std::time::Instant::now())
        })
    }
}

impl PgKv {
    /// Connect, create the schema in an empty database, and check its version otherwise.
    pub fn open(settings: &PgSettings) -> Result<PgKv, PgError> {
        let config = settings.config()?;
        let c = config.clone();
        block(async move {
            let client = connect(c).await?;
            schema::prepare(&client).await
        })?;
        Ok(PgKv {
            settings: settings.clone(),
            pool: Pool {
                config,
                size: settings.pool.max(MIN_POOL),
                state: Mutex::new(PoolState::default()),
                freed: Condvar::new(),
            },
            epoch: Arc::new(AtomicI64::new(0)),
            previous: Arc::default(),
        })
    }

    pub(crate) fn settings(&self) -> &PgSettings {
        &self.settings
    }

    /// The epoch cell the lease sets (0: not the writer).
    pub(crate) fn epoch(&self) -> Arc<AtomicI64> {
        self.epoch.clone()
    }

    /// The cell the lease sets when it takes the lease from a holder that may still run.
    pub(crate) fn previous_lease(&self) -> Arc<PreviousLease> {
        self.previous.clone()
    }

    /// How long this replica's writer must wait before a commit that erases: until the lease
    /// it took would have run out for its previous holder (zero when it ran out before).
    pub(crate) fn erasures_wait(&self) -> std::time::Duration {
        self.previous.left()
    }

    /// The value under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PgError> {
        let key = key.to_vec();
        self.pool.with(|c| async move {
            let row = c.client.query_opt(&c.get, &[&key]).await?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    /// The values of many keys in one round trip, in the order asked.
    pub(crate) fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, PgError> {
        let wanted = keys.to_vec();
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> =
            self.pool.with(|c| async move {
                let rows = c
                    .client
                    .query("SELECT k, v FROM jol_kv WHERE k = ANY($1)", &[&wanted])
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    /// The values of the first of `keys` that `budget` takes, in the order asked: their sizes
    /// first, then only the values taken (two round trips; what is not taken is not sent).
    pub(crate) fn get_many_within(
        &self,
        keys: &[Vec<u8>],
        budget: &mut Budget,
    ) -> Result<Vec<Option<Vec<u8>>>, PgError> {
        let wanted = keys.to_vec();
        let sizes: std::collections::HashMap<Vec<u8>, i32> = self.pool.with(|c| async move {
            let rows = c.client.query(&c.sizes, &[&wanted]).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })?;
        let taken = keys
            .iter()
            .take_while(|k| {
                sizes
                    .get(*k)
                    .is_none_or(|size| budget.take(byte_count(*size)))
            })
            .count();
        self.get_many(&keys[..taken])
    }

    /// Up to `limit` entries with `start <= key < end`, in key order, as many as `budget` takes:
    /// their sizes first, then only the entries taken (two round trips).
    pub(crate) fn range_within(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        budget: &mut Budget,
    ) -> Result<Vec<Entry>, PgError> {
        let (from, to) = (start.to_vec(), end.to_vec());
        let most = i64::try_from(limit).unwrap_or(i64::MAX);
        let sizes: Vec<i32> = self.pool.with(|c| async move {
            let rows = c.client.query(&c.range_sizes, &[&from, &to, &most]).await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        let taken = sizes
            .into_iter()
            .take_while(|size| budget.take(byte_count(*size)))
            .count();
        if taken == 0 {
            return Ok(Vec::new());
        }
        self.range(start, end, taken)
    }

    /// At most `limit` entries from `start` (included) to `end` (excluded), in key order.
    pub fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, PgError> {
        let (start, end) = (start.to_vec(), end.to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pool.with(|c| async move {
            let rows = c.client.query(&c.range, &[&start, &end, &limit]).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    pub(crate) fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, PgError> {
        let (start, end) = (start.to_vec(), end.to_vec());
        self.pool.with(|c| async move {
            let row = c.client.query_opt(&c.last, &[&start, &end]).await?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    /// Apply `ops` as the writer, in one transaction, fenced by the lease epoch, and notify the
    /// other replicas. Durable when this returns.
    pub(crate) fn write(&self, ops: Vec<Op>) -> Result<(), PgError> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        if epoch == 0 {
            return Err(PgError::NotWriter);
        }
        self.transaction(format!("SELECT jol_fence({epoch});"), ops)
    }

    /// Apply `ops` from any replica, unfenced: only for records whose every version is as good
    /// as another (a witness's co-signature, a manifest signed by the authority).
    pub(crate) fn write_shared(&self, ops: Vec<Op>) -> Result<(), PgError> {
        self.transaction(String::new(), ops)
    }

    fn transaction(&self, mut sql: String, ops: Vec<Op>) -> Result<(), PgError> {
        changes_sql(&mut sql, ops);
        let _ = write!(sql, "NOTIFY {CHANGED};");
        self.pool.with(|c| async move {
            c.client.batch_execute(&sql).await?;
            Ok(())
        })
    }

    /// Read `counter` under a lock every process shares for the length of one transaction, and
    /// apply what `build` makes of its value in the same transaction. Any replica may call it:
    /// this is how side logs are appended to, gap-free whoever appends.
    pub(crate) fn locked<E>(
        &self,
        counter: &[u8],
        build: impl FnOnce(Option<Vec<u8>>) -> Result<Vec<Op>, E>,
    ) -> Result<Result<(), E>, PgError> {
        let lock = lock_id(counter);
        let read = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({lock}); SELECT v FROM jol_kv WHERE k = {};",
            hex_literal(counter)
        );
        let conn = self.pool.take()?;
        let c = conn.clone();
        let current = block(async move {
            let messages = c.client.simple_query(&read).await?;
            Ok(first_value(&messages))
        });
        let result = match current {
            Err(e) => Err(e),
            Ok(current) => match build(current) {
                Err(e) => self.finish(&conn, "ROLLBACK;".into()).map(|()| Err(e)),
                Ok(ops) => {
                    let mut sql = String::new();
                    changes_sql(&mut sql, ops);
                    sql.push_str("COMMIT;");
                    self.finish(&conn, sql).map(Ok)
                }
            },
        };
        if result.is_err() {
            let c = conn.clone();
            let _ = block(async move {
                c.client.batch_execute("ROLLBACK").await?;
                Ok(())
            });
        }
        self.pool.give_back(conn);
        result
    }

    fn finish(&self, conn: &Arc<Conn>, sql: String) -> Result<(), PgError> {
        let c = conn.clone();
        block(async move {
            c.client.batch_execute(&sql).await?;
            Ok(())
        })
    }

    /// Bytes the table and its index take.
    pub fn size_on_disk(&self) -> u64 {
        self.pool
            .with(|c| async move {
                let row = c
                    .client
                    .query_one("SELECT pg_total_relation_size('jol_kv')", &[])
                    .await?;
                Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
            })
            .unwrap_or(0)
    }

    /// Rewrite Jol's tables with `VACUUM FULL` (each in turn, under its `ACCESS EXCLUSIVE`
    /// lock: every replica's reads and writes of that table wait meanwhile): the table's new
    /// files hold its live rows only, its indexes and TOAST table are rebuilt, and the old files
    /// are truncated when it commits (unlinked at the next checkpoint). What PostgreSQL wrote
    /// elsewhere, the WAL segments, WAL archives and base backups, is kept for as long as the
    /// operator's retention says, as in any PostgreSQL deployment.
    pub fn vacuum_full(&self) -> Result<(), PgError> {
        for table in schema::TABLES {
            // One statement per call: VACUUM cannot run inside the implicit transaction of a
            // multi-statement query.
            self.pool.with(move |c| async move {
                c.client
                    .batch_execute(&format!("VACUUM FULL {table}"))
                    .await?;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Call `changed` (on the connections' runtime) after each write another process commits,
    /// and once after every reconnection (changes may have been missed meanwhile), until
    /// `changed` returns false.
    /// `changed` runs on a blocking thread: it may use the store.
    pub(crate) fn listen(&self, changed: impl Fn() -> bool + Send + Sync + 'static) {
        let settings = self.settings.clone();
        runtime().spawn(listen(settings, Arc::new(changed)));
    }
}

async fn listen(settings: PgSettings, changed: Arc<dyn Fn() -> bool + Send + Sync>) {
    let call = || {
        let changed = changed.clone();
        async move {
            tokio::task::spawn_blocking(move || changed())
                .await
                .unwrap_or(false)
        }
    };
    let Ok(config) = settings.config() else {
        return;
    };
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                if tx.send(()).is_err() {
                                    break;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANGED}"))
                    .await
                    .is_ok()
                {
                    if !call().await {
                        driver.abort();
                        return;
                    }
                    // Also once a second without a notification: a lost one costs a second,
                    // and `changed` gets to say it is done.
                    loop {
                        match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                            Ok(None) => break,
                            Ok(Some(())) => while rx.try_recv().is_ok() {},
                            Err(_) => {}
                        }
                        if !call().await {
                            driver.abort();
                            return;
                        }
                    }
                }
                driver.abort();
            }
            Err(e) => {
                tracing::warn!(error = %db_message(&e), "cannot listen for changes; retrying")
            }
        }
        tokio::time::sleep(Duration::from_millis(settings.poll_ms)).await;
    }
}

/// The statements that apply `ops`: the last change of each key wins, as it would applied in
/// order (one statement may not touch a row twice). A key an [`Op::Append`] wrote is inserted
/// without `ON CONFLICT`, whatever changed it after in the batch (an event stripped in the
/// round that appends it): if it exists, the transaction fails (23505) and nothing of it lands.
fn changes_sql(sql: &mut String, ops: Vec<Op>) {
    let mut last = std::collections::BTreeMap::new();
    let mut fresh = std::collections::BTreeSet::new();
    for op in ops {
        match op {
            Op::Put(k, v) => last.insert(k, Some(v)),
            Op::Delete(k) => last.insert(k, None),
            Op::Append(k, v) => {
                fresh.insert(k.clone());
                last.insert(k, Some(v))
            }
        };
    }
    let (puts, deletes): (Vec<_>, Vec<_>) = last.into_iter().partition(|(_, v)| v.is_some());
    let (appends, puts): (Vec<_>, Vec<_>) = puts.into_iter().partition(|(k, _)| fresh.contains(k));
    inserts_sql(sql, &appends, ";");
    inserts_sql(sql, &puts, " ON CONFLICT (k) DO UPDATE SET v = excluded.v;");
    for chunk in deletes.chunks(1000) {
        sql.push_str("DELETE FROM jol_kv WHERE k IN (");
        for (i, (k, _)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&hex_literal(k));
        }
        sql.push_str(");");
    }
}

/// `INSERT`s of `rows`, a thousand a statement, each statement ended by `end`.
fn inserts_sql(sql: &mut String, rows: &[(Vec<u8>, Option<Vec<u8>>)], end: &str) {
    for chunk in rows.chunks(1000) {
        sql.push_str("INSERT INTO jol_kv (k, v) VALUES ");
        for (i, (k, v)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let v = v.as_deref().unwrap_or_default();
            let _ = write!(sql, "({},{})", hex_literal(k), hex_literal(v));
        }
        sql.push_str(end);
    }
}

/// A value's size as PostgreSQL's `octet_length` gives it.
fn byte_count(size: i32) -> usize {
    usize::try_from(size).unwrap_or(0)
}

/// A bytea literal: hexadecimal digits only, so nothing in the bytes can end the string.
fn hex_literal(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2 + 12);
    s.push_str("'\\x");
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s.push_str("'::bytea");
    s
}

/// The advisory lock that serializes appends to one counter.
fn lock_id(counter: &[u8]) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(counter);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The first column of the first row of a simple query's answer, a bytea in its text form.
fn first_value(messages: &[tokio_postgres::SimpleQueryMessage]) -> Option<Vec<u8>> {
    messages.iter().rev().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).and_then(from_hex),
        _ => None,
    })
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.strip_prefix("\\x")?;
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytea_literals_round_trip_and_cannot_break_out() {
        let bytes = b"'; DROP TABLE jol_kv; --\x00\xff".to_vec();
        let literal = hex_literal(&bytes);
        assert!(literal.starts_with("'\\x") && literal.ends_with("'::bytea"));
        let inner = &literal[1..literal.len() - 8];
        assert!(inner[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(from_hex(inner), Some(bytes));
    }

    #[test]
    fn the_last_change_of_a_key_wins() {
        let mut sql = String::new();
        changes_sql(
            &mut sql,
            vec![
                Op::Put(b"a".to_vec(), b"1".to_vec()),
                Op::Delete(b"a".to_vec()),
                Op::Put(b"b".to_vec(), b"1".to_vec()),
                Op::Put(b"b".to_vec(), b"2".to_vec()),
            ],
        );
        assert_eq!(
            sql,
            "INSERT INTO jol_kv (k, v) VALUES ('\\x62'::bytea,'\\x32'::bytea) ON CONFLICT (k) DO UPDATE SET v = excluded.v;\
             DELETE FROM jol_kv WHERE k IN ('\\x61'::bytea);"
        );
    }

    /// Connections are bounded where the url says nothing, and the url's own choices stay.
    #[test]
    fn connections_are_bounded_unless_the_url_says_otherwise() {
        let plain = PgSettings::new("postgresql://jol@db/jol").config().unwrap();
        assert_eq!(plain.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(plain.get_keepalives_idle(), Duration::from_secs(15));
        assert_eq!(plain.get_tcp_user_timeout(), Some(&Duration::from_secs(30)));
        assert_eq!(
            plain.get_options(),
            None,
            "a pooler may refuse startup options"
        );
        let theirs = PgSettings::new(
            "postgresql://jol@db/jol?connect_timeout=3&keepalives_idle=60&options=-c%20lock_timeout%3D1s",
        )
        .config()
        .unwrap();
        assert_eq!(theirs.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(theirs.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(
            session_bounds(theirs.get_options()),
            "SET idle_in_transaction_session_timeout = '60s';"
        );
        assert_eq!(
            session_bounds(Some(
                "-c deadlock_timeout=1s --idle-in-transaction-session-timeout=5s"
            )),
            "SET lock_timeout = '30s';",
            "a name that holds ours is not ours"
        );
        // A real session takes them.
        let Some(settings) = test_database("the session bounds") else {
            return;
        };
        let config = settings.config().unwrap();
        let shown = block(async move {
            let client = connect(config).await?;
            let mut shown = Vec::new();
            for name in ["idle_in_transaction_session_timeout", "lock_timeout"] {
                let row = client.query_one(&format!("SHOW {name}"), &[]).await?;
                shown.push(row.get::<_, String>(0));
            }
            Ok(shown)
        })
        .unwrap();
        assert_eq!(shown, ["1min", "30s"]);
    }

    /// A new position of the log is inserted so that it cannot write over one a late commit
    /// landed, even when the batch strips the event after appending it.
    #[test]
    fn an_appended_key_is_inserted_only_if_new() {
        let mut sql = String::new();
        changes_sql(
            &mut sql,
            vec![
                Op::Append(b"a".to_vec(), b"1".to_vec()),
                Op::Put(b"a".to_vec(), b"2".to_vec()),
                Op::Put(b"b".to_vec(), b"3".to_vec()),
            ],
        );
        assert_eq!(
            sql,
            "INSERT INTO jol_kv (k, v) VALUES ('\\x61'::bytea,'\\x32'::bytea);\
             INSERT INTO jol_kv (k, v) VALUES ('\\x62'::bytea,'\\x33'::bytea) ON CONFLICT (k) DO UPDATE SET v = excluded.v;"
        );
    }

    #[test]
    fn the_description_never_shows_the_password() {
        let s = PgSettings::new("postgres://jol:s3cret@db.example:5433/migration");
        let d = s.describe();
        assert!(!d.contains("s3cret"), "{d}");
        assert!(d.contains("migration") && d.contains("db.example"), "{d}");
    }
}
