//! Connections to the databases logins are made in, kept open between requests: a
//! request takes an idle client of its connection (the same URL, login and password) or
//! opens one, and gives it back when done. Idle clients older than 30 s, and closed ones,
//! are dropped; at most the connection's `max_open_connections` (default 4, Vault's) are
//! kept idle per connection. A rotated password is a different
//! connection: clients opened with the old one are never reused.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Idle clients, each with the time it was given back.
type Idle = Vec<(tokio_postgres::Client, Instant)>;

/// Idle clients per connection (keyed by a hash of its URL with the password in it).
static IDLE: LazyLock<Mutex<HashMap<[u8; 32], Idle>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

const MAX_IDLE_AGE: Duration = Duration::from_secs(30);

/// The key of a connection URL (never the URL: it holds a password).
pub(super) fn key(url: &str) -> [u8; 32] {
    Sha256::digest(url.as_bytes()).into()
}

/// An idle client of the connection `key`, if one is open.
pub(super) fn take(key: &[u8; 32]) -> Option<tokio_postgres::Client> {
    let mut idle = IDLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let clients = idle.get_mut(key)?;
    while let Some((client, since)) = clients.pop() {
        if !client.is_closed() && since.elapsed() < MAX_IDLE_AGE {
            return Some(client);
        }
    }
    None
}

/// A client that goes back to the pool when dropped (unless it is closed, or the pool of
/// its connection is full).
pub(super) struct Pooled {
    client: Option<tokio_postgres::Client>,
    key: [u8; 32],
    max_idle: usize,
}

impl Pooled {
    pub(super) fn new(client: tokio_postgres::Client, key: [u8; 32], max_idle: usize) -> Self {
        Self {
            client: Some(client),
            key,
            max_idle,
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &Self::Target {
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() {
            return;
        }
        let mut idle = IDLE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let clients = idle.entry(self.key).or_default();
        clients.retain(|(c, since)| !c.is_closed() && since.elapsed() < MAX_IDLE_AGE);
        if clients.len() < self.max_idle {
            clients.push((client, Instant::now()));
        }
    }
}
