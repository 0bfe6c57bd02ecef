//! The tamper-evident audit log: keyed links, version ties, retention anchors and
//! checkpoints (docs/security.md, "Audit chain").
//!
//! Every keyed value here is HMAC-SHA-256 under the key ring's keyed-hash subkey (the
//! stored form carries the KEK version that made it), over a length-prefixed encoding of
//! its parts, each under its own label:
//!
//! - an event's **link** covers the previous link (or the anchor's), the event's sequence
//!   number and every field of the event; sequence numbers are contiguous;
//! - a version's **tie** covers the secret's random id, its identity, the version number
//!   and the sequence number of the event that wrote it, so removing that event (the
//!   newest ones included) is detected while the version exists;
//! - the retention **anchor** covers the sequence number and link of the last event that
//!   retention deleted;
//! - a **checkpoint** covers a sequence number, its link and the time it was taken; kept
//!   outside the database, it proves nothing up to it was removed or changed since.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strongroom_crypto::{Context, KeyRing, KeyedHash};

use crate::backend::{AuditRecord, Backend, ChainHead, LinkedEvent, TiePage, VersionTie, WriteTx};
use crate::model::{format_time, now_ms};
use crate::{AuditEvent, Result, SecretId, StoreError, Timestamp};

/// The keyed values of the chain, under the key ring's keyed-hash subkey, and whether
/// other processes append to it too.
pub(crate) struct RingChain {
    /// The key ring.
    pub(crate) ring: Arc<KeyRing>,
    /// Whether another process has appended lately.
    pub(crate) sharing: ChainSharing,
}

impl RingChain {
    /// The chain keyed by `ring`, no other process seen yet.
    pub(crate) fn new(ring: Arc<KeyRing>) -> Self {
        Self {
            ring,
            sharing: ChainSharing::default(),
        }
    }
}

/// How many groups in a row must find the chain's head their own process's before the
/// chain counts as unshared again.
const QUIET_GROUPS: u32 = 256;

/// Whether other processes append to the chain this process appends to: each append
/// compares the head it reads under the chain's lock with the last event this process
/// wrote. A head someone else wrote means another instance shares the chain (and its
/// lock); after [`QUIET_GROUPS`] appends that find only their own heads, it counts as
/// unshared again. A heuristic for how many groups to commit at once (`store/batch.rs`),
/// never for what is written.
pub(crate) struct ChainSharing {
    last_own: AtomicI64,
    quiet: AtomicU32,
}

impl Default for ChainSharing {
    fn default() -> Self {
        Self {
            last_own: AtomicI64::new(0),
            quiet: AtomicU32::new(QUIET_GROUPS),
        }
    }
}

impl ChainSharing {
    /// An append read `head` (the chain's last sequence number, 0 when empty).
    pub(crate) fn saw_head(&self, head: i64) {
        let own = self.last_own.load(Relaxed);
        if own != 0 && head != own {
            self.quiet.store(0, Relaxed);
        } else {
            let _ = self
                .quiet
                .fetch_update(Relaxed, Relaxed, |q| Some(q.saturating_add(1)));
        }
    }

    /// This process appended through sequence number `last`.
    pub(crate) fn wrote_through(&self, last: i64) {
        self.last_own.store(last, Relaxed);
    }

    /// Whether another process appended within the last [`QUIET_GROUPS`] appends.
    pub(crate) fn shared(&self) -> bool {
        self.quiet.load(Relaxed) < QUIET_GROUPS
    }
}

fn tag_context() -> Context {
    Context::new("audit-chain")
}

fn link_input(previous: Option<&[u8]>, seq: i64, event: &AuditRecord) -> Vec<u8> {
    let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
    Context::new("audit-event-v2")
        .with(previous.unwrap_or_default())
        .with(seq.to_be_bytes())
        .with(event.time.to_string())
        .with(&event.actor)
        .with(event.action.as_str())
        .with(&event.id.namespace)
        .with(&event.id.env)
        .with(&event.id.key)
        .with(opt(event.version))
        .with(opt(event.kek_version))
        .as_bytes()
        .to_vec()
}

fn tie_input(row_id: &str, id: &SecretId, version: u32, seq: i64) -> Vec<u8> {
    Context::new("audit-version-tie")
        .with(row_id)
        .with(&id.namespace)
        .with(&id.env)
        .with(&id.key)
        .with(version.to_be_bytes())
        .with(seq.to_be_bytes())
        .as_bytes()
        .to_vec()
}

fn anchor_input(seq: i64, link: &[u8]) -> Vec<u8> {
    Context::new("audit-anchor")
        .with(seq.to_be_bytes())
        .with(link)
        .as_bytes()
        .to_vec()
}

fn checkpoint_input(seq: i64, link: &[u8], time: i64) -> Vec<u8> {
    Context::new("audit-checkpoint")
        .with(seq.to_be_bytes())
        .with(link)
        .with(time.to_be_bytes())
        .as_bytes()
        .to_vec()
}

impl RingChain {
    fn tag(&self, input: &[u8]) -> Vec<u8> {
        self.ring.keyed_hash(&tag_context(), input).to_bytes()
    }

    /// Whether `stored` is the tag of `input` (constant time). A tag under a KEK version
    /// the ring lacks is an error, not a mismatch.
    fn check(&self, input: &[u8], stored: &[u8]) -> Result<bool> {
        let Ok(stored) = KeyedHash::from_bytes(stored) else {
            return Ok(false);
        };
        self.ring
            .verify_keyed_hash(&tag_context(), input, &stored)
            .map_err(|e| match e {
                strongroom_crypto::Error::KeyVersionUnavailable { version } => {
                    StoreError::AuditKeyUnavailable { version }
                }
                other => StoreError::Crypto(other),
            })
    }
}

impl RingChain {
    /// The link of `event`, appended at sequence number `seq`, following the link
    /// `previous` (`None` for the first event of an empty log without an anchor).
    pub(crate) fn link(&self, previous: Option<&[u8]>, seq: i64, event: &AuditRecord) -> Vec<u8> {
        self.tag(&link_input(previous, seq, event))
    }

    /// The tag tying one stored version to the sequence number of the event that wrote
    /// it, so deleting that event (the newest ones included) is detected.
    pub(crate) fn version_tag(
        &self,
        row_id: &str,
        id: &SecretId,
        version: u32,
        seq: i64,
    ) -> Vec<u8> {
        self.tag(&tie_input(row_id, id, version, seq))
    }

    /// The tag of a retention anchor: the last deleted event's sequence number and link.
    pub(crate) fn anchor_tag(&self, seq: i64, link: &[u8]) -> Vec<u8> {
        self.tag(&anchor_input(seq, link))
    }
}

/// The retention anchor, kept in the meta table as `SEQ:LINK:TAG` (hex): where the
/// remaining chain begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// Sequence number of the last deleted event.
    pub(crate) seq: i64,
    /// Its link.
    pub(crate) link: Vec<u8>,
    /// Keyed tag over both.
    pub(crate) tag: Vec<u8>,
}

impl Anchor {
    /// The meta entry's name.
    pub(crate) const META: &'static str = "audit_anchor";

    /// The stored text.
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}:{}:{}",
            self.seq,
            hex::encode(&self.link),
            hex::encode(&self.tag)
        )
    }

    /// Parses the stored text; `None` if malformed.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let seq = parts.next()?.parse().ok()?;
        let link = hex::decode(parts.next()?).ok()?;
        let tag = hex::decode(parts.next()?).ok()?;
        parts.next().is_none().then_some(Self { seq, link, tag })
    }

    /// The stored anchor, if any; a malformed one is an error, never ignored.
    pub(crate) async fn load(tx: &mut dyn WriteTx) -> Result<Option<Self>> {
        tx.meta(Self::META)
            .await?
            .map(|text| {
                Self::decode(&text).ok_or_else(|| {
                    StoreError::AuditIntegrity("the retention anchor is malformed".into())
                })
            })
            .transpose()
    }
}

/// Deletes the oldest events, by sequence number: the longest run from the start of the
/// log in which every event is older than `before` (so a clock that stepped back never
/// takes a younger event, and no gap is cut into the chain), and stores the keyed anchor
/// of exactly the last one deleted. Returns how many.
pub(crate) async fn cut_before(
    tx: &mut dyn WriteTx,
    chain: &RingChain,
    before: i64,
) -> Result<u64> {
    // Appends wait for this transaction: the cut and the anchor see one log.
    let last = tx.lock_audit_head().await?.map(|head| head.seq);
    let first_young = tx.first_event_since(Timestamp(before)).await?;
    let Some(cut) = first_young.map(|young| young - 1).or(last) else {
        return Ok(0);
    };
    let Some(ChainHead { seq, link }) = tx.event_at_or_before(cut).await? else {
        return Ok(0);
    };
    let link = link.ok_or_else(|| {
        StoreError::AuditIntegrity(
            "an audit event has no chain link; run `strongroom audit verify`".into(),
        )
    })?;
    let anchor = Anchor {
        seq,
        tag: chain.anchor_tag(seq, &link),
        link,
    };
    tx.set_meta(Anchor::META, Some(&anchor.encode())).await?;
    tx.delete_events_through(seq).await
}

/// The fields of a stored event that its link covers.
fn record_of(event: &AuditEvent) -> AuditRecord {
    AuditRecord {
        time: event.time,
        actor: event.actor.clone(),
        action: event.action,
        id: SecretId::new(&event.namespace, &event.env, &event.key),
        version: event.version,
        kek_version: event.kek_version,
    }
}

mod appender;
mod rekey;
pub(crate) use appender::{flush_deferred, Appender};
pub use rekey::Rekeyed;
pub(crate) use rekey::{rekey, REKEY_META};

/// The result of verifying the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// Events checked.
    pub events: u64,
    /// Stored versions whose tie to their write event was checked.
    pub versions: u64,
    /// The newest event's sequence number and link (the anchor's when the log is empty
    /// after retention; `None` for a log that never held an event).
    pub head: Option<(i64, Vec<u8>)>,
    /// The first problem found, with the sequence number it concerns and why; `None`
    /// when the log is intact.
    pub broken_at: Option<(i64, String)>,
}

/// A keyed head of the audit chain, printed by `strongroom audit checkpoint` and kept
/// outside the database; `audit verify --checkpoint FILE` proves nothing up to it was
/// removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always `strongroom-audit-checkpoint-v1`.
    pub format: String,
    /// Sequence number of the newest event when taken (0: an empty log).
    pub seq: i64,
    /// Its link, hex.
    pub link: String,
    /// When taken, Unix ms.
    pub time: i64,
    /// The same instant, RFC 3339 (for people; not covered by the tag).
    #[serde(default)]
    pub time_text: String,
    /// Keyed tag over `seq`, `link` and `time`, hex.
    pub tag: String,
}

const CHECKPOINT_FORMAT: &str = "strongroom-audit-checkpoint-v1";

fn broken(
    events: u64,
    versions: u64,
    head: Option<(i64, Vec<u8>)>,
    at: i64,
    why: impl Into<String>,
) -> AuditVerification {
    AuditVerification {
        events,
        versions,
        head,
        broken_at: Some((at, why.into())),
    }
}

/// Walks the chain from the anchor (or the first event), then checks every stored
/// version's tie to the event that wrote it.
pub(crate) async fn verify(backend: &dyn Backend, chain: &RingChain) -> Result<AuditVerification> {
    let anchor = match backend.meta(Anchor::META).await? {
        None => None,
        Some(text) => {
            let Some(anchor) = Anchor::decode(&text) else {
                return Ok(broken(0, 0, None, 0, "the retention anchor is malformed"));
            };
            if !chain.check(&anchor_input(anchor.seq, &anchor.link), &anchor.tag)? {
                return Ok(broken(
                    0,
                    0,
                    None,
                    anchor.seq,
                    "the retention anchor does not match: it was edited or forged",
                ));
            }
            Some(anchor)
        }
    };
    let anchor_seq = anchor.as_ref().map_or(0, |a| a.seq);
    let mut head: Option<(i64, Vec<u8>)> = anchor.map(|a| (a.seq, a.link));
    let mut events = 0;
    let mut after = 0;
    loop {
        let page = backend.audit_links(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.event.id;
        for LinkedEvent { event, link } in page {
            events += 1;
            let seq = event.id;
            let expected = head.as_ref().map_or(1, |(s, _)| s + 1);
            if seq != expected {
                return Ok(broken(
                    events,
                    0,
                    head,
                    seq,
                    format!(
                        "events {expected}..{} are missing (deleted, or the anchor was removed)",
                        seq - 1
                    ),
                ));
            }
            let Some(link) = link else {
                return Ok(broken(events, 0, head, seq, "the event has no chain link"));
            };
            let record = record_of(&event);
            let previous = head.as_ref().map(|(_, l)| l.as_slice());
            if !chain.check(&link_input(previous, seq, &record), &link)? {
                return Ok(broken(
                    events,
                    0,
                    head,
                    seq,
                    "the link does not match: this event, or one before it, was edited, removed or moved",
                ));
            }
            head = Some((seq, link));
        }
    }
    let last_seq = head.as_ref().map_or(0, |(s, _)| *s);
    let mut versions = 0;
    let mut position = 0;
    loop {
        let TiePage {
            ties,
            last_position: last,
        } = backend.version_ties(position, 1000).await?;
        if ties.is_empty() {
            break;
        }
        position = last;
        for tie in ties {
            versions += 1;
            if let Some(why) = check_tie(backend, chain, &tie, anchor_seq, last_seq).await? {
                let at = tie.audit_seq.unwrap_or(0);
                return Ok(broken(
                    events,
                    versions,
                    head,
                    at,
                    format!("{} version {}: {why}", tie.id, tie.version),
                ));
            }
        }
    }
    Ok(AuditVerification {
        events,
        versions,
        head,
        broken_at: None,
    })
}

/// Why a version's tie fails, if it does.
async fn check_tie(
    backend: &dyn Backend,
    chain: &RingChain,
    tie: &VersionTie,
    anchor_seq: i64,
    last_seq: i64,
) -> Result<Option<String>> {
    let (Some(seq), Some(tag)) = (tie.audit_seq, &tie.audit_tag) else {
        return Ok(Some("the version is not tied to an audit event".into()));
    };
    if !chain.check(&tie_input(&tie.row_id, &tie.id, tie.version, seq), tag)? {
        return Ok(Some(
            "the version's tie to its audit event was altered".into(),
        ));
    }
    if seq <= anchor_seq {
        // Its event was removed by retention, which the keyed anchor vouches for.
        return Ok(None);
    }
    if seq > last_seq {
        return Ok(Some(format!(
            "the event that wrote it (sequence {seq}) is missing: the log was cut short"
        )));
    }
    let Some(LinkedEvent { event, .. }) = backend.audit_event_at(seq).await? else {
        return Ok(Some(format!("the event that wrote it ({seq}) is missing")));
    };
    // A move carries every kept version of the secret and ties them all to its one
    // `move_in` event, which names the current (highest) version.
    let version_matches = event.version == Some(tie.version)
        || (event.action == crate::Action::MoveIn && event.version >= Some(tie.version));
    let matches = event.action.writes_value()
        && event.namespace == tie.id.namespace
        && event.env == tie.id.env
        && event.key == tie.id.key
        && version_matches;
    Ok((!matches).then(|| format!("event {seq} did not write this version")))
}

/// A keyed checkpoint of the current head.
pub(crate) async fn checkpoint(backend: &dyn Backend, chain: &RingChain) -> Result<Checkpoint> {
    let verification = verify(backend, chain).await?;
    if let Some((at, why)) = verification.broken_at {
        return Err(StoreError::AuditIntegrity(format!(
            "no checkpoint of a broken log (at {at}: {why})"
        )));
    }
    let (seq, link) = verification.head.unwrap_or((0, Vec::new()));
    let time = now_ms();
    Ok(Checkpoint {
        format: CHECKPOINT_FORMAT.into(),
        seq,
        link: hex::encode(&link),
        time,
        time_text: format_time(time),
        tag: hex::encode(chain.tag(&checkpoint_input(seq, &link, time))),
    })
}

/// Verifies the log and that it still holds, unchanged, everything up to `checkpoint`.
pub(crate) async fn verify_against(
    backend: &dyn Backend,
    chain: &RingChain,
    checkpoint: &Checkpoint,
) -> Result<AuditVerification> {
    if let Some((rekey_seq, rekey_time)) = backend
        .meta(REKEY_META)
        .await?
        .as_deref()
        .and_then(|text| text.split_once(':'))
        .and_then(|(seq, time)| Some((seq.parse::<i64>().ok()?, time.parse::<i64>().ok()?)))
    {
        if checkpoint.time < rekey_time {
            return Err(StoreError::InvalidInput(format!(
                "the checkpoint was taken before the audit chain was re-keyed by rotation at {} \
                 (events through {rekey_seq}); rotation re-keys only a chain that verifies, so \
                 take a new checkpoint after each rotation",
                format_time(rekey_time)
            )));
        }
    }
    let link = hex::decode(&checkpoint.link).ok();
    let tag = hex::decode(&checkpoint.tag).ok();
    let (Some(link), Some(tag)) = (link, tag) else {
        return Err(StoreError::InvalidInput(
            "the checkpoint is malformed".into(),
        ));
    };
    if checkpoint.format != CHECKPOINT_FORMAT
        || !chain.check(
            &checkpoint_input(checkpoint.seq, &link, checkpoint.time),
            &tag,
        )?
    {
        return Err(StoreError::AuditIntegrity(
            "the checkpoint's tag does not match: it was edited, or made with another key".into(),
        ));
    }
    let mut result = verify(backend, chain).await?;
    if result.broken_at.is_some() || checkpoint.seq == 0 {
        return Ok(result);
    }
    let head_seq = result.head.as_ref().map_or(0, |(s, _)| *s);
    let anchor_seq = match backend.meta(Anchor::META).await? {
        Some(text) => Anchor::decode(&text).map_or(0, |a| a.seq),
        None => 0,
    };
    let why = if head_seq < checkpoint.seq {
        Some(format!(
            "the log ends at {head_seq}, before the checkpoint's event {}: events were removed",
            checkpoint.seq
        ))
    } else if checkpoint.seq <= anchor_seq {
        // Retention removed the checkpoint's event; the keyed anchor is past it.
        None
    } else {
        match backend.audit_event_at(checkpoint.seq).await? {
            Some(LinkedEvent {
                link: Some(stored), ..
            }) if stored == link => None,
            _ => Some(format!(
                "event {} differs from the checkpoint: the log was rewritten",
                checkpoint.seq
            )),
        }
    };
    if let Some(why) = why {
        result.broken_at = Some((checkpoint.seq, why));
    }
    Ok(result)
}
