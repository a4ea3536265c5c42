//! The embedded durable backend: SQLite (bundled) in WAL mode.

mod records;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::{codec, BatchOutcome, DelayedItem, OfflineItem, Reopen, Store, StoreError};
use crate::model::{now_ms, MessageKey, MessageRecord};
use crate::protocol::{MessageId, UserId};
use records::RecordWriter;

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
    /// Reused buffers: an envelope's JSON, a record's compact encoding.
    json: Vec<u8>,
    blob: Vec<u8>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// The connection's page cache, in KiB (SQLite's default is 2000). Removing delivered
    /// copies touches pages all over the offline table and its indexes (a user's rows lie
    /// among everyone's): with the default cache most of them were read again from the file,
    /// and a large removal spilled to the WAL before its commit. Memory, not durability.
    pub const CACHE_KIB: u32 = 32 * 1024;

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
        if let Err(e) = std::fs::remove_file(&probe) {
            log::warn!("cannot remove {}: {e}", probe.display());
        }
        let path = dir.join("wsc.db");
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::DataDir(format!("cannot open {}: {e}", path.display())))?;
        schema::migrate(&conn, &path)?;
        let store = SqliteStore {
            conn,
            path,
            dir: dir.to_path_buf(),
            max_bytes,
            queued: HashMap::new(),
            json: Vec::new(),
            blob: Vec::new(),
        };
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
            record: None,
        }),
        Err(e) => {
            log::error!("unreadable offline message for user_id={user} seq={seq}: {e}");
            None
        }
    }
}

/// Reused buffers of a commit.
struct Buffers<'a> {
    json: &'a mut Vec<u8>,
    blob: &'a mut Vec<u8>,
}

/// One transaction: the offline rows (each with the record it carries, if any), the trim of
/// users over `cap`, the records. `counts` gets the queue length of every touched user
/// after the batch.
fn commit_batch<'a>(
    conn: &Connection,
    queued: &HashMap<UserId, usize>,
    buf: Buffers<'_>,
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
                "INSERT OR IGNORE INTO offline
                     (user_id, from_user, message_id, envelope, stored_ms, expires_ms, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(backend)?;
        let mut order: Vec<&UserId> = Vec::new();
        // Records whose copy was stored before: kept in the records table instead.
        let mut unfolded: Vec<&MessageRecord> = Vec::new();
        let mut count = tx
            .prepare_cached("SELECT COUNT(*) FROM offline WHERE user_id = ?1 AND expires_ms != 0")
            .map_err(backend)?;
        for item in items {
            buf.json.clear();
            serde_json::to_writer(&mut *buf.json, &item.envelope).map_err(backend)?;
            let text = std::str::from_utf8(buf.json).map_err(backend)?;
            let record = item.record.as_deref().map(|r| {
                buf.blob.clear();
                codec::encode(r, buf.blob);
                buf.blob.as_slice()
            });
            let row = params![
                item.user_id.as_str(),
                item.envelope.from.as_str(),
                item.envelope.id.as_str(),
                text,
                item.stored_ms as i64,
                item.expires_ms as i64,
                record
            ];
            let added = match insert.execute(row).map_err(backend)? {
                // Already there: waiting (the item is not stored twice), or delivered and
                // kept for its record (then it goes, and the item is stored again).
                0 if replace_delivered(&tx, item)? => insert.execute(row).map_err(backend)?,
                n => n,
            };
            if added == 0 {
                unfolded.extend(item.record.as_deref());
            }
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
        for user in order {
            let Some(n) = counts.get_mut(user).filter(|n| **n > cap) else {
                continue;
            };
            let dropped = trim(&tx, user, cap)?;
            *n = n.saturating_sub(dropped.len());
            out.dropped.extend(dropped);
        }
        let mut save = RecordWriter::new(&tx)?;
        // The records given are newer than those their copies carried.
        for r in unfolded.into_iter().chain(records) {
            save.save(r)?;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(out)
}

/// A delivered copy of `item`'s message for its user (kept for its record) goes: its record
/// to the records table (where a newer one stays). Whether there was one.
fn replace_delivered(conn: &Connection, item: &OfflineItem) -> Result<bool, StoreError> {
    let key = params![
        item.envelope.from.as_str(),
        item.envelope.id.as_str(),
        item.user_id.as_str()
    ];
    let row: Option<(i64, Option<Vec<u8>>, String)> = conn
        .prepare_cached(
            "SELECT seq, record, envelope FROM offline
             WHERE from_user = ?1 AND message_id = ?2 AND user_id = ?3 AND expires_ms = 0",
        )
        .map_err(backend)?
        .query_row(key, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(backend)?;
    let Some((seq, record, envelope)) = row else {
        return Ok(false);
    };
    if let Some(blob) = record {
        records::keep_folded(
            conn,
            item.envelope.from.as_str(),
            item.envelope.id.as_str(),
            &blob,
            &envelope,
        )?;
    }
    conn.execute("DELETE FROM offline WHERE seq = ?1", params![seq])
        .map_err(backend)?;
    Ok(true)
}

/// Deletes the oldest waiting rows of `user` beyond `cap`; returns them (the records they
/// carried moved to the records table).
fn trim(conn: &Connection, user: &UserId, cap: usize) -> Result<Vec<OfflineItem>, StoreError> {
    let mut over = conn
        .prepare_cached(
            "SELECT seq, envelope, stored_ms, expires_ms, from_user, message_id, record
             FROM offline WHERE user_id = ?1 AND expires_ms != 0
             ORDER BY seq DESC LIMIT -1 OFFSET ?2",
        )
        .map_err(backend)?;
    let mut delete = conn
        .prepare_cached("DELETE FROM offline WHERE seq = ?1")
        .map_err(backend)?;
    type Over = (i64, String, i64, i64, String, String, Option<Vec<u8>>);
    let rows: Vec<Over> = over
        .query_map(params![user.as_str(), cap as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .map_err(backend)?
        .collect::<Result<_, _>>()
        .map_err(backend)?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, json, stored, expires, from, id, record) in rows.into_iter().rev() {
        if let Some(blob) = record {
            records::keep_folded(conn, &from, &id, &blob, &json)?;
        }
        if delete.execute(params![seq]).map_err(backend)? > 0 {
            out.extend(item_from_row(user, &json, stored, expires, seq));
        }
    }
    Ok(out)
}

/// Removes the copies of every `(user, keys)` in one transaction (the pages the removals
/// share are written once). How many each removal took out of its user's queue.
///
/// A copy that carries its message's record is not deleted: it is marked delivered
/// (`expires_ms = 0`: it expires at once, and is neither fetched nor counted again), one
/// small change in place instead of deleting the row from three b-trees and writing its
/// record to two more. The record stays readable
/// there; the retention purge moves it to the records table (or drops it, once the
/// retention would) and deletes the row.
fn remove_in_one_transaction(
    conn: &Connection,
    removals: &[(UserId, Vec<MessageKey>)],
) -> Result<Vec<usize>, StoreError> {
    let tx = conn.unchecked_transaction().map_err(backend)?;
    let mut counts = Vec::with_capacity(removals.len());
    {
        let mut deliver = tx
            .prepare_cached(
                "UPDATE offline SET expires_ms = 0
                 WHERE from_user = ?1 AND message_id = ?2 AND user_id = ?3
                   AND expires_ms != 0 AND record IS NOT NULL",
            )
            .map_err(backend)?;
        let mut delete = tx
            .prepare_cached(
                "DELETE FROM offline
                 WHERE from_user = ?1 AND message_id = ?2 AND user_id = ?3 AND expires_ms != 0",
            )
            .map_err(backend)?;
        for (user, keys) in removals {
            let mut n = 0;
            for k in keys {
                let key = params![k.from.as_str(), k.id.as_str(), user.as_str()];
                n += match deliver.execute(key).map_err(backend)? {
                    0 => delete.execute(key).map_err(backend)?,
                    marked => marked,
                };
            }
            counts.push(n);
        }
    }
    tx.commit().map_err(backend)?;
    Ok(counts)
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
        let buf = Buffers {
            json: &mut self.json,
            blob: &mut self.blob,
        };
        let result = commit_batch(
            &self.conn,
            &self.queued,
            buf,
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
        let removal = [(user.clone(), keys.to_vec())];
        self.remove_offline_many(&removal).pop().unwrap_or(Ok(0))
    }

    fn remove_offline_many(
        &mut self,
        removals: &[(UserId, Vec<MessageKey>)],
    ) -> Vec<Result<usize, StoreError>> {
        match remove_in_one_transaction(&self.conn, removals) {
            Ok(counts) => {
                for ((user, _), n) in removals.iter().zip(&counts) {
                    if let Some(q) = self.queued.get_mut(user) {
                        *q = q.saturating_sub(*n);
                    }
                }
                counts.into_iter().map(Ok).collect()
            }
            Err(e) => removals.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn purge(&mut self, now_ms: u64, records_before_ms: u64) -> Result<usize, StoreError> {
        self.queued.clear();
        let tx = self.conn.transaction().map_err(backend)?;
        records::purge_folded(&tx, now_ms, records_before_ms)?;
        let a = tx
            .execute(
                "DELETE FROM offline WHERE expires_ms <= ?1",
                params![now_ms as i64],
            )
            .map_err(backend)?;
        let b = tx
            .execute(
                "DELETE FROM records WHERE final = 1 AND created_ms < ?1",
                params![records_before_ms as i64],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(a + b)
    }

    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError> {
        let rows = records::records_where(&self.conn, records::ALL_RECORDS, [])?;
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let r =
                r.map_err(|e| StoreError::Backend(format!("{e} (in {})", self.path.display())))?;
            if seen.insert(r.key.clone()) {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn get_record(&mut self, key: &MessageKey) -> Result<Option<MessageRecord>, StoreError> {
        for sql in [records::RECORD_ROW, records::FOLDED_RECORD] {
            let found = records::records_where(
                &self.conn,
                sql,
                params![key.from.as_str(), key.id.as_str()],
            )?;
            if let Some(r) = found.into_iter().next() {
                return r.map(Some).map_err(StoreError::Backend);
            }
        }
        Ok(None)
    }

    fn find_records(&mut self, id: &MessageId) -> Result<Vec<MessageRecord>, StoreError> {
        // No index on the id alone (it would cost every record write): this lookup is for
        // the HTTP API, and the table holds unsettled records only on one node.
        let rows =
            records::records_where(&self.conn, records::RECORDS_BY_ID, params![id.as_str()])?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in rows {
            let r = r.map_err(StoreError::Backend)?;
            if seen.insert(r.key.clone()) {
                out.push(r);
            }
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
            .query_row(
                "SELECT COUNT(*) FROM offline WHERE expires_ms != 0",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(backend)
    }

    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM offline WHERE user_id = ?1 AND expires_ms != 0",
                params![user.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(backend)
    }
}
