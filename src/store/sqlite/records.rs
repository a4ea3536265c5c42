//! Record rows: written in the compact encoding ([`crate::store::codec`]) with the
//! envelope's JSON beside it, read in that form or as the JSON of schema version 2; and
//! records kept in offline rows (see [`super::schema::OFFLINE_V3`]), moved to the records
//! table when their row goes.

use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{params, CachedStatement, Connection, Row};

use super::backend;
use crate::model::{MessageKey, MessageRecord};
use crate::protocol::{Envelope, MessageId, UserId};
use crate::store::{codec, StoreError};

/// Writes (inserts or replaces) record rows; reuses its buffers.
pub(super) struct RecordWriter<'c> {
    upsert: CachedStatement<'c>,
    blob: Vec<u8>,
    json: Vec<u8>,
}

impl<'c> RecordWriter<'c> {
    pub fn new(conn: &'c Connection) -> Result<Self, StoreError> {
        Ok(RecordWriter {
            upsert: conn
                .prepare_cached(
                    "INSERT INTO records (from_user, id, record, envelope, final, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (from_user, id) DO UPDATE SET record = excluded.record,
                         envelope = excluded.envelope, final = excluded.final",
                )
                .map_err(backend)?,
            blob: Vec::new(),
            json: Vec::new(),
        })
    }

    pub fn save(&mut self, r: &MessageRecord) -> Result<(), StoreError> {
        self.blob.clear();
        codec::encode(r, &mut self.blob);
        self.json.clear();
        serde_json::to_writer(&mut self.json, &*r.envelope).map_err(backend)?;
        let envelope = std::str::from_utf8(&self.json).map_err(backend)?;
        self.upsert
            .execute(params![
                r.key.from.as_str(),
                r.key.id.as_str(),
                self.blob.as_slice(),
                envelope,
                r.is_final() as i64,
                r.created_ms as i64
            ])
            .map_err(backend)?;
        Ok(())
    }
}

/// Keeps the record an offline row carried (its compact encoding and the row's envelope) in
/// the records table, as the row goes; a record row already there is newer and stays.
pub(super) struct FoldedKeeper<'c> {
    insert: CachedStatement<'c>,
}

impl<'c> FoldedKeeper<'c> {
    pub fn new(conn: &'c Connection) -> Result<Self, StoreError> {
        Ok(FoldedKeeper {
            insert: conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO records (from_user, id, record, envelope, final, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(backend)?,
        })
    }

    pub fn keep(
        &mut self,
        from: &str,
        id: &str,
        blob: &[u8],
        envelope: &str,
    ) -> Result<(), StoreError> {
        let h = match codec::header(blob) {
            Ok(h) => h,
            Err(e) => {
                log::error!("unreadable message record id={id} from={from} in an offline row: {e}; dropped with its row");
                return Ok(());
            }
        };
        self.insert
            .execute(params![
                from,
                id,
                blob,
                envelope,
                h.is_final as i64,
                h.created_ms as i64
            ])
            .map_err(backend)?;
        Ok(())
    }
}

/// Keeps one record an offline row carried (see [`FoldedKeeper`]).
pub(super) fn keep_folded(
    conn: &Connection,
    from: &str,
    id: &str,
    blob: &[u8],
    envelope: &str,
) -> Result<(), StoreError> {
    FoldedKeeper::new(conn)?.keep(from, id, blob, envelope)
}

/// The record in a row of `(from_user, id, record, envelope)`.
pub(super) fn record_of(row: &Row<'_>) -> Result<MessageRecord, String> {
    let from: String = row.get(0).map_err(|e| e.to_string())?;
    let id: String = row.get(1).map_err(|e| e.to_string())?;
    let unreadable = |e: String| format!("unreadable message record id={id} from={from}: {e}");
    match row.get_ref(2).map_err(|e| e.to_string())? {
        // Schema version 2: the whole record as JSON.
        ValueRef::Text(json) => serde_json::from_slice(json).map_err(|e| unreadable(e.to_string())),
        ValueRef::Blob(blob) => {
            let json = match row.get_ref(3).map_err(|e| e.to_string())? {
                ValueRef::Text(t) => t,
                _ => return Err(unreadable("no envelope".into())),
            };
            let envelope: Envelope =
                serde_json::from_slice(json).map_err(|e| unreadable(e.to_string()))?;
            let key = MessageKey::new(UserId::from(from.as_str()), MessageId::from(id.as_str()));
            codec::decode(blob, key, Arc::new(envelope)).map_err(unreadable)
        }
        _ => Err(unreadable("neither JSON nor the compact encoding".into())),
    }
}

/// Every record row that `sql` selects as `(from_user, id, record, envelope)` with `params`.
pub(super) fn records_where(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Result<MessageRecord, String>>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(record_of(row));
    }
    Ok(out)
}

/// The record row of `(from_user, id)`.
pub(super) const RECORD_ROW: &str =
    "SELECT from_user, id, record, envelope FROM records WHERE from_user = ?1 AND id = ?2";

/// The record an offline row of `(from_user, id)` carries (read when there is no record
/// row, which would be newer).
pub(super) const FOLDED_RECORD: &str = "
    SELECT from_user, message_id, record, envelope FROM offline
    WHERE from_user = ?1 AND message_id = ?2 AND record IS NOT NULL
    ORDER BY seq DESC LIMIT 1";

/// Records with an id, from any sender: record rows, and records offline rows carry that
/// have no record row.
pub(super) const RECORDS_BY_ID: &str = "
    SELECT from_user, id, record, envelope FROM records WHERE id = ?1
    UNION ALL
    SELECT from_user, message_id, record, envelope FROM offline o
        WHERE message_id = ?1 AND record IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM records r WHERE r.from_user = o.from_user AND r.id = o.message_id)";

/// Every record: record rows, and records offline rows carry that have no record row.
pub(super) const ALL_RECORDS: &str = "
    SELECT from_user, id, record, envelope FROM records
    UNION ALL
    SELECT from_user, message_id, record, envelope FROM offline o
        WHERE record IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM records r WHERE r.from_user = o.from_user AND r.id = o.message_id)";

/// Retention for records in offline rows: those of rows that expired are moved to the
/// records table unless the retention drops them anyway (settled, created before
/// `before_ms`); rows still queued lose a record the retention drops. Runs inside the
/// caller's transaction, before the expired rows are deleted.
pub(super) fn purge_folded(
    conn: &Connection,
    now_ms: u64,
    before_ms: u64,
) -> Result<(), StoreError> {
    let dropped =
        |blob: &[u8]| codec::header(blob).is_ok_and(|h| h.is_final && h.created_ms < before_ms);
    let mut expired = conn
        .prepare_cached(
            "SELECT from_user, message_id, record, envelope FROM offline
             WHERE expires_ms <= ?1 AND record IS NOT NULL",
        )
        .map_err(backend)?;
    let mut rows = expired.query(params![now_ms as i64]).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        if let (ValueRef::Blob(blob), ValueRef::Text(envelope)) = (
            row.get_ref(2).map_err(backend)?,
            row.get_ref(3).map_err(backend)?,
        ) {
            if !dropped(blob) {
                let from: String = row.get(0).map_err(backend)?;
                let id: String = row.get(1).map_err(backend)?;
                let envelope = std::str::from_utf8(envelope).map_err(backend)?;
                keep_folded(conn, &from, &id, blob, envelope)?;
            }
        }
    }
    // A record is kept with its copy when it is stored, soon after its creation: rows stored
    // before the cutoff hold every record the retention may drop (or about to).
    let mut queued = conn
        .prepare_cached(
            "SELECT seq, record FROM offline
             WHERE expires_ms > ?1 AND stored_ms < ?2 AND record IS NOT NULL",
        )
        .map_err(backend)?;
    let mut rows = queued
        .query(params![now_ms as i64, before_ms as i64])
        .map_err(backend)?;
    let mut old = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        if let ValueRef::Blob(blob) = row.get_ref(1).map_err(backend)? {
            if dropped(blob) {
                old.push(row.get::<_, i64>(0).map_err(backend)?);
            }
        }
    }
    let mut clear = conn
        .prepare_cached("UPDATE offline SET record = NULL WHERE seq = ?1")
        .map_err(backend)?;
    for seq in old {
        clear.execute(params![seq]).map_err(backend)?;
    }
    Ok(())
}
