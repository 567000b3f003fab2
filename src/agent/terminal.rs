//! `twinfault agent`: a terminal chat with the operations agent of a running `twinfault serve`.
//! Tool events are printed as they were used; a proposed change is put to the operator with an
//! approve/reject prompt, and only their answer goes to the server.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufRead, Write};

pub struct Session {
    base: String,
    token: String,
    agent: ureq::Agent,
    messages: Vec<Value>,
}

impl Session {
    pub fn new(base: &str, token: &str) -> Session {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(180)))
            .build()
            .into();
        Session { base: base.trim_end_matches('/').to_string(), token: token.to_string(), agent, messages: Vec::new() }
    }

    fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string()?;
        Ok((status, serde_json::from_str(&text).unwrap_or(json!({ "error": text }))))
    }

    /// One question; returns the reply as printed lines and the pending actions.
    pub fn ask(&mut self, question: &str) -> Result<(Vec<String>, Vec<Value>)> {
        self.messages.push(json!({ "role": "user", "content": question }));
        let (status, r) = self.post("/api/agent/chat", &json!({ "messages": self.messages }))?;
        if status != 200 {
            bail!("HTTP {status}: {}", r["error"].as_str().unwrap_or_default());
        }
        let mut lines = Vec::new();
        for e in r["tool_events"].as_array().into_iter().flatten() {
            // The twin's own calls (made before the model spoke) are marked apart from the model's.
            let by = if e["by"] == "twin" { "[twin]" } else { "[tool]" };
            lines.push(format!(
                "  {by} {} {} -> {}",
                e["tool"].as_str().unwrap_or("?"),
                e["arguments"],
                e["outcome"].as_str().unwrap_or("?")
            ));
        }
        let reply = r["reply"].as_str().unwrap_or_default().to_string();
        lines.push(reply.clone());
        if r["answered_by"] == "twin" {
            lines.push(format!("  [check] {}", r["check"].as_str().unwrap_or("the model did not answer")));
        }
        if let Some(ids) = r["unverified_ids"].as_array().filter(|a| !a.is_empty()) {
            lines.push(format!(
                "  [check] not known to the twin, not confirmed: {}",
                ids.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
            ));
        }
        self.messages.push(json!({ "role": "assistant", "content": reply }));
        let pending = r["pending_actions"].as_array().cloned().unwrap_or_default();
        Ok((lines, pending))
    }

    /// Approves or rejects a pending action; the server's answer.
    pub fn decide(&self, action: &str, approve: bool) -> Result<String> {
        let path = format!("/api/actions/{action}/{}", if approve { "approve" } else { "reject" });
        let (status, r) = self.post(&path, &json!({}))?;
        Ok(if status == 200 {
            format!("done: {r}")
        } else {
            format!("refused (HTTP {status}): {}", r["error"].as_str().unwrap_or_default())
        })
    }
}

/// The interactive loop on stdin/stdout.
pub fn run(base: &str, token: &str) -> Result<()> {
    let mut s = Session::new(base, token);
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    writeln!(out, "twinfault agent at {base} (empty line or Ctrl-D to leave)")?;
    loop {
        write!(out, "> ")?;
        out.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(());
        }
        match s.ask(line.trim()) {
            Ok((lines, pending)) => {
                for l in lines {
                    writeln!(out, "{l}")?;
                }
                for p in pending {
                    let id = p["pending_action"].as_str().unwrap_or_default().to_string();
                    write!(
                        out,
                        "  proposed change {id}: {} {} — approve? [y/N] ",
                        p["tool"].as_str().unwrap_or("?"),
                        p["arguments"]
                    )?;
                    out.flush()?;
                    let mut a = String::new();
                    stdin.lock().read_line(&mut a)?;
                    let yes = matches!(a.trim(), "y" | "Y" | "yes");
                    writeln!(out, "  {}", s.decide(&id, yes)?)?;
                }
            }
            Err(e) => writeln!(out, "error: {e:#}")?,
        }
    }
}
