//! Audit appends held back to the end of a transaction.
//!
//! Appending to the chain needs its head, and the head needs the chain's lock; on a
//! database shared by several processes that lock is held until the transaction ends. A
//! group commit that appended as each write ran would hold it across every write's round
//! trips. Instead, where a backend offers it ([`WriteTx::defer_audit`](super::WriteTx::defer_audit)),
//! a write's events and its version rows' ties are noted here (each version row written at
//! once, with a provisional tie), and the store appends them all at the end: one lock, one
//! read of the head, one insert of every event, one update of every tie, then the commit
//! (`audit::flush_deferred`). Nothing is visible to anyone before that commit, so no
//! reader ever sees a provisional tie.

use super::{AuditRecord, SecretRow};
use crate::SecretId;

/// Events and version ties waiting for the end of the transaction, with the marks of
/// open savepoints (a rolled-back write takes its own back).
#[derive(Debug, Default)]
pub struct DeferredAudit {
    pub(crate) events: Vec<AuditRecord>,
    pub(crate) ties: Vec<PendingTie>,
    marks: Vec<(usize, usize)>,
}

/// A version row to tie to its event once the event's place in the chain is known.
#[derive(Debug, Clone)]
pub(crate) struct PendingTie {
    pub(crate) sid: i64,
    pub(crate) row_id: String,
    pub(crate) id: SecretId,
    pub(crate) version: u32,
    /// The provisional sequence number (see [`DeferredAudit::push_event`]).
    pub(crate) provisional: i64,
}

/// A version row's final tie: the row (`sid`, `version`), its event, and the keyed tag.
#[derive(Debug, Clone)]
pub struct FinalTie {
    /// The secret's row key.
    pub sid: i64,
    /// The version.
    pub version: u32,
    /// The sequence number of the event that wrote it.
    pub seq: i64,
    /// The keyed tie of the version to that event.
    pub tag: Vec<u8>,
}

impl DeferredAudit {
    /// Notes `record`; returns its provisional sequence number (negative, so it can never
    /// be taken for a real one): the `n`th event noted is `-(n + 1)`.
    pub(crate) fn push_event(&mut self, record: AuditRecord) -> i64 {
        self.events.push(record);
        -i64::try_from(self.events.len()).unwrap_or(i64::MAX)
    }

    /// Notes that `row`'s version `version` (under the identity `id`) is tied to the
    /// event `provisional`.
    pub(crate) fn push_tie(
        &mut self,
        row: &SecretRow,
        id: &SecretId,
        version: u32,
        provisional: i64,
    ) {
        self.ties.push(PendingTie {
            sid: row.sid,
            row_id: row.row_id.clone(),
            id: id.clone(),
            version,
            provisional,
        });
    }

    /// A savepoint opened: what is noted from now on belongs to it.
    pub fn savepoint(&mut self) {
        self.marks.push((self.events.len(), self.ties.len()));
    }

    /// The savepoint ended: kept, or rolled back (its notes dropped with its rows).
    pub fn savepoint_end(&mut self, keep: bool) {
        if let Some((events, ties)) = self.marks.pop() {
            if !keep {
                self.events.truncate(events);
                self.ties.truncate(ties);
            }
        }
    }

    /// Everything noted, leaving nothing.
    pub(crate) fn take(&mut self) -> (Vec<AuditRecord>, Vec<PendingTie>) {
        (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.ties),
        )
    }
}

/// The position in a flushed batch of the event `provisional` stands for.
pub(crate) fn provisional_index(provisional: i64) -> Option<usize> {
    usize::try_from(-provisional - 1).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Action, Timestamp};

    fn record(key: &str) -> AuditRecord {
        AuditRecord {
            time: Timestamp(1),
            actor: "t".into(),
            action: Action::Update,
            id: SecretId::new("default", "prod", key),
            version: Some(1),
            kek_version: Some(1),
        }
    }

    #[test]
    fn a_rolled_back_savepoint_takes_back_only_its_own_notes() {
        let mut deferred = DeferredAudit::default();
        let row = |sid| SecretRow {
            sid,
            row_id: format!("r{sid}"),
            id: SecretId::new("default", "prod", "K"),
            version: 1,
        };
        deferred.savepoint();
        let first = deferred.push_event(record("A"));
        deferred.push_tie(&row(1), &SecretId::new("default", "prod", "A"), 1, first);
        deferred.savepoint_end(true);
        deferred.savepoint();
        let second = deferred.push_event(record("B"));
        deferred.push_tie(&row(2), &SecretId::new("default", "prod", "B"), 1, second);
        deferred.savepoint_end(false);
        deferred.savepoint();
        let third = deferred.push_event(record("C"));
        deferred.savepoint_end(true);
        assert_eq!((first, second, third), (-1, -2, -2));
        let (events, ties) = deferred.take();
        let keys: Vec<&str> = events.iter().map(|e| e.id.key.as_str()).collect();
        assert_eq!(keys, ["A", "C"]);
        assert_eq!(ties.len(), 1);
        assert_eq!(provisional_index(ties[0].provisional), Some(0));
        assert_eq!(provisional_index(third), Some(1));
        assert!(deferred.take().0.is_empty());
    }
}
