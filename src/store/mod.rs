//! Durable state: message records and the per-user offline queue behind one [`Store`] trait,
//! with an in-memory backend ([`MemoryStore`]), an embedded SQLite backend
//! ([`SqliteStore`], WAL mode) that the server binary uses by default, and a Redis backend
//! ([`RedisStore`]) that several nodes can share.
//!
//! Blocking I/O never runs on the hub's thread: the store thread owns the backend. Offline
//! items go straight into its queue and are committed in batches (group commit: while one
//! transaction runs, the next batch fills), each caller answered once its batch is durable;
//! changed records are pulled from the record book with each batch, or after a short window
//! (`store.batch_window_ms`) when no batch goes.

mod actor;
mod codec;
mod intake;
mod memory;
mod redis_store;
mod sqlite;
#[cfg(test)]
mod tests;
mod thread;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use actor::{RecordSource, RecordsChanged, StoreHandle};
pub use memory::MemoryStore;
pub(crate) use redis_store::redacted as redacted_url;
pub use redis_store::RedisStore;
pub use sqlite::SqliteStore;

use crate::config::{Config, StoreBackend};
use crate::model::{MessageKey, MessageRecord, RecordTarget};
use crate::protocol::{Envelope, MessageId, UserId};

/// A message waiting in a user's offline queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfflineItem {
    /// The recipient.
    pub user_id: UserId,
    /// The message (shared with its record and the other recipients' copies).
    pub envelope: Arc<Envelope>,
    /// When it was stored (epoch ms).
    pub stored_ms: u64,
    /// After this (epoch ms) it is dropped undelivered.
    pub expires_ms: u64,
    /// Its place in the user's queue (assigned by the store; 0 before it is stored).
    #[serde(default)]
    pub seq: u64,
    /// The message's record, to keep with this copy: set on the first copy of a tracked
    /// message whose record was never written, so that one write keeps both (see
    /// [`Store::commit`]). Never read back with the item.
    #[serde(skip)]
    pub record: Option<Arc<MessageRecord>>,
}

/// A message to send later (`DispatchLater`), kept until it is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelayedItem {
    /// Where it goes.
    pub target: RecordTarget,
    /// The message.
    pub envelope: Envelope,
    /// When to send it (epoch ms).
    pub due_ms: u64,
}

impl DelayedItem {
    /// The message's key.
    pub fn key(&self) -> MessageKey {
        MessageKey::of(&self.envelope)
    }
}

/// Reopens a backend after its actor panicked (the same database, never a different one).
pub type Reopen = Box<dyn Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync>;

/// A store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory cannot be created or written.
    DataDir(String),
    /// The backend failed (I/O, disk full, corruption).
    Backend(String),
    /// The store actor is not running.
    Unavailable,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::DataDir(m) => write!(f, "data directory: {m}"),
            StoreError::Backend(m) => write!(f, "store: {m}"),
            StoreError::Unavailable => f.write_str("store unavailable"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What one committed batch did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Items dropped because a user's queue went over its cap (oldest first).
    pub dropped: Vec<OfflineItem>,
}

/// Message records, offline queues and delayed messages. Implementations block; they run on
/// the store's own thread.
pub trait Store: Send + 'static {
    /// Stores offline items and record snapshots in one transaction, then trims each
    /// touched user's queue to `cap`, oldest first. An item already stored for that user
    /// (same sender and id) is not stored twice.
    ///
    /// An item's `record` is kept like those of `records` (which are newer, when both hold
    /// the same message): a backend may keep it with the item (SQLite does, in the item's
    /// row), as long as it still finds it by its key once the item is gone.
    fn commit(
        &mut self,
        items: &[OfflineItem],
        records: &[MessageRecord],
        cap: usize,
    ) -> Result<BatchOutcome, StoreError>;

    /// Up to `limit` unexpired items of a user after queue position `after_seq`, oldest
    /// first.
    fn fetch_offline(
        &mut self,
        user: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError>;

    /// Removes delivered items; returns how many.
    fn remove_offline(&mut self, user: &UserId, keys: &[MessageKey]) -> Result<usize, StoreError>;

    /// Several [`Store::remove_offline`] at once (what the store thread has waiting), each
    /// answered. The default removes them one after the other; SQLite does them in one
    /// transaction (then they fail or succeed together).
    fn remove_offline_many(
        &mut self,
        removals: &[(UserId, Vec<MessageKey>)],
    ) -> Vec<Result<usize, StoreError>> {
        removals
            .iter()
            .map(|(user, keys)| self.remove_offline(user, keys))
            .collect()
    }

    /// Drops expired items and settled records last changed before `records_before_ms`.
    fn purge(&mut self, now_ms: u64, records_before_ms: u64) -> Result<usize, StoreError>;

    /// Every stored record (at startup). An unreadable record is an error.
    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError>;

    /// One stored record.
    fn get_record(&mut self, key: &MessageKey) -> Result<Option<MessageRecord>, StoreError>;

    /// The stored records with this id, from any sender (an id is unique per sender only):
    /// how a node finds a record another cluster node holds. The default says the backend
    /// cannot look records up by id alone.
    fn find_records(&mut self, id: &MessageId) -> Result<Vec<MessageRecord>, StoreError> {
        Err(StoreError::Backend(format!(
            "this store cannot look up message {id} without its sender"
        )))
    }

    /// Queued items for a user (for tests and statistics).
    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError>;

    /// Queued items of every user (the `wsc_offline_store_depth` gauge). The default says
    /// the backend cannot count them; the gauge is then left out.
    fn offline_total(&mut self) -> Result<usize, StoreError> {
        Err(StoreError::Backend(
            "this store does not count its offline items".into(),
        ))
    }

    /// Keeps a delayed message until [`Store::remove_delayed`].
    fn save_delayed(&mut self, item: &DelayedItem) -> Result<(), StoreError>;

    /// Forgets a delayed message (sent).
    fn remove_delayed(&mut self, key: &MessageKey) -> Result<(), StoreError>;

    /// Every delayed message (at startup).
    fn load_delayed(&mut self) -> Result<Vec<DelayedItem>, StoreError>;

    /// How to open this backend again after a panic; `None` if it cannot be (the store then
    /// fails every operation rather than switch to another backend).
    fn reopener(&self) -> Option<Reopen> {
        None
    }
}

/// Opens the backend `config.store.backend` names (memory when unset): SQLite in
/// `server.data_dir`, or Redis at `store.redis_url`.
pub fn open(config: &Config) -> Result<Box<dyn Store>, StoreError> {
    let s = &config.store;
    Ok(match s.backend.unwrap_or(StoreBackend::Memory) {
        StoreBackend::Memory => Box::new(MemoryStore::default()),
        StoreBackend::Sqlite => Box::new(SqliteStore::open_limited(
            &config.server.data_dir,
            s.max_db_bytes,
        )?),
        StoreBackend::Redis => {
            let url = s.redis_url.as_deref().ok_or_else(|| {
                StoreError::DataDir("store.redis_url is required with the redis backend".into())
            })?;
            let store = RedisStore::open(url, &s.redis_prefix, s.redis_require_aof)?;
            match config.cluster.enabled() {
                // Each node loads only the records it owns.
                true => Box::new(store.owned_by(&config.hub.node_id)),
                false => Box::new(store),
            }
        }
    })
}
