//! The versioned schema of a PostgreSQL store. Each migration runs once, in its own transaction,
//! under an advisory lock so that replicas starting together do not race; `jol_schema` records
//! what ran. A node creates the schema in an empty database, refuses one older than it knows (run
//! `jol store migrate`, which calls [`migrate`]) and one newer.

use std::future::Future;

use tokio_postgres::Client;

use super::PgError;

/// The migrations, in order; a migration's number is its place in this list, from 1.
const MIGRATIONS: &[&str] = &[
    // 1: the ordered key-value table, the writer lease and the fence every writer's commit runs.
    r#"
CREATE TABLE jol_kv (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE jol_writer (
    id integer PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL,
    holder text,
    holder_pid integer,
    expires_at timestamptz NOT NULL
);
INSERT INTO jol_writer (id, epoch, holder, holder_pid, expires_at) VALUES (1, 0, NULL, NULL, '-infinity');
CREATE FUNCTION jol_fence(e bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM jol_writer WHERE id = 1 AND epoch = e AND expires_at > clock_timestamp() FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'jol: epoch % does not hold the writer lease', e USING ERRCODE = 'JL001';
    END IF;
END $$;
"#,
    // 2: person views are packed (LZ4, `store/packed.rs`); a jol before it cannot read them, so
    // the version keeps it from starting on the database (one already running is not stopped:
    // docs/deploy-ha.md). Nothing to rewrite: views stored as JSON read back unchanged, and
    // `jol rebuild-view` packs them all.
    r#"
COMMENT ON TABLE jol_kv IS 'jol: every key space in one ordered table; person views (prefix P) are LZ4-packed from schema 2';
"#,
    // 3: the credential issuer's status list is stored with the entries it has given (its
    // entries drawn at random, `credentials/status.rs`); a jol before it would read the list
    // shifted and serve wrong statuses, so the version keeps it from starting on the database.
    // Nothing to rewrite: a list stored before reads back with its entries given in order.
    r#"
COMMENT ON TABLE jol_kv IS 'jol: every key space in one ordered table; person views (prefix P) are LZ4-packed from schema 2; the status list (meta status-list) holds its given entries from schema 3';
"#,
];

/// Every table the migrations create (what `jol store compact` rewrites).
pub(crate) const TABLES: &[&str] = &["jol_kv", "jol_writer", "jol_schema"];

/// The schema version this jol writes.
pub(crate) const VERSION: i32 = MIGRATIONS.len() as i32;

/// Serializes migrations between processes.
const MIGRATION_LOCK: i64 = 0x6a6f_6c5f_6d69_6772;

/// The version the database holds (0: no Jol schema).
pub(crate) async fn version(client: &Client) -> Result<i32, PgError> {
    let exists = client
        .query_one("SELECT to_regclass('jol_schema') IS NOT NULL", &[])
        .await?
        .get::<_, bool>(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM jol_schema", &[])
        .await?;
    Ok(row.get(0))
}

/// Apply the migrations the database lacks; returns (version before, version after).
pub(crate) async fn migrate(client: &Client) -> Result<(i32, i32), PgError> {
    let table = "CREATE TABLE IF NOT EXISTS jol_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());";
    under_migration_lock(client, table, apply_missing(client)).await
}

/// `work` while this session holds the migration lock, after `first` (SQL, run once the lock
/// is taken): no other process migrates meanwhile.
async fn under_migration_lock<T>(
    client: &Client,
    first: &str,
    work: impl Future<Output = Result<T, PgError>>,
) -> Result<T, PgError> {
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({MIGRATION_LOCK}); {first}"
        ))
        .await?;
    let result = work.await;
    client
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await?;
    result
}

async fn apply_missing(client: &Client) -> Result<(i32, i32), PgError> {
    let before = version(client).await?;
    if before > VERSION {
        return Err(PgError::SchemaNew {
            found: before,
            wanted: VERSION,
        });
    }
    for (number, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(before).unwrap_or(0))
    {
        client
            .batch_execute(&format!(
                "BEGIN; {sql}; INSERT INTO jol_schema (version) VALUES ({number}); COMMIT;"
            ))
            .await
            .map_err(|e| PgError::Db(format!("migration {number}: {}", PgError::from(e))))?;
    }
    Ok((before, VERSION))
}

/// At start: an empty database gets the schema; any other must be at this jol's version. A
/// version between is read again once no migration runs: another replica starting on the
/// same empty database may be half-way through giving it the schema.
pub(crate) async fn prepare(client: &Client) -> Result<(), PgError> {
    let found = match version(client).await? {
        0 => return migrate(client).await.map(|_| ()),
        v if v == VERSION => return Ok(()),
        _ => settled_version(client).await?,
    };
    match found {
        v if v == VERSION => Ok(()),
        v if v < VERSION => Err(PgError::SchemaOld {
            found: v,
            wanted: VERSION,
        }),
        v => Err(PgError::SchemaNew {
            found: v,
            wanted: VERSION,
        }),
    }
}

/// The version once the migration lock is free (no migration under way).
async fn settled_version(client: &Client) -> Result<i32, PgError> {
    under_migration_lock(client, "", version(client)).await
}

/// Connect to `settings`' database and migrate it (`jol store migrate`).
pub(crate) fn migrate_database(settings: &super::PgSettings) -> Result<(i32, i32), PgError> {
    let config = settings.config()?;
    super::block(async move {
        let client = super::connect(config).await?;
        migrate(&client).await
    })
}

#[cfg(test)]
mod tests {
    use super::super::{test_database, PgKv};
    use super::*;

    fn database() -> Option<super::super::PgSettings> {
        test_database("the schema")
    }

    /// `jol store migrate` brings an empty database to this version and is idempotent; a node
    /// creates the schema itself in an empty database.
    #[test]
    fn migrations_run_once() {
        let Some(settings) = database() else { return };
        assert_eq!(migrate_database(&settings).unwrap(), (0, VERSION));
        assert_eq!(migrate_database(&settings).unwrap(), (VERSION, VERSION));
        PgKv::open(&settings).unwrap();
        let Some(empty) = database() else { return };
        PgKv::open(&empty).unwrap();
        assert_eq!(migrate_database(&empty).unwrap(), (VERSION, VERSION));
    }

    /// A database of schema 1 (views stored as JSON) is refused at start until `jol store
    /// migrate` brings it to this version, which keeps what it holds.
    #[test]
    fn an_older_schema_is_refused_until_migrated() {
        let Some(settings) = database() else { return };
        super::super::execute(
            &settings,
            format!(
                "CREATE TABLE jol_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); {} INSERT INTO jol_schema (version) VALUES (1); INSERT INTO jol_kv VALUES ('\\x50'::bytea, '\\x7b7d'::bytea);",
                MIGRATIONS[0]
            ),
        )
        .unwrap();
        let err = PgKv::open(&settings).err().unwrap();
        assert!(matches!(err, PgError::SchemaOld { found: 1, .. }), "{err}");
        assert_eq!(migrate_database(&settings).unwrap(), (1, VERSION));
        let kv = PgKv::open(&settings).unwrap();
        assert_eq!(kv.get(b"P").unwrap(), Some(b"{}".to_vec()));
    }

    /// A database written by a newer jol is refused at start, with what to do.
    #[test]
    fn a_newer_schema_is_refused() {
        let Some(settings) = database() else { return };
        PgKv::open(&settings).unwrap();
        super::super::execute(
            &settings,
            format!("INSERT INTO jol_schema (version) VALUES ({})", VERSION + 1),
        )
        .unwrap();
        let err = PgKv::open(&settings).err().unwrap();
        assert!(matches!(err, PgError::SchemaNew { .. }), "{err}");
        assert!(err.to_string().contains("upgrade jol"), "{err}");
        assert!(migrate_database(&settings).is_err());
    }
}
