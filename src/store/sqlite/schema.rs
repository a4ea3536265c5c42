//! The SQLite schema, its version (`schema_version`) and the migrations from older versions.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{backend, SqliteStore};
use crate::store::StoreError;

/// Schema version this code writes.
pub(super) const SCHEMA_VERSION: i64 = 3;

/// The tables of schema version 2: offline rows and records keyed by sender and id.
pub(super) const SCHEMA_V2: &str = "
    CREATE TABLE offline (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        from_user TEXT NOT NULL,
        message_id TEXT NOT NULL,
        envelope TEXT NOT NULL,
        stored_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        UNIQUE (user_id, from_user, message_id)
    );
    CREATE INDEX offline_user ON offline (user_id, seq);
    CREATE TABLE records (
        from_user TEXT NOT NULL,
        id TEXT NOT NULL,
        record TEXT NOT NULL,
        final INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (from_user, id)
    );
    CREATE TABLE delayed (
        from_user TEXT NOT NULL,
        id TEXT NOT NULL,
        item TEXT NOT NULL,
        due_ms INTEGER NOT NULL,
        PRIMARY KEY (from_user, id)
    );";

/// The offline table of schema version 3. An offline row may carry its message's record
/// (`record`, compact encoding without the envelope the row already holds): a tracked
/// message stored for an offline user is then one row, not an offline row and a record row.
/// The unique key starts with the sender and id, so that such a record is found by its key.
/// A delivered copy that carries a record stays, marked `expires_ms = 0`, until the
/// retention purge moves its record to the records table.
pub(crate) const OFFLINE_V3: &str = "
    CREATE TABLE offline (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        from_user TEXT NOT NULL,
        message_id TEXT NOT NULL,
        envelope TEXT NOT NULL,
        stored_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        record BLOB,
        UNIQUE (from_user, message_id, user_id)
    );
    CREATE INDEX offline_user ON offline (user_id, seq);";

/// The other tables of schema version 3. A record row holds either the JSON of the whole
/// record (`record` TEXT, written by version 2) or its compact encoding (`record` BLOB) and
/// the envelope's JSON (`envelope`).
const TABLES_V3: &str = "
    CREATE TABLE records (
        from_user TEXT NOT NULL,
        id TEXT NOT NULL,
        record NOT NULL,
        final INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        envelope TEXT,
        PRIMARY KEY (from_user, id)
    );
    CREATE TABLE delayed (
        from_user TEXT NOT NULL,
        id TEXT NOT NULL,
        item TEXT NOT NULL,
        due_ms INTEGER NOT NULL,
        PRIMARY KEY (from_user, id)
    );";

/// Version 2 to 3: the offline table gains the `record` column and its unique key starts
/// with the sender (rows, their order and their queue positions kept, and the next position
/// too); records gain the `envelope` column (existing JSON records kept as they are).
/// Migrated as: this, then [`OFFLINE_V3`] (the new table), then [`COPY_V2_V3`].
const RENAME_V2: &str = "
    ALTER TABLE offline RENAME TO offline_v2;
    DROP INDEX IF EXISTS offline_user;";
/// The rows of the renamed version-2 table into the new one, and the records' new column.
const COPY_V2_V3: &str = "
    INSERT INTO offline (seq, user_id, from_user, message_id, envelope, stored_ms, expires_ms)
        SELECT seq, user_id, from_user, message_id, envelope, stored_ms, expires_ms
        FROM offline_v2 ORDER BY seq;
    DELETE FROM sqlite_sequence WHERE name = 'offline';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'offline', seq FROM sqlite_sequence WHERE name = 'offline_v2';
    DROP TABLE offline_v2;
    ALTER TABLE records ADD COLUMN envelope TEXT;
    UPDATE schema_version SET version = 3;";

/// Sets the connection's pragmas and brings the database to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -{};
         CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        SqliteStore::CACHE_KIB
    ))
    .map_err(backend)?;
    let version: Option<i64> = conn
        .query_row("SELECT version FROM schema_version LIMIT 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(backend)?;
    match version {
        None => conn
            .execute_batch(&format!(
                "BEGIN; {OFFLINE_V3} {TABLES_V3}
                 INSERT INTO schema_version (version) VALUES ({SCHEMA_VERSION}); COMMIT;"
            ))
            .map_err(backend),
        Some(1) => {
            from_v1(conn, path)?;
            from_v2(conn, path)
        }
        Some(2) => from_v2(conn, path),
        Some(SCHEMA_VERSION) => Ok(()),
        Some(v) => Err(StoreError::DataDir(format!(
            "{} has schema version {v}; this server reads version {SCHEMA_VERSION}",
            path.display()
        ))),
    }
}

/// Version 1 keyed offline rows and records by id alone. Offline rows keep their order and
/// gain their sender; version-1 records cannot be read by this version and are dropped
/// (said in the log).
fn from_v1(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let old_records: i64 = conn
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .map_err(backend)?;
    conn.execute_batch(&format!(
        "BEGIN;
         ALTER TABLE offline RENAME TO offline_v1;
         DROP INDEX IF EXISTS offline_user;
         DROP TABLE records;
         {SCHEMA_V2}
         INSERT INTO offline (user_id, from_user, message_id, envelope, stored_ms, expires_ms)
             SELECT user_id, COALESCE(json_extract(envelope, '$.from'), ''), message_id,
                    envelope, stored_ms, expires_ms
             FROM offline_v1 ORDER BY seq;
         DROP TABLE offline_v1;
         UPDATE schema_version SET version = 2;
         COMMIT;"
    ))
    .map_err(backend)?;
    log::warn!(
        "migrated {} to schema 2: offline messages kept, {old_records} version-1 message records dropped",
        path.display()
    );
    Ok(())
}

fn from_v2(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "BEGIN; {RENAME_V2} {OFFLINE_V3} {COPY_V2_V3} COMMIT;"
    ))
    .map_err(|e| {
        // Nothing was changed: the transaction rolled back (or never began).
        if let Err(r) = conn.execute_batch("ROLLBACK") {
            log::debug!("rollback after a failed migration: {r}");
        }
        backend(e)
    })?;
    log::info!(
        "migrated {} to schema {SCHEMA_VERSION}: records kept with their offline copies",
        path.display()
    );
    Ok(())
}
