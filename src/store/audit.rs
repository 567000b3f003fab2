//! The audit log: who did what, when, with which arguments and what came of it; one sled record
//! per entry under a big-endian sequence number, flushed before the call returns.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// What came of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A read, or a change done by an operator's own authenticated request.
    Executed,
    /// A change proposed, waiting for an operator's approval.
    Pending,
    /// A pending change approved and carried out.
    Approved,
    Rejected,
    Expired,
    /// Refused (wrong operator, already used, unknown id) or failed.
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// UTC, RFC 3339 with milliseconds.
    pub at: String,
    /// The operator (token name) or the agent acting for one.
    pub who: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub outcome: Outcome,
    pub detail: String,
}

/// The audit tree of a store.
#[derive(Clone)]
pub struct Audit {
    tree: sled::Tree,
    db: sled::Db,
}

impl Audit {
    pub fn open(db: &sled::Db) -> Result<Audit> {
        Ok(Audit { tree: db.open_tree("audit").context("cannot open the audit log")?, db: db.clone() })
    }

    /// The pending actions' tree of the same store.
    pub fn pending_actions(&self) -> Result<PendingActions> {
        Ok(PendingActions { tree: self.db.open_tree("pending_actions").context("cannot open the pending actions")? })
    }

    /// Appends an entry (durably) and returns it with its sequence number.
    pub fn append(
        &self,
        who: &str,
        tool: &str,
        arguments: serde_json::Value,
        outcome: Outcome,
        detail: &str,
    ) -> Result<Entry> {
        let seq = self.db.generate_id().context("audit sequence")?;
        let e = Entry {
            seq,
            at: twinfault_core::time::format_timestamp_ms(crate::clock::now_ms()),
            who: who.to_string(),
            tool: tool.to_string(),
            arguments,
            outcome,
            detail: detail.to_string(),
        };
        self.tree.insert(seq.to_be_bytes(), serde_json::to_vec(&e)?)?;
        self.tree.flush().context("cannot write the audit log")?;
        Ok(e)
    }

    /// Entries from sequence `from` on, at most `limit`, oldest first; and where the next page starts.
    pub fn page(&self, from: u64, limit: usize) -> Result<(Vec<Entry>, Option<u64>)> {
        let mut out = Vec::new();
        for kv in self.tree.range(from.to_be_bytes()..) {
            let (k, v) = kv?;
            if out.len() == limit {
                let mut b = [0u8; 8];
                b.copy_from_slice(&k);
                return Ok((out, Some(u64::from_be_bytes(b))));
            }
            out.push(serde_json::from_slice(&v).context("a malformed audit entry")?);
        }
        Ok((out, None))
    }
}

/// Actions waiting for an operator's approval (`pending_actions`), by id, flushed on every change.
pub struct PendingActions {
    tree: sled::Tree,
}

impl PendingActions {
    /// Every stored action.
    pub fn all<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.tree
            .iter()
            .map(|kv| {
                let (_, v) = kv.context("reading the pending actions")?;
                serde_json::from_slice(&v).context("a pending action in the store is damaged")
            })
            .collect()
    }

    /// Stores `value` under `id`, on disk before it returns.
    pub fn put<T: Serialize>(&self, id: &str, value: &T) -> Result<()> {
        self.tree.insert(id.as_bytes(), serde_json::to_vec(value)?).context("storing the pending action")?;
        self.tree.flush().context("storing the pending action")?;
        Ok(())
    }

    /// Removes `id`, on disk before it returns.
    pub fn remove(&self, id: &str) -> Result<()> {
        self.tree.remove(id.as_bytes()).and_then(|_| self.tree.flush()).context("removing the pending action")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_in_order_and_paged() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let a = Audit::open(&db).unwrap();
        for i in 0..5 {
            a.append("alice", "resolve_fault", serde_json::json!({ "i": i }), Outcome::Executed, "").unwrap();
        }
        let (first, next) = a.page(0, 3).unwrap();
        assert_eq!(first.len(), 3);
        assert!(first.windows(2).all(|w| w[0].seq < w[1].seq));
        let (rest, end) = a.page(next.unwrap(), 3).unwrap();
        assert_eq!((rest.len(), end), (2, None));
        assert_eq!(rest[1].arguments["i"], 4);
        drop(a);
        drop(db);
        // Durable: reopened, everything is there. (sled's flusher may hold the directory's lock
        // for a moment after the last handle is dropped.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let db = loop {
            match sled::open(dir.path()) {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("cannot reopen the store: {e}"),
            }
        };
        assert_eq!(Audit::open(&db).unwrap().page(0, 100).unwrap().0.len(), 5);
    }
}
