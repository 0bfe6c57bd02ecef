//! Re-keying the chain at rotation (docs/security.md, "Re-keying at rotation").

use super::{anchor_input, link_input, record_of, tie_input, Anchor, RingChain};
use crate::backend::{LinkedEvent, TiePage, WriteTx};
use crate::{Result, StoreError};

/// The meta entry recording the last re-key of the chain: `SEQ:TIME`, the head's
/// sequence number and the time (Unix ms).
pub(crate) const REKEY_META: &str = "audit_rekey";

/// The meta entry naming the KEK version the whole chain was last re-keyed under: while
/// it is the active version, every link since was made under it too, so a re-key has
/// nothing to do and does not hold the append lock for a pass over the whole log.
pub(crate) const CHAIN_KEY_META: &str = "audit_chain_key";

/// What a re-key changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Event links recomputed under the active key.
    pub links: u64,
    /// Version ties recomputed under the active key.
    pub ties: u64,
}

fn not_rekeyed(at: i64, why: &str) -> StoreError {
    StoreError::AuditIntegrity(format!(
        "the audit chain was not re-keyed: at {at}, {why}; run `strongroom audit verify`"
    ))
}

/// Re-keys the chain under the ring's active key, so it stays verifiable once older
/// keys are retired: inside one transaction holding the log's append lock, checks every
/// link, tie and the retention anchor under the key that made it (a broken chain is
/// refused, never laundered), then recomputes each under the active key. Values already
/// under the active key are left as they are, so a second run writes nothing.
pub(crate) async fn rekey(tx: &mut dyn WriteTx, chain: &RingChain, now: i64) -> Result<Rekeyed> {
    let active = chain.ring.active().version().to_string();
    if tx.meta(CHAIN_KEY_META).await?.as_deref() == Some(active.as_str()) {
        return Ok(Rekeyed::default());
    }
    let head = tx.lock_audit_head().await?.map(|head| head.seq);
    let anchor = Anchor::load(tx).await?;
    let mut done = Rekeyed::default();
    let mut previous_old = None;
    let mut expected = 1;
    if let Some(anchor) = &anchor {
        if !chain.check(&anchor_input(anchor.seq, &anchor.link), &anchor.tag)? {
            return Err(not_rekeyed(
                anchor.seq,
                "the retention anchor does not match",
            ));
        }
        let tag = chain.anchor_tag(anchor.seq, &anchor.link);
        if tag != anchor.tag {
            let renewed = Anchor {
                tag,
                ..anchor.clone()
            };
            tx.set_meta(Anchor::META, Some(&renewed.encode())).await?;
        }
        previous_old = Some(anchor.link.clone());
        expected = anchor.seq + 1;
    }
    let mut previous_new = previous_old.clone();
    let mut after = 0;
    loop {
        let page = tx.audit_links(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.event.id;
        for LinkedEvent {
            event,
            link: stored,
        } in page
        {
            let seq = event.id;
            if seq != expected {
                return Err(not_rekeyed(seq, "events are missing"));
            }
            let Some(stored) = stored else {
                return Err(not_rekeyed(seq, "the event has no chain link"));
            };
            let record = record_of(&event);
            if !chain.check(&link_input(previous_old.as_deref(), seq, &record), &stored)? {
                return Err(not_rekeyed(seq, "the link does not match"));
            }
            let renewed = chain.link(previous_new.as_deref(), seq, &record);
            if renewed != stored {
                tx.relink_event(seq, &renewed).await?;
                done.links += 1;
            }
            previous_old = Some(stored);
            previous_new = Some(renewed);
            expected += 1;
        }
    }
    let mut position = 0;
    loop {
        let TiePage {
            ties,
            last_position: last,
        } = tx.version_ties(position, 1000).await?;
        if ties.is_empty() {
            break;
        }
        position = last;
        for tie in ties {
            let (Some(seq), Some(stored)) = (tie.audit_seq, &tie.audit_tag) else {
                return Err(not_rekeyed(0, "a version is not tied to an audit event"));
            };
            if !chain.check(&tie_input(&tie.row_id, &tie.id, tie.version, seq), stored)? {
                return Err(not_rekeyed(seq, "a version's tie was altered"));
            }
            let renewed = chain.version_tag(&tie.row_id, &tie.id, tie.version, seq);
            if &renewed != stored {
                tx.retag_version(tie.position, &renewed).await?;
                done.ties += 1;
            }
        }
    }
    if done != Rekeyed::default() {
        let seq = head.or(anchor.map(|a| a.seq)).unwrap_or(0);
        tx.set_meta(REKEY_META, Some(&format!("{seq}:{now}")))
            .await?;
    }
    tx.set_meta(CHAIN_KEY_META, Some(&active)).await?;
    Ok(done)
}
