//! Durable state: message records and the per-user offline queue behind one [`Store`] trait,
//! with an in-memory backend ([`MemoryStore`]) and an embedded SQLite backend
//! ([`SqliteStore`], WAL mode) that the server binary uses by default.
//!
//! Blocking I/O never runs on the hub's thread: a [`StoreActor`] owns the backend on an
//! actix `SyncArbiter` thread, and a [`StoreWriter`] on the hub's arbiter gathers writes for
//! a short window (`store.batch_window_ms`) and commits them in one transaction (group
//! commit), answering each writer once its batch is durable.

mod actor;
mod memory;
mod sqlite;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use actor::{
    Commit, CountOffline, EnqueueOffline, FetchOffline, PurgeExpired, RemoveOffline, SaveRecord,
    StoreActor, StoreHandle, StoreWriter,
};
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use crate::protocol::{Envelope, MessageId, UserId};
use crate::supervision::MessageRecord;

/// A message waiting in a user's offline queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfflineItem {
    /// The recipient.
    pub user_id: UserId,
    /// The message.
    pub envelope: Envelope,
    /// When it was stored (epoch ms).
    pub stored_ms: u64,
    /// After this (epoch ms) it is dropped undelivered.
    pub expires_ms: u64,
}

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

/// Message records and offline queues. Implementations block; they run on the store's
/// own thread.
pub trait Store: Send + 'static {
    /// Stores offline items and record snapshots in one transaction, then trims each
    /// touched user's queue to `cap`, oldest first.
    fn commit(
        &mut self,
        items: &[OfflineItem],
        records: &[MessageRecord],
        cap: usize,
    ) -> Result<BatchOutcome, StoreError>;

    /// Up to `limit` unexpired items of a user, oldest first.
    fn fetch_offline(
        &mut self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError>;

    /// Removes delivered items; returns how many.
    fn remove_offline(&mut self, user: &UserId, ids: &[MessageId]) -> Result<usize, StoreError>;

    /// Drops expired items and settled records last changed before `records_before_ms`.
    fn purge(&mut self, now_ms: u64, records_before_ms: u64) -> Result<usize, StoreError>;

    /// Every stored record (at startup).
    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError>;

    /// Queued items for a user (for tests and statistics).
    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError>;
}
