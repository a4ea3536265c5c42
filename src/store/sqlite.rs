//! The embedded durable backend: SQLite (bundled) in WAL mode.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::{BatchOutcome, DelayedItem, OfflineItem, Reopen, Store, StoreError};
use crate::model::{now_ms, MessageKey, MessageRecord};
use crate::protocol::{MessageId, UserId};

/// Schema version this code writes.
const SCHEMA_VERSION: i64 = 2;

/// The tables of schema version 2: offline rows and records keyed by sender and id.
const SCHEMA_V2: &str = "
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

/// SQLite in `<data_dir>/wsc.db`.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
    max_bytes: u64,
    /// Rows in each user's offline queue, as far as this connection knows (read with one
    /// `COUNT` the first time a commit touches the user, then kept up to date by every
    /// change this store makes). A commit trims only users over the cap, instead of walking
    /// every touched user's queue each batch. Cleared by `purge`.
    queued: HashMap<UserId, usize>,
    /// Reused JSON buffer.
    json: Vec<u8>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating and migrating) the database in `dir`; a clear error if the directory
    /// cannot be created or written.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_limited(dir, 0)
    }

    /// Like [`SqliteStore::open`], with the database capped at about `max_bytes` (0: no cap).
    /// Over the cap, writes fail as on a full disk ("database or disk is full").
    pub fn open_limited(dir: &Path, max_bytes: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::DataDir(format!("cannot create {}: {e}", dir.display())))?;
        let probe = dir.join(".wsc-write-test");
        std::fs::write(&probe, b"ok")
            .map_err(|e| StoreError::DataDir(format!("{} is not writable: {e}", dir.display())))?;
        let _ = std::fs::remove_file(&probe);
        let path = dir.join("wsc.db");
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::DataDir(format!("cannot open {}: {e}", path.display())))?;
        let mut store = SqliteStore {
            conn,
            path,
            dir: dir.to_path_buf(),
            max_bytes,
            queued: HashMap::new(),
            json: Vec::new(),
        };
        store.migrate()?;
        if max_bytes > 0 {
            let page: i64 = store
                .conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(backend)?;
            let pages = (max_bytes as i64 / page.max(1)).max(1);
            // Returns the new maximum; read it so the pragma runs as a query.
            let _: i64 = store
                .conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                    r.get(0)
                })
                .map_err(backend)?;
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
            )
            .map_err(backend)?;
        let version: Option<i64> = self
            .conn
            .query_row("SELECT version FROM schema_version LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)?;
        match version {
            None => self
                .conn
                .execute_batch(&format!(
                    "BEGIN; {SCHEMA_V2} INSERT INTO schema_version (version) VALUES (2); COMMIT;"
                ))
                .map_err(backend),
            Some(1) => {
                // Version 1 keyed offline rows and records by id alone. Offline rows keep
                // their order and gain their sender; version-1 records cannot be read by
                // this version and are dropped (said in the log).
                let old_records: i64 = self
                    .conn
                    .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
                    .map_err(backend)?;
                self.conn
                    .execute_batch(&format!(
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
                    self.path.display()
                );
                Ok(())
            }
            Some(SCHEMA_VERSION) => Ok(()),
            Some(v) => Err(StoreError::DataDir(format!(
                "{} has schema version {v}; this server reads version {SCHEMA_VERSION}",
                self.path.display()
            ))),
        }
    }
}

fn item_from_row(
    user: &UserId,
    json: &str,
    stored: i64,
    expires: i64,
    seq: i64,
) -> Option<OfflineItem> {
    match serde_json::from_str(json) {
        Ok(envelope) => Some(OfflineItem {
            user_id: user.clone(),
            envelope: Arc::new(envelope),
            stored_ms: stored as u64,
            expires_ms: expires as u64,
            seq: seq as u64,
        }),
        Err(e) => {
            log::error!("unreadable offline message for user_id={user} seq={seq}: {e}");
            None
        }
    }
}

/// One transaction: the offline rows, the trim of users over `cap`, the records. `counts`
/// gets the queue length of every touched user after the batch.
fn commit_batch<'a>(
    conn: &Connection,
    queued: &HashMap<UserId, usize>,
    json: &mut Vec<u8>,
    counts: &mut HashMap<&'a UserId, usize>,
    items: &'a [OfflineItem],
    records: &[MessageRecord],
    cap: usize,
) -> Result<BatchOutcome, StoreError> {
    let tx = conn.unchecked_transaction().map_err(backend)?;
    let mut out = BatchOutcome::default();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO offline (user_id, from_user, message_id, envelope, stored_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(backend)?;
        let mut order: Vec<&UserId> = Vec::new();
        let mut count = tx
            .prepare_cached("SELECT COUNT(*) FROM offline WHERE user_id = ?1")
            .map_err(backend)?;
        for item in items {
            json.clear();
            serde_json::to_writer(&mut *json, &item.envelope).map_err(backend)?;
            let text = std::str::from_utf8(json).map_err(backend)?;
            let added = insert
                .execute(params![
                    item.user_id.as_str(),
                    item.envelope.from.as_str(),
                    item.envelope.id.as_str(),
                    text,
                    item.stored_ms as i64,
                    item.expires_ms as i64
                ])
                .map_err(backend)?;
            match counts.get_mut(&item.user_id) {
                Some(n) => *n += added,
                None => {
                    // First row of this user in the batch: its length so far, counted
                    // once per connection (this row included).
                    let n = match queued.get(&item.user_id) {
                        Some(q) => q + added,
                        None => count
                            .query_row(params![item.user_id.as_str()], |r| r.get::<_, i64>(0))
                            .map_err(backend)? as usize,
                    };
                    counts.insert(&item.user_id, n);
                    order.push(&item.user_id);
                }
            }
        }
        let mut over = tx
            .prepare_cached(
                "SELECT seq, envelope, stored_ms, expires_ms FROM offline WHERE user_id = ?1
                 ORDER BY seq DESC LIMIT -1 OFFSET ?2",
            )
            .map_err(backend)?;
        let mut delete = tx
            .prepare_cached("DELETE FROM offline WHERE seq = ?1")
            .map_err(backend)?;
        for user in order {
            let Some(n) = counts.get_mut(user).filter(|n| **n > cap) else {
                continue;
            };
            let rows: Vec<(i64, String, i64, i64)> = over
                .query_map(params![user.as_str(), cap as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            for (seq, json, stored, expires) in rows.into_iter().rev() {
                *n = n.saturating_sub(delete.execute(params![seq]).map_err(backend)?);
                if let Some(item) = item_from_row(user, &json, stored, expires, seq) {
                    out.dropped.push(item);
                }
            }
        }
        let mut save = tx
            .prepare_cached(
                "INSERT INTO records (from_user, id, record, final, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (from_user, id) DO UPDATE SET record = excluded.record, final = excluded.final",
            )
            .map_err(backend)?;
        for r in records {
            json.clear();
            serde_json::to_writer(&mut *json, r).map_err(backend)?;
            let text = std::str::from_utf8(json).map_err(backend)?;
            save.execute(params![
                r.key.from.as_str(),
                r.key.id.as_str(),
                text,
                r.is_final() as i64,
                r.created_ms as i64
            ])
            .map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(out)
}

impl Store for SqliteStore {
    fn commit(
        &mut self,
        items: &[OfflineItem],
        records: &[MessageRecord],
        cap: usize,
    ) -> Result<BatchOutcome, StoreError> {
        // Queue lengths after this batch, applied to `self.queued` only once it committed.
        let mut counts: HashMap<&UserId, usize> = HashMap::new();
        let result = commit_batch(
            &self.conn,
            &self.queued,
            &mut self.json,
            &mut counts,
            items,
            records,
            cap,
        );
        match result {
            Ok(out) => {
                for (user, n) in counts {
                    match self.queued.get_mut(user) {
                        Some(q) => *q = n,
                        None => {
                            self.queued.insert(user.clone(), n);
                        }
                    }
                }
                Ok(out)
            }
            Err(e) => {
                // Rolled back: what the database holds is read again when next needed.
                self.queued.clear();
                Err(e)
            }
        }
    }

    fn fetch_offline(
        &mut self,
        user: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        let now = now_ms() as i64;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT envelope, stored_ms, expires_ms, seq FROM offline
                 WHERE user_id = ?1 AND expires_ms > ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![user.as_str(), now, after_seq as i64, limit as i64],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (json, stored, expires, seq) = row.map_err(backend)?;
            out.extend(item_from_row(user, &json, stored, expires, seq));
        }
        Ok(out)
    }

    fn remove_offline(&mut self, user: &UserId, keys: &[MessageKey]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction().map_err(backend)?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "DELETE FROM offline WHERE user_id = ?1 AND from_user = ?2 AND message_id = ?3",
                )
                .map_err(backend)?;
            for k in keys {
                n += stmt
                    .execute(params![user.as_str(), k.from.as_str(), k.id.as_str()])
                    .map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)?;
        if let Some(q) = self.queued.get_mut(user) {
            *q = q.saturating_sub(n);
        }
        Ok(n)
    }

    fn purge(&mut self, now_ms: u64, records_before_ms: u64) -> Result<usize, StoreError> {
        self.queued.clear();
        let a = self
            .conn
            .execute(
                "DELETE FROM offline WHERE expires_ms <= ?1",
                params![now_ms as i64],
            )
            .map_err(backend)?;
        let b = self
            .conn
            .execute(
                "DELETE FROM records WHERE final = 1 AND created_ms < ?1",
                params![records_before_ms as i64],
            )
            .map_err(backend)?;
        Ok(a + b)
    }

    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT from_user, id, record FROM records")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (from, id, json) = row.map_err(backend)?;
            let record = serde_json::from_str(&json).map_err(|e| {
                StoreError::Backend(format!(
                    "unreadable message record id={id} from={from} in {}: {e}",
                    self.path.display()
                ))
            })?;
            out.push(record);
        }
        Ok(out)
    }

    fn get_record(&mut self, key: &MessageKey) -> Result<Option<MessageRecord>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT record FROM records WHERE from_user = ?1 AND id = ?2",
                params![key.from.as_str(), key.id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        json.map(|j| serde_json::from_str(&j).map_err(backend))
            .transpose()
    }

    fn find_records(&mut self, id: &MessageId) -> Result<Vec<MessageRecord>, StoreError> {
        // No index on the id alone (it would cost every record write): this lookup is for
        // the HTTP API, and the table holds unsettled records only on one node.
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM records WHERE id = ?1")
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![id.as_str()], |r| r.get::<_, String>(0))
            .map_err(backend)?;
        let mut out = Vec::new();
        for json in rows {
            let json = json.map_err(backend)?;
            out.push(serde_json::from_str(&json).map_err(backend)?);
        }
        Ok(out)
    }

    fn save_delayed(&mut self, item: &DelayedItem) -> Result<(), StoreError> {
        let json = serde_json::to_string(item).map_err(backend)?;
        self.conn
            .execute(
                "INSERT INTO delayed (from_user, id, item, due_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (from_user, id) DO UPDATE SET item = excluded.item, due_ms = excluded.due_ms",
                params![
                    item.envelope.from.as_str(),
                    item.envelope.id.as_str(),
                    json,
                    item.due_ms as i64
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn remove_delayed(&mut self, key: &MessageKey) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM delayed WHERE from_user = ?1 AND id = ?2",
                params![key.from.as_str(), key.id.as_str()],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn load_delayed(&mut self) -> Result<Vec<DelayedItem>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT item FROM delayed ORDER BY due_ms")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let json = row.map_err(backend)?;
            out.push(
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::Backend(format!("unreadable delayed message: {e}")))?,
            );
        }
        Ok(out)
    }

    fn reopener(&self) -> Option<Reopen> {
        let (dir, max) = (self.dir.clone(), self.max_bytes);
        Some(Box::new(move || {
            Ok(Box::new(SqliteStore::open_limited(&dir, max)?) as Box<dyn Store>)
        }))
    }

    fn offline_total(&mut self) -> Result<usize, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM offline", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(backend)
    }

    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM offline WHERE user_id = ?1",
                params![user.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(backend)
    }
}
