//! The operations agent in-process: the server's own agent ([`twinfault::agent::chat`]: the same
//! grounding, tools, check and approval policy) over the visualizer's run, so a scenario opened
//! without `--connect` can be asked about too.
//!
//! The agent answers on a thread of its own (a model on a CPU takes minutes; the window never
//! waits). It reads the run through a [`Live`] view that the app's thread folds every epoch's
//! events into, as the server's view is folded; a diagnosis, which needs the run's twins, is asked
//! of the app's thread and answered at its next frame ([`LocalAgent::diagnoses`]). Changes it
//! proposes wait in an approval [`Policy`] on a throw-away sled store, as a server's do, until the
//! operator approves them in the panel; the app carries them out on its run.

use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use twinfault::agent::chat::{AgentConfig, chat};
use twinfault::agent::policy::{Change, Policy};
use twinfault::agent::tools::{Host, LocalBoxFuture};
use twinfault::live::Live;
use twinfault::store::audit::Outcome;
use twinfault_core::config::Facility;
use twinfault_core::event::Event;

/// The operator the visualizer's panel decides as.
pub const OPERATOR: &str = "viz";

/// A diagnosis the agent asks of the run, answered on `reply`.
pub struct DiagnoseRequest {
    pub node: String,
    pub reply: tokio::sync::oneshot::Sender<Result<Value, String>>,
}

/// The agent's thread, its view of the run and its approval policy.
pub struct LocalAgent {
    pub live: Arc<Live>,
    pub policy: Arc<Policy>,
    /// The run's time [ms], as the agent's "now".
    now_ms: Arc<AtomicI64>,
    asks: Sender<Vec<Value>>,
    // Behind a lock only because the app is a bevy resource (shared across threads); one thread
    // reads them.
    replies: Mutex<Receiver<Value>>,
    diagnoses: Mutex<Receiver<DiagnoseRequest>>,
    /// Questions asked and not yet answered.
    pub waiting: usize,
    /// Where the model is ("the twin's facts" when none is configured).
    pub answers_with: String,
    store_dir: PathBuf,
}

impl LocalAgent {
    /// Starts the agent on a run whose events so far are `events`.
    pub fn start(facility: Arc<Facility>, events: &[Event], cfg: AgentConfig) -> Result<LocalAgent, String> {
        let store_dir = std::env::temp_dir().join(format!(
            "twinfault-viz-agent-{}-{}",
            std::process::id(),
            twinfault::clock::now_ms()
        ));
        let policy = twinfault::store::Store::open(&store_dir)
            .and_then(|s| s.audit())
            .and_then(|audit| Policy::new(audit, twinfault::agent::policy::DEFAULT_EXPIRY_S, Vec::new()))
            .map_err(|e| format!("the agent's audit store at {}: {e:#}", store_dir.display()))?;
        let policy = Arc::new(policy);
        let live = Arc::new(Live::new(facility));
        live.apply(events);
        let answers_with = match cfg.resolved() {
            Some((base, model, _)) => format!("{model} at {base}"),
            None => "the twin's facts (no model: set TWINFAULT_AGENT_BASE_URL or --agent-base-url)".into(),
        };
        let now_ms = Arc::new(AtomicI64::new(0));
        let (asks, ask_rx) = channel::<Vec<Value>>();
        let (reply_tx, replies) = channel();
        let (diagnose_tx, diagnoses) = channel();
        let host = VizHost {
            live: Arc::clone(&live),
            policy: Arc::clone(&policy),
            now_ms: Arc::clone(&now_ms),
            diagnose: diagnose_tx,
        };
        std::thread::Builder::new()
            .name("agent".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = reply_tx.send(serde_json::json!({ "reply": format!("the agent cannot start: {e}") }));
                        return;
                    }
                };
                while let Ok(messages) = ask_rx.recv() {
                    let reply = rt.block_on(chat(&cfg, &host, messages));
                    if reply_tx.send(serde_json::to_value(&reply).unwrap_or_default()).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| format!("the agent's thread: {e}"))?;
        Ok(LocalAgent {
            live,
            policy,
            now_ms,
            asks,
            replies: Mutex::new(replies),
            diagnoses: Mutex::new(diagnoses),
            waiting: 0,
            answers_with,
            store_dir,
        })
    }

    /// Asks the conversation so far; the reply comes from [`LocalAgent::replies`].
    pub fn ask(&mut self, messages: Vec<Value>) {
        if self.asks.send(messages).is_ok() {
            self.waiting += 1;
        }
    }

    /// The run's time now [ms].
    pub fn set_now(&self, ms: i64) {
        self.now_ms.store(ms, Ordering::Relaxed);
    }

    /// Replies that arrived (the server's reply format: `reply`, `tool_events`, `pending_actions`, …).
    pub fn replies(&mut self) -> Vec<Value> {
        let v: Vec<Value> = self.replies.lock().map(|r| r.try_iter().collect()).unwrap_or_default();
        self.waiting = self.waiting.saturating_sub(v.len());
        v
    }

    /// Diagnoses the agent is waiting for.
    pub fn diagnoses(&self) -> Vec<DiagnoseRequest> {
        self.diagnoses.lock().map(|r| r.try_iter().collect()).unwrap_or_default()
    }

    /// Audits what came of an approved action.
    pub fn record(&self, tool: Change, arguments: Value, result: &Result<String, String>) {
        let (outcome, detail) = match result {
            Ok(m) => (Outcome::Executed, m.as_str()),
            Err(e) => (Outcome::Error, e.as_str()),
        };
        self.policy.record(OPERATOR, tool.as_str(), arguments, outcome, detail);
    }
}

impl Drop for LocalAgent {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.store_dir);
    }
}

/// The run behind the server's tools, from the agent's thread.
struct VizHost {
    live: Arc<Live>,
    policy: Arc<Policy>,
    now_ms: Arc<AtomicI64>,
    diagnose: Sender<DiagnoseRequest>,
}

impl Host for VizHost {
    fn live(&self) -> &Live {
        &self.live
    }

    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    fn diagnose<'a>(&'a self, node: &'a str) -> LocalBoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.diagnose
                .send(DiagnoseRequest { node: node.to_string(), reply })
                .map_err(|_| "the visualizer has closed".to_string())?;
            answer.await.map_err(|_| format!("the run did not answer for \"{node}\""))?
        })
    }

    fn propose(&self, change: Change, arguments: Value) -> Result<Value, String> {
        // Pending actions expire in wall-clock time: the run's clock may go 300 times faster.
        self.policy.proposal(OPERATOR, change, arguments, twinfault::clock::now_ms())
    }

    fn pending_ids(&self) -> Vec<String> {
        self.policy.pending_ids(OPERATOR)
    }

    fn audit_read(&self, tool: &str, args: &Value, ok: bool) {
        self.policy.audit_read(OPERATOR, tool, args, ok)
    }
}
