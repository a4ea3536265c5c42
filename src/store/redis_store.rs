//! The shared durable backend: Redis (7.x) with its append-only file on.
//!
//! Every key starts with a prefix (`store.redis_prefix`, default `wsc`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:seq` | string | the last queue position given out (one counter for all users) |
//! | `P:off:{user}` | sorted set | the user's offline messages (member: the message key, score: its position) |
//! | `P:offi:{user}` | hash | message key -> the stored item (JSON) |
//! | `P:offexp` | sorted set | `{len(user)}:{user}{key}` by expiry time, for purging |
//! | `P:rec` | hash | message key -> message record (JSON) |
//! | `P:recfinal` | sorted set | keys of settled records by creation time, for purging |
//! | `P:delayed` | hash | message key -> delayed message (JSON) |
//! | `P:recowner` | hash | cluster mode: message key -> the node that owns the record |
//! | `P:recown:{node}` | set | cluster mode: keys of the records a node owns (what it loads) |
//! | `P:delayed:{node}` | hash | cluster mode: a node's delayed messages (instead of `P:delayed`) |
//!
//! A message key is the JSON array `["from","id"]`. A commit runs as one Lua script, so it
//! is atomic like the SQLite transaction, and, with `appendfsync always`, durable when it
//! answers (with `everysec`, up to a second of commits can be lost if the Redis host
//! itself fails; a crash of the hub's node loses nothing either way).

use redis::{Client, Connection, Script, Value};

use super::{BatchOutcome, DelayedItem, OfflineItem, Reopen, Store, StoreError};
use crate::model::{now_ms, MessageKey, MessageRecord};
use crate::protocol::{MessageId, UserId};

/// Offline items stored per script call while purging (keeps each call short).
const PURGE_BATCH: usize = 1000;

const COMMIT: &str = r#"
local p = ARGV[1]
local cap = tonumber(ARGV[2])
local ni = tonumber(ARGV[3])
local i = 4
local touched = {}
local order = {}
for n = 1, ni do
  local user, k, item, exp = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  if redis.call('HSETNX', p .. ':offi:' .. user, k, item) == 1 then
    local seq = redis.call('INCR', p .. ':seq')
    redis.call('ZADD', p .. ':off:' .. user, seq, k)
    redis.call('ZADD', p .. ':offexp', exp, string.len(user) .. ':' .. user .. k)
    if not touched[user] then
      touched[user] = true
      table.insert(order, user)
    end
  end
end
local dropped = {}
for _, user in ipairs(order) do
  local z = p .. ':off:' .. user
  local over = redis.call('ZCARD', z) - cap
  if over > 0 then
    local ks = redis.call('ZRANGE', z, 0, over - 1, 'WITHSCORES')
    for j = 1, #ks, 2 do
      local h = p .. ':offi:' .. user
      table.insert(dropped, user)
      table.insert(dropped, ks[j + 1])
      table.insert(dropped, redis.call('HGET', h, ks[j]) or '')
      redis.call('HDEL', h, ks[j])
      redis.call('ZREM', p .. ':offexp', string.len(user) .. ':' .. user .. ks[j])
    end
    redis.call('ZREMRANGEBYRANK', z, 0, over - 1)
  end
end
local nr = tonumber(ARGV[i])
i = i + 1
local owner = ARGV[i + 4 * nr]
for n = 1, nr do
  local k, rec, fin, created = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  redis.call('HSET', p .. ':rec', k, rec)
  if owner ~= '' then
    local was = redis.call('HGET', p .. ':recowner', k)
    if was ~= owner then
      if was then
        redis.call('SREM', p .. ':recown:' .. was, k)
      end
      redis.call('HSET', p .. ':recowner', k, owner)
      redis.call('SADD', p .. ':recown:' .. owner, k)
    end
  end
  if fin == '1' then
    redis.call('ZADD', p .. ':recfinal', created, k)
  else
    redis.call('ZREM', p .. ':recfinal', k)
  end
end
return dropped
"#;

const REMOVE: &str = r#"
local p, user = ARGV[1], ARGV[2]
local n = 0
for i = 3, #ARGV do
  local k = ARGV[i]
  n = n + redis.call('HDEL', p .. ':offi:' .. user, k)
  redis.call('ZREM', p .. ':off:' .. user, k)
  redis.call('ZREM', p .. ':offexp', string.len(user) .. ':' .. user .. k)
end
return n
"#;

const PURGE: &str = r#"
local p, now, cutoff, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local gone = redis.call('ZRANGEBYSCORE', p .. ':offexp', '-inf', now, 'LIMIT', 0, limit)
for _, e in ipairs(gone) do
  local c = string.find(e, ':', 1, true)
  local len = tonumber(string.sub(e, 1, c - 1))
  local user = string.sub(e, c + 1, c + len)
  local k = string.sub(e, c + len + 1)
  redis.call('HDEL', p .. ':offi:' .. user, k)
  redis.call('ZREM', p .. ':off:' .. user, k)
  redis.call('ZREM', p .. ':offexp', e)
end
local recs = redis.call('ZRANGEBYSCORE', p .. ':recfinal', '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
for _, k in ipairs(recs) do
  redis.call('HDEL', p .. ':rec', k)
  redis.call('ZREM', p .. ':recfinal', k)
  local o = redis.call('HGET', p .. ':recowner', k)
  if o then
    redis.call('SREM', p .. ':recown:' .. o, k)
    redis.call('HDEL', p .. ':recowner', k)
  end
end
return {#gone, #recs}
"#;

/// Redis behind the [`Store`] trait (see the module docs for the keys).
pub struct RedisStore {
    conn: Connection,
    url: String,
    prefix: String,
    require_aof: bool,
    /// Cluster mode: this node's id (records are owned per node).
    owner: Option<String>,
    commit: Script,
    remove: Script,
    purge: Script,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

fn key_of(k: &MessageKey) -> String {
    // An array of two strings always serializes.
    serde_json::to_string(&(k.from.as_str(), k.id.as_str())).unwrap_or_default()
}

/// `text` as a literal in a Redis glob pattern.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The URL without its password, for messages and `GET /api/config`.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

impl RedisStore {
    /// Connects to `url`, keeping keys under `prefix`. With `require_aof`, a Redis whose
    /// append-only file is off is refused (a Redis restart would lose accepted messages).
    pub fn open(url: &str, prefix: &str, require_aof: bool) -> Result<Self, StoreError> {
        let shown = redacted(url);
        let client = Client::open(url)
            .map_err(|e| StoreError::DataDir(format!("redis url {shown}: {e}")))?;
        let mut conn = client
            .get_connection_with_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| StoreError::DataDir(format!("cannot connect to redis at {shown}: {e}")))?;
        if require_aof {
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query(&mut conn)
                .map_err(|e| StoreError::DataDir(format!("redis at {shown}: INFO: {e}")))?;
            if !info.lines().any(|l| l.trim() == "aof_enabled:1") {
                return Err(StoreError::DataDir(format!(
                    "redis at {shown} has its append-only file off: a Redis restart would lose \
                     accepted messages. Start it with `appendonly yes` (and `appendfsync always` \
                     or `everysec`), or set store.redis_require_aof = false"
                )));
            }
        }
        Ok(RedisStore {
            conn,
            url: url.to_string(),
            prefix: prefix.to_string(),
            require_aof,
            owner: None,
            commit: Script::new(COMMIT),
            remove: Script::new(REMOVE),
            purge: Script::new(PURGE),
        })
    }

    /// Cluster mode: the records this store writes belong to `node`, and only those are
    /// loaded at startup (another node's are taken over when it dies).
    pub fn owned_by(mut self, node: &str) -> Self {
        self.owner = Some(node.to_string());
        self
    }

    /// Delayed messages: one hash per node in cluster mode (a node sends only its own; a
    /// dead node's are taken over with its records).
    fn delayed_key(&self) -> String {
        match &self.owner {
            Some(o) => self.k(&format!("delayed:{o}")),
            None => self.k("delayed"),
        }
    }

    fn k(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    fn item(&self, user: &UserId, json: &str, seq: u64) -> Option<OfflineItem> {
        match serde_json::from_str::<OfflineItem>(json) {
            Ok(mut item) => {
                item.user_id = user.clone();
                item.seq = seq;
                Some(item)
            }
            Err(e) => {
                log::error!("unreadable offline message for user_id={user} seq={seq}: {e}");
                None
            }
        }
    }
}

impl RedisStore {
    /// A stored record; an unreadable one is an error naming it (never skipped quietly).
    fn record_of(&self, key: &str, json: &str) -> Result<MessageRecord, StoreError> {
        serde_json::from_str(json).map_err(|e| {
            StoreError::Backend(format!(
                "unreadable message record {key} in redis {}: {e}",
                redacted(&self.url)
            ))
        })
    }

    /// Every record in `P:rec`, or those whose key matches the glob `pattern`.
    fn scan_records(&mut self, pattern: Option<&str>) -> Result<Vec<MessageRecord>, StoreError> {
        let key = self.k("rec");
        let mut out = Vec::new();
        let mut cursor = 0u64;
        loop {
            let mut cmd = redis::cmd("HSCAN");
            cmd.arg(&key).arg(cursor);
            if let Some(p) = pattern {
                cmd.arg("MATCH").arg(p);
            }
            let (next, pairs): (u64, Vec<(String, String)>) = cmd
                .arg("COUNT")
                .arg(1000)
                .query(&mut self.conn)
                .map_err(backend)?;
            for (k, json) in pairs {
                out.push(self.record_of(&k, &json)?);
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    fn load_owned(&mut self, owner: &str) -> Result<Vec<MessageRecord>, StoreError> {
        let set = self.k(&format!("recown:{owner}"));
        let keys: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&set)
            .query(&mut self.conn)
            .map_err(backend)?;
        let mut out = Vec::new();
        for chunk in keys.chunks(1000) {
            let jsons: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.k("rec"))
                .arg(chunk)
                .query(&mut self.conn)
                .map_err(backend)?;
            for (k, json) in chunk.iter().zip(jsons) {
                let Some(json) = json else { continue };
                out.push(self.record_of(k, &json)?);
            }
        }
        Ok(out)
    }
}

impl Store for RedisStore {
    fn commit(
        &mut self,
        items: &[OfflineItem],
        records: &[MessageRecord],
        cap: usize,
    ) -> Result<BatchOutcome, StoreError> {
        let mut inv = self.commit.prepare_invoke();
        inv.arg(&self.prefix).arg(cap).arg(items.len());
        for item in items {
            let json = serde_json::to_string(item).map_err(backend)?;
            inv.arg(item.user_id.as_str())
                .arg(key_of(&MessageKey::of(&item.envelope)))
                .arg(json)
                .arg(item.expires_ms);
        }
        // Records carried by items first: those of `records` are newer.
        let carried: Vec<&MessageRecord> =
            items.iter().filter_map(|i| i.record.as_deref()).collect();
        inv.arg(carried.len() + records.len());
        for r in carried.into_iter().chain(records) {
            let json = serde_json::to_string(r).map_err(backend)?;
            inv.arg(key_of(&r.key))
                .arg(json)
                .arg(if r.is_final() { "1" } else { "0" })
                .arg(r.created_ms);
        }
        inv.arg(self.owner.as_deref().unwrap_or(""));
        let dropped: Vec<String> = inv.invoke(&mut self.conn).map_err(backend)?;
        let mut out = BatchOutcome::default();
        for d in dropped.chunks(3) {
            let [user, seq, json] = d else { continue };
            let user = UserId::from(user.as_str());
            let seq = seq.parse().unwrap_or(0);
            out.dropped.extend(self.item(&user, json, seq));
        }
        Ok(out)
    }

    fn fetch_offline(
        &mut self,
        user: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        let now = now_ms();
        let zkey = self.k(&format!("off:{user}"));
        let hkey = self.k(&format!("offi:{user}"));
        let mut out = Vec::new();
        let mut from = after_seq;
        // Expired items are skipped (the purge removes them), so read until `limit` live
        // ones are found or the queue ends.
        while out.len() < limit {
            let want = limit - out.len();
            let page: Vec<(String, u64)> = redis::cmd("ZRANGE")
                .arg(&zkey)
                .arg(format!("({from}"))
                .arg("+inf")
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(want)
                .arg("WITHSCORES")
                .query(&mut self.conn)
                .map_err(backend)?;
            if page.is_empty() {
                break;
            }
            let keys: Vec<&str> = page.iter().map(|(k, _)| k.as_str()).collect();
            let jsons: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&hkey)
                .arg(&keys)
                .query(&mut self.conn)
                .map_err(backend)?;
            for ((_, seq), json) in page.iter().zip(jsons) {
                from = *seq;
                let Some(json) = json else { continue };
                if let Some(item) = self.item(user, &json, *seq) {
                    if item.expires_ms > now {
                        out.push(item);
                    }
                }
            }
            if page.len() < want {
                break;
            }
        }
        Ok(out)
    }

    fn remove_offline(&mut self, user: &UserId, keys: &[MessageKey]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut inv = self.remove.prepare_invoke();
        inv.arg(&self.prefix).arg(user.as_str());
        for k in keys {
            inv.arg(key_of(k));
        }
        inv.invoke(&mut self.conn).map_err(backend)
    }

    fn purge(&mut self, now_ms: u64, records_before_ms: u64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let (items, recs): (usize, usize) = self
                .purge
                .arg(&self.prefix)
                .arg(now_ms)
                .arg(records_before_ms)
                .arg(PURGE_BATCH)
                .invoke(&mut self.conn)
                .map_err(backend)?;
            total += items + recs;
            if items < PURGE_BATCH && recs < PURGE_BATCH {
                return Ok(total);
            }
        }
    }

    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError> {
        if let Some(owner) = self.owner.clone() {
            return self.load_owned(&owner);
        }
        self.scan_records(None)
    }

    fn get_record(&mut self, key: &MessageKey) -> Result<Option<MessageRecord>, StoreError> {
        let json: Option<String> = redis::cmd("HGET")
            .arg(self.k("rec"))
            .arg(key_of(key))
            .query(&mut self.conn)
            .map_err(backend)?;
        json.map(|j| serde_json::from_str(&j).map_err(backend))
            .transpose()
    }

    fn find_records(&mut self, id: &MessageId) -> Result<Vec<MessageRecord>, StoreError> {
        // Keys are `["from","id"]`: scan for those ending in this id (an O(records) scan,
        // for the HTTP API; purging keeps the hash to recent and unsettled records).
        let pattern = format!(
            "*,{}]",
            glob_escape(&serde_json::to_string(id.as_str()).map_err(backend)?)
        );
        let mut out = self.scan_records(Some(&pattern))?;
        out.retain(|r| r.key.id == *id);
        Ok(out)
    }

    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError> {
        redis::cmd("ZCARD")
            .arg(self.k(&format!("off:{user}")))
            .query(&mut self.conn)
            .map_err(backend)
    }

    fn offline_total(&mut self) -> Result<usize, StoreError> {
        // Every queued item has one expiry entry.
        redis::cmd("ZCARD")
            .arg(self.k("offexp"))
            .query(&mut self.conn)
            .map_err(backend)
    }

    fn save_delayed(&mut self, item: &DelayedItem) -> Result<(), StoreError> {
        let json = serde_json::to_string(item).map_err(backend)?;
        let _: Value = redis::cmd("HSET")
            .arg(self.delayed_key())
            .arg(key_of(&item.key()))
            .arg(json)
            .query(&mut self.conn)
            .map_err(backend)?;
        Ok(())
    }

    fn remove_delayed(&mut self, key: &MessageKey) -> Result<(), StoreError> {
        let _: Value = redis::cmd("HDEL")
            .arg(self.delayed_key())
            .arg(key_of(key))
            .query(&mut self.conn)
            .map_err(backend)?;
        Ok(())
    }

    fn load_delayed(&mut self) -> Result<Vec<DelayedItem>, StoreError> {
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.delayed_key())
            .query(&mut self.conn)
            .map_err(backend)?;
        let mut out = Vec::with_capacity(all.len());
        for (k, json) in all {
            let item: DelayedItem = serde_json::from_str(&json)
                .map_err(|e| StoreError::Backend(format!("unreadable delayed message {k}: {e}")))?;
            out.push(item);
        }
        out.sort_by_key(|d| d.due_ms);
        Ok(out)
    }

    fn reopener(&self) -> Option<Reopen> {
        let (url, prefix, aof) = (self.url.clone(), self.prefix.clone(), self.require_aof);
        let owner = self.owner.clone();
        Some(Box::new(move || {
            let mut store = RedisStore::open(&url, &prefix, aof)?;
            store.owner = owner.clone();
            Ok(Box::new(store) as Box<dyn Store>)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_not_shown() {
        assert_eq!(
            redacted("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(redacted("redis://127.0.0.1/"), "redis://127.0.0.1/");
    }

    #[test]
    fn keys_are_unambiguous() {
        let a = MessageKey {
            from: UserId::from("a\",\"b"),
            id: "c".into(),
        };
        let b = MessageKey {
            from: UserId::from("a"),
            id: "b\",\"c".into(),
        };
        assert_ne!(key_of(&a), key_of(&b));
    }
}
