//! Appending to the chain inside a write transaction: at once under the chain's lock, or
//! held back to the transaction's end where the backend defers (`backend/deferred.rs`).

use std::sync::Arc;

use super::{Anchor, RingChain};
use crate::backend::{AuditRecord, NewEvent, WriteTx};
use crate::{Result, SecretId, StoreError};

/// Appends events to the chain inside one write transaction: each at the next sequence
/// number, linked to the one before it (or to the retention anchor) under the key.
pub(crate) struct Appender {
    chain: Arc<RingChain>,
    next_seq: i64,
    previous: Option<Vec<u8>>,
    /// Events go to the transaction's [`DeferredAudit`] and are appended at its end.
    deferred: bool,
}

impl Appender {
    /// An appender for a transaction that holds its appends back to its end when the
    /// backend offers it (no lock taken now: see [`flush_deferred`]); otherwise
    /// [`Appender::start`].
    pub(crate) async fn start_deferred(
        tx: &mut dyn WriteTx,
        chain: &Arc<RingChain>,
    ) -> Result<Self> {
        if tx.deferred_audit().is_some() {
            return Ok(Self {
                chain: Arc::clone(chain),
                next_seq: 0,
                previous: None,
                deferred: true,
            });
        }
        Self::start(tx, chain).await
    }

    /// Locks the log for appending (until the transaction ends) and reads its head.
    pub(crate) async fn start(tx: &mut dyn WriteTx, chain: &Arc<RingChain>) -> Result<Self> {
        let (last_seq, previous) = match tx.lock_audit_head().await? {
            Some(head) => (head.seq, head.link),
            None => Anchor::load(tx)
                .await?
                .map_or((0, None), |a| (a.seq, Some(a.link))),
        };
        chain.sharing.saw_head(last_seq);
        Ok(Self {
            chain: Arc::clone(chain),
            next_seq: last_seq + 1,
            previous,
            deferred: false,
        })
    }

    /// Appends `record`; returns its sequence number (provisional, negative, when the
    /// append is deferred: pass it to [`Appender::tie_version`] only).
    pub(crate) async fn append(
        &mut self,
        tx: &mut dyn WriteTx,
        record: &AuditRecord,
    ) -> Result<i64> {
        if self.deferred {
            return Ok(deferred_of(tx)?.push_event(record.clone()));
        }
        let seq = self.next_seq;
        let link = self.chain.link(self.previous.as_deref(), seq, record);
        tx.insert_event(seq, record, &link).await?;
        self.chain.sharing.wrote_through(seq);
        self.next_seq += 1;
        self.previous = Some(link);
        Ok(seq)
    }

    /// Appends `records` in order, in as few statements as the backend allows (a group
    /// commit's read events).
    pub(crate) async fn append_all(
        &mut self,
        tx: &mut dyn WriteTx,
        records: &[AuditRecord],
    ) -> Result<()> {
        if self.deferred {
            let deferred = deferred_of(tx)?;
            for record in records {
                deferred.push_event(record.clone());
            }
            return Ok(());
        }
        let mut events = Vec::with_capacity(records.len());
        for record in records {
            let seq = self.next_seq;
            let link = self.chain.link(self.previous.as_deref(), seq, record);
            self.next_seq += 1;
            self.previous = Some(link.clone());
            events.push(NewEvent { seq, record, link });
        }
        tx.insert_events(&events).await?;
        self.chain.sharing.wrote_through(self.next_seq - 1);
        Ok(())
    }

    /// The keyed tie of a version to the event `seq` that wrote it.
    pub(crate) fn tie(&self, row_id: &str, id: &SecretId, version: u32, seq: i64) -> Vec<u8> {
        self.chain.version_tag(row_id, id, version, seq)
    }

    /// The tie to store now with `row`'s version `version` (under the identity `id`),
    /// written by the event `seq`: the keyed tag; or, for a deferred append, an empty
    /// one, noted to be replaced when the transaction's events are appended (`seq` is
    /// then the provisional number, and is stored as it is until then).
    pub(crate) fn tie_version(
        &self,
        tx: &mut dyn WriteTx,
        row: &crate::backend::SecretRow,
        id: &SecretId,
        version: u32,
        seq: i64,
    ) -> Result<Vec<u8>> {
        if self.deferred {
            deferred_of(tx)?.push_tie(row, id, version, seq);
            return Ok(Vec::new());
        }
        Ok(self.tie(&row.row_id, id, version, seq))
    }
}

fn deferred_of(tx: &mut dyn WriteTx) -> Result<&mut crate::backend::DeferredAudit> {
    tx.deferred_audit().ok_or(StoreError::Defect(
        "a deferred audit append outside a deferring transaction",
    ))
}

/// Appends what the transaction held back ([`Appender::start_deferred`]), at its end: the
/// chain's lock and head, every event in one insert, every version's final tie in one
/// update. The lock is then held from here to the commit only. Nothing to do when
/// nothing was held back.
pub(crate) async fn flush_deferred(tx: &mut dyn WriteTx, chain: &Arc<RingChain>) -> Result<()> {
    let Some(deferred) = tx.deferred_audit() else {
        return Ok(());
    };
    let (events, ties) = deferred.take();
    if events.is_empty() {
        return Ok(());
    }
    let mut audit = Appender::start(tx, chain).await?;
    let first = audit.next_seq;
    audit.append_all(tx, &events).await?;
    if ties.is_empty() {
        return Ok(());
    }
    let ties = ties
        .into_iter()
        .map(|t| {
            let index = crate::backend::provisional_index(t.provisional)
                .filter(|i| *i < events.len())
                .ok_or(StoreError::Defect("a version tied to an event never noted"))?;
            let seq = first + i64::try_from(index).unwrap_or(i64::MAX);
            Ok(crate::backend::FinalTie {
                sid: t.sid,
                version: t.version,
                seq,
                tag: chain.version_tag(&t.row_id, &t.id, t.version, seq),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    tx.retie_versions(&ties).await
}
