//! The PostgreSQL backend's optional read cache, invalidated across processes by
//! `LISTEN`/`NOTIFY`.
//!
//! It holds what [`SecretReads::fetch`](super::SecretReads::fetch) returns: **sealed** rows
//! (envelope bytes, keyed hash, attributes) and "no such secret" answers, never a plaintext
//! or a key. Every change to a secret row fires a notification from a trigger inside the
//! writing transaction (so it is sent only on commit, whoever wrote: this process, another
//! one, or a hand-written SQL statement); a dedicated connection listens and drops the
//! named entry (`*` drops everything).
//!
//! Staleness is bounded three ways:
//! - a notification removes the entry as soon as it reaches this process (on loopback or a
//!   LAN, well under a millisecond after the writer's commit);
//! - a fetch that raced with a notification does not fill the cache (a generation counter);
//! - without a live listening connection nothing is served from or put into the cache, and
//!   every entry expires after `max_age` anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tokio_postgres::AsyncMessage;

use super::StoredSecret;
use crate::SecretId;

/// How the read cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCacheConfig {
    /// The longest an entry is served, even when no notification arrives.
    pub max_age: Duration,
    /// The most entries kept; when full, expired entries are dropped first, then all.
    pub max_entries: usize,
}

impl Default for ReadCacheConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(60),
            max_entries: 10_000,
        }
    }
}

pub use super::ReadCacheStats;

/// A cached `fetch` answer and when it was read.
type Entry = (Instant, Option<StoredSecret>);

/// The cache shared by the backend and its listener task.
#[derive(Debug)]
pub(super) struct ReadCache {
    config: ReadCacheConfig,
    entries: Mutex<HashMap<SecretId, Entry>>,
    /// Bumped by every invalidation; a fetch fills the cache only if it did not move.
    generation: AtomicU64,
    live: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

impl ReadCache {
    pub(super) fn new(config: ReadCacheConfig) -> Self {
        Self {
            config,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<SecretId, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached answer for `id`, if fresh; otherwise a ticket to fill it after reading.
    pub(super) fn get(&self, id: &SecretId) -> Result<Option<StoredSecret>, FillTicket> {
        if self.live.load(Ordering::Acquire) {
            if let Some((at, answer)) = self.entries().get(id) {
                if at.elapsed() < self.config.max_age {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(answer.clone());
                }
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Err(FillTicket(self.generation.load(Ordering::Acquire)))
    }

    /// Stores what a fetch read, unless an invalidation arrived since its ticket.
    pub(super) fn fill(&self, ticket: FillTicket, id: &SecretId, answer: Option<StoredSecret>) {
        let mut entries = self.entries();
        // Checked under the lock, which invalidations also take after bumping.
        if !self.live.load(Ordering::Acquire) || self.generation.load(Ordering::Acquire) != ticket.0
        {
            return;
        }
        if entries.len() >= self.config.max_entries {
            let max_age = self.config.max_age;
            entries.retain(|_, (at, _)| at.elapsed() < max_age);
            if entries.len() >= self.config.max_entries {
                entries.clear();
            }
        }
        entries.insert(id.clone(), (Instant::now(), answer));
    }

    /// Drops `id`, or everything for `None`.
    pub(super) fn invalidate(&self, id: Option<&SecretId>) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut entries = self.entries();
        match id {
            Some(id) => {
                entries.remove(id);
            }
            None => entries.clear(),
        }
        // Counted once the entry is gone: whoever sees the count sees the removal.
        self.invalidations.fetch_add(1, Ordering::Release);
    }

    /// A notification's payload: `namespace env key`, or anything else to drop all.
    fn invalidate_payload(&self, payload: &str) {
        let mut parts = payload.split(' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(namespace), Some(env), Some(key), None) if !key.is_empty() => {
                self.invalidate(Some(&SecretId::new(namespace, env, key)));
            }
            _ => self.invalidate(None),
        }
    }

    fn set_live(&self, live: bool) {
        // Whatever was cached before a (re)connection may have missed notifications.
        self.invalidate(None);
        self.live.store(live, Ordering::Release);
    }

    pub(super) fn stats(&self) -> ReadCacheStats {
        ReadCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Acquire),
            live: self.live.load(Ordering::Acquire),
        }
    }
}

/// The generation a fetch started at.
#[derive(Debug, Clone, Copy)]
pub(super) struct FillTicket(u64);

/// Keeps a connection that `LISTEN`s on `channel` and applies notifications to `cache`;
/// reconnects after a second when the connection drops, and ends when the cache is gone.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    transport: super::transport::Transport,
    channel: String,
    cache: Weak<ReadCache>,
    connected: tokio::sync::oneshot::Sender<()>,
) {
    let mut connected = Some(connected);
    loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        if let Ok((client, mut messages)) = transport.connect_listening(&config).await {
            let statement = format!("LISTEN \"{channel}\"");
            let listen = client.batch_execute(&statement);
            // The connection must be polled for LISTEN to complete.
            let listened = tokio::select! {
                result = listen => result.is_ok(),
                () = drain_until_closed(&mut messages, &strong) => false,
            };
            if listened {
                strong.set_live(true);
                if let Some(sender) = connected.take() {
                    let _ = sender.send(());
                }
                let weak = Arc::downgrade(&strong);
                drop(strong);
                drain(&mut messages, &weak).await;
                let Some(strong) = weak.upgrade() else {
                    return;
                };
                strong.set_live(false);
            }
            drop(client);
        }
        if let Some(sender) = connected.take() {
            // Opening does not wait for a listener that cannot connect; the cache stays off.
            let _ = sender.send(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Applies notifications until the connection ends (or the cache is dropped).
async fn drain<S>(messages: &mut S, cache: &Weak<ReadCache>)
where
    S: futures_util::Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Unpin,
{
    while let Some(Ok(message)) = messages.next().await {
        let Some(cache) = cache.upgrade() else {
            return;
        };
        if let AsyncMessage::Notification(notification) = message {
            cache.invalidate_payload(notification.payload());
        }
    }
}

/// Like [`drain`] while the `LISTEN` is in flight.
async fn drain_until_closed<S>(messages: &mut S, cache: &Arc<ReadCache>)
where
    S: futures_util::Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Unpin,
{
    drain(messages, &Arc::downgrade(cache)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_cache() -> ReadCache {
        let cache = ReadCache::new(ReadCacheConfig::default());
        cache.set_live(true);
        cache
    }

    #[test]
    fn a_fill_after_an_invalidation_is_dropped() {
        let cache = live_cache();
        let id = SecretId::new("default", "global", "K");
        let ticket = cache.get(&id).unwrap_err();
        cache.invalidate_payload("default global K");
        cache.fill(ticket, &id, None);
        assert!(cache.get(&id).is_err(), "a racing fill must not be cached");
        let ticket = cache.get(&id).unwrap_err();
        cache.fill(ticket, &id, None);
        assert!(matches!(cache.get(&id), Ok(None)));
        assert_eq!(cache.stats().hits, 1);
    }

    #[test]
    fn payloads_name_one_entry_or_all() {
        let cache = live_cache();
        let a = SecretId::new("default", "global", "A");
        let b = SecretId::new("default", "prod", "B/c.d");
        for id in [&a, &b] {
            let ticket = cache.get(id).unwrap_err();
            cache.fill(ticket, id, None);
        }
        cache.invalidate_payload("default prod B/c.d");
        assert!(cache.get(&a).is_ok());
        assert!(cache.get(&b).is_err());
        cache.invalidate_payload("*");
        assert!(cache.get(&a).is_err());
    }

    #[test]
    fn nothing_is_served_or_kept_while_not_listening() {
        let cache = live_cache();
        let id = SecretId::new("default", "global", "K");
        let ticket = cache.get(&id).unwrap_err();
        cache.fill(ticket, &id, None);
        cache.set_live(false);
        assert!(cache.get(&id).is_err());
        let ticket = cache.get(&id).unwrap_err();
        cache.fill(ticket, &id, None);
        cache.live.store(true, Ordering::Release);
        assert!(cache.get(&id).is_err());
    }

    #[test]
    fn entries_expire_after_max_age() {
        let cache = ReadCache::new(ReadCacheConfig {
            max_age: Duration::ZERO,
            max_entries: 2,
        });
        cache.set_live(true);
        let id = SecretId::new("default", "global", "K");
        let ticket = cache.get(&id).unwrap_err();
        cache.fill(ticket, &id, None);
        assert!(cache.get(&id).is_err());
    }
}
