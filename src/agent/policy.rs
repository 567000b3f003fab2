//! The one approval policy for changes. A change proposed (by the agent, or by any client) is a
//! pending action: id, tool, arguments, the operator it was proposed for, created and expiry
//! times. Only an explicit approval by that operator (or one the configuration lets approve for
//! others) carries it out, once; a rejection cancels it; an expired one cannot be approved.
//! Every step is audited. Pending actions are kept in the store (flushed before a proposal is
//! answered, removed and flushed before an approved one is carried out), so they survive a
//! restart and are still used at most once.

use crate::store::audit::{Audit, Outcome};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Default time a pending action waits for its approval [s].
pub const DEFAULT_EXPIRY_S: f64 = 600.0;

/// A change a pending action makes: the closed set, parsed once (an unknown name is refused, never
/// taken for another change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    ResolveFault,
    InjectFault,
    ClearFault,
}

impl Change {
    pub const ALL: [Change; 3] = [Change::ResolveFault, Change::InjectFault, Change::ClearFault];

    pub fn as_str(self) -> &'static str {
        match self {
            Change::ResolveFault => "resolve_fault",
            Change::InjectFault => "inject_fault",
            Change::ClearFault => "clear_fault",
        }
    }

    pub fn parse(name: &str) -> Option<Change> {
        Change::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub tool: Change,
    pub arguments: serde_json::Value,
    /// The operator it was proposed for (who may approve it).
    pub operator: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl Pending {
    /// The pending action as the agent's model and its operator are told of it.
    pub fn as_proposal(&self) -> serde_json::Value {
        serde_json::json!({ "pending_action": self.id, "tool": self.tool, "arguments": self.arguments,
            "awaits_approval_by": self.operator,
            "expires_at": twinfault_core::time::format_timestamp_ms(self.expires_ms),
            "note": "nothing has changed; an operator must approve this action" })
    }
}

/// Why an approval or rejection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no pending action \"{0}\" (unknown, or already approved or rejected)")]
    Unknown(String),
    #[error("pending action \"{0}\" expired")]
    Expired(String),
    #[error("pending action \"{id}\" belongs to {owner}; {who} may not decide it")]
    NotYours { id: String, owner: String, who: String },
}

pub struct Policy {
    pending: Mutex<BTreeMap<String, Pending>>,
    /// The same, on disk.
    tree: crate::store::audit::PendingActions,
    expiry_ms: i64,
    /// Operators who may approve actions proposed for others.
    approve_for_others: Vec<String>,
    seq: std::sync::atomic::AtomicU64,
    pub audit: Audit,
}

impl Policy {
    /// The policy of a store, with the actions still pending in it.
    pub fn new(audit: Audit, expiry_s: f64, approve_for_others: Vec<String>) -> Result<Policy> {
        let tree = audit.pending_actions()?;
        let pending: BTreeMap<String, Pending> =
            tree.all::<Pending>()?.into_iter().map(|p| (p.id.clone(), p)).collect();
        Ok(Policy {
            pending: Mutex::new(pending),
            tree,
            expiry_ms: (expiry_s * 1000.0) as i64,
            approve_for_others,
            seq: std::sync::atomic::AtomicU64::new(0),
            audit,
        })
    }

    /// A change proposed for `operator`; nothing happens until it is approved.
    pub fn propose(&self, operator: &str, tool: Change, arguments: serde_json::Value, now_ms: i64) -> Result<Pending> {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        // Ids stay unique across restarts: the time part moves on and the store refuses reuse.
        let p = Pending {
            id: format!("A-{now_ms}-{n}"),
            tool,
            arguments,
            operator: operator.to_string(),
            created_ms: now_ms,
            expires_ms: now_ms + self.expiry_ms,
        };
        self.audit.append(
            operator,
            tool.as_str(),
            p.arguments.clone(),
            Outcome::Pending,
            &format!("pending action {}", p.id),
        )?;
        let mut map = self.pending.lock().expect("not poisoned");
        anyhow::ensure!(!map.contains_key(&p.id), "action id {} is taken", p.id);
        self.tree.put(&p.id, &p)?;
        map.insert(p.id.clone(), p.clone());
        Ok(p)
    }

    /// Pending actions of `operator` (all, for one who may approve for others), oldest first.
    pub fn list(&self, operator: &str) -> Vec<Pending> {
        let all = self.approve_for_others.iter().any(|o| o == operator);
        self.pending.lock().expect("not poisoned").values().filter(|p| all || p.operator == operator).cloned().collect()
    }

    /// Takes a pending action out for `who` to decide, or says why not (audited either way by the
    /// caller's outcome).
    fn take(&self, id: &str, who: &str, now_ms: i64, tool_for_audit: &str) -> Result<Pending, Refusal> {
        let mut map = self.pending.lock().expect("not poisoned");
        let refuse = |r: Refusal, args: serde_json::Value| {
            let _ = self.audit.append(who, tool_for_audit, args, Outcome::Error, &r.to_string());
            Err(r)
        };
        let Some(p) = map.get(id).cloned() else {
            return refuse(Refusal::Unknown(id.to_string()), serde_json::json!({ "action": id }));
        };
        if p.operator != who && !self.approve_for_others.iter().any(|o| o == who) {
            return refuse(
                Refusal::NotYours { id: id.to_string(), owner: p.operator.clone(), who: who.to_string() },
                serde_json::json!({ "action": id }),
            );
        }
        // Gone from disk before it is carried out: a crash can lose an approval, never repeat one.
        if let Err(e) = self.tree.remove(id) {
            let r = Refusal::Unknown(format!("{id} (the store failed: {e:#})"));
            return refuse(r, serde_json::json!({ "action": id }));
        }
        map.remove(id);
        if now_ms > p.expires_ms {
            let _ = self.audit.append(
                who,
                p.tool.as_str(),
                p.arguments.clone(),
                Outcome::Expired,
                &format!("action {id} expired"),
            );
            return Err(Refusal::Expired(id.to_string()));
        }
        Ok(p)
    }

    /// Approves: the action is handed back to be carried out, once; the caller reports the result
    /// with [`Policy::record`].
    pub fn approve(&self, id: &str, who: &str, now_ms: i64) -> Result<Pending, Refusal> {
        self.take(id, who, now_ms, "approve")
    }

    /// Rejects: the action is cancelled.
    pub fn reject(&self, id: &str, who: &str, now_ms: i64) -> Result<Pending, Refusal> {
        let p = self.take(id, who, now_ms, "reject")?;
        let _ = self.audit.append(
            who,
            p.tool.as_str(),
            p.arguments.clone(),
            Outcome::Rejected,
            &format!("action {id} rejected"),
        );
        Ok(p)
    }

    /// A change the agent proposed for `operator`, as its tool result (an agent `Host`'s
    /// `propose`).
    pub fn proposal(
        &self,
        operator: &str,
        tool: Change,
        arguments: serde_json::Value,
        now_ms: i64,
    ) -> Result<serde_json::Value, String> {
        self.propose(operator, tool, arguments, now_ms).map(|p| p.as_proposal()).map_err(|e| format!("{e:#}"))
    }

    /// Ids of `operator`'s pending actions (an agent `Host`'s `pending_ids`).
    pub fn pending_ids(&self, operator: &str) -> Vec<String> {
        self.list(operator).into_iter().map(|p| p.id).collect()
    }

    /// Audits a read the agent made for `operator` (an agent `Host`'s `audit_read`).
    pub fn audit_read(&self, operator: &str, tool: &str, args: &serde_json::Value, ok: bool) {
        let outcome = if ok { Outcome::Executed } else { Outcome::Error };
        self.record(&format!("agent for {operator}"), tool, args.clone(), outcome, "");
    }

    /// Audits what came of an approved action or a direct change.
    pub fn record(&self, who: &str, tool: &str, arguments: serde_json::Value, outcome: Outcome, detail: &str) {
        if let Err(e) = self.audit.append(who, tool, arguments, outcome, detail) {
            tracing::error!("audit log: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_once_and_are_stored_by_name() {
        for c in Change::ALL {
            assert_eq!(Change::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
        assert_eq!(Change::parse("drop_database"), None);
        assert_eq!(Change::parse("Resolve_Fault"), None);
    }

    fn policy(dir: &std::path::Path) -> Policy {
        let db = sled::open(dir).unwrap();
        Policy::new(Audit::open(&db).unwrap(), 600.0, vec!["supervisor".into()]).unwrap()
    }

    #[test]
    fn pending_actions_survive_a_restart_and_stay_single_use() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let p = policy(dir.path());
            let a = p.propose("alice", Change::ResolveFault, serde_json::json!({ "fault": "F-1" }), 1_000).unwrap();
            let b = p.propose("alice", Change::InjectFault, serde_json::json!({ "node": "X" }), 1_000).unwrap();
            p.approve(&b.id, "alice", 2_000).unwrap();
            (a, b)
        };
        let p = policy(dir.path());
        assert_eq!(p.list("alice"), vec![a.clone()]);
        assert!(matches!(p.approve(&b.id, "alice", 3_000), Err(Refusal::Unknown(_))));
        p.approve(&a.id, "alice", 3_000).unwrap();
        drop(p);
        assert!(policy(dir.path()).list("alice").is_empty());
    }

    #[test]
    fn an_action_is_decided_once_by_its_operator_before_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let args = serde_json::json!({ "fault": "F-x", "note": "n" });
        let a = p.propose("alice", Change::ResolveFault, args.clone(), 1_000).unwrap();
        assert_eq!(p.list("alice").len(), 1);
        assert!(p.list("bob").is_empty());
        assert_eq!(p.list("supervisor").len(), 1);
        // Another operator may not; the action stays pending.
        assert!(matches!(p.approve(&a.id, "bob", 2_000), Err(Refusal::NotYours { .. })));
        assert_eq!(p.list("alice").len(), 1);
        // Its operator may, once.
        assert_eq!(p.approve(&a.id, "alice", 3_000).unwrap().arguments, args);
        assert!(matches!(p.approve(&a.id, "alice", 3_000), Err(Refusal::Unknown(_))));
        // Expired: refused.
        let b = p.propose("alice", Change::InjectFault, serde_json::json!({}), 10_000).unwrap();
        assert_eq!(p.approve(&b.id, "alice", 10_000 + 600_001), Err(Refusal::Expired(b.id.clone())));
        // Rejected: gone; a supervisor may decide for others.
        let c = p.propose("alice", Change::InjectFault, serde_json::json!({}), 20_000).unwrap();
        p.reject(&c.id, "supervisor", 21_000).unwrap();
        assert!(p.approve(&c.id, "alice", 22_000).is_err());
        // Everything was audited, in order.
        let outcomes: Vec<Outcome> = p.audit.page(0, 100).unwrap().0.iter().map(|e| e.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Pending,
                Outcome::Error,
                Outcome::Error,
                Outcome::Pending,
                Outcome::Expired,
                Outcome::Pending,
                Outcome::Rejected,
                Outcome::Error
            ]
        );
    }
}
