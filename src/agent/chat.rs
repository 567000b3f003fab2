//! The operations agent's conversation: any OpenAI-compatible chat-completions endpoint (through
//! `async-openai`), the twin's tools with JSON schemas generated from their Rust argument types,
//! read tools answered at once, change tools turned into pending actions (never carried out here),
//! a limit on tool rounds and on tool output, retries with backoff on 429/5xx, and a check of the
//! reply's ids against the twin.

use super::tools::{self, Host, Tool, known_ids, overview, specs};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestMessage, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequest, FunctionObject,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// Where the model is and how patient to be with it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// OpenAI-compatible base URL, e.g. `https://api.openai.com/v1` or Ollama's
    /// `http://127.0.0.1:11434/v1` (env `TWINFAULT_AGENT_BASE_URL`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Model name (env `TWINFAULT_AGENT_MODEL`).
    #[serde(default)]
    pub model: Option<String>,
    /// API key (env `OPENAI_API_KEY`; local servers take any).
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "d_timeout")]
    pub timeout_s: f64,
    /// Retries after a 429 or 5xx answer or a failed connection, with doubling backoff.
    #[serde(default = "d_retries")]
    pub retries: u32,
    #[serde(default = "d_rounds")]
    pub max_tool_rounds: usize,
    /// Longest tool result passed to the model [characters].
    #[serde(default = "d_output")]
    pub max_tool_output_chars: usize,
}

fn d_timeout() -> f64 {
    60.0
}
fn d_retries() -> u32 {
    2
}
fn d_rounds() -> usize {
    6
}
fn d_output() -> usize {
    8000
}

impl Default for AgentConfig {
    fn default() -> Self {
        serde_json::from_value(json!({})).expect("every key has a default")
    }
}

impl AgentConfig {
    /// The endpoint, model and key: the configuration first, then the environment.
    pub fn resolved(&self) -> Option<(String, String, String)> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let base = self.base_url.clone().or_else(|| env("TWINFAULT_AGENT_BASE_URL"))?;
        let model = self.model.clone().or_else(|| env("TWINFAULT_AGENT_MODEL")).unwrap_or_else(|| "gpt-4o-mini".into());
        let key = self.api_key.clone().or_else(|| env("OPENAI_API_KEY")).unwrap_or_else(|| "none".into());
        Some((base, model, key))
    }
}

/// One tool call as the reply reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolEvent {
    pub tool: String,
    pub arguments: Value,
    /// `executed`, `pending` or `error`.
    pub outcome: &'static str,
    pub result: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    pub reply: String,
    pub tool_events: Vec<ToolEvent>,
    pub pending_actions: Vec<Value>,
    /// Ids in the reply that the twin does not know (never passed off as fact).
    pub unverified_ids: Vec<String>,
    pub model_available: bool,
    pub rounds: usize,
}

const SYSTEM: &str = "You are the operations assistant of a digital twin of HVAC actuators, AHUs and a plant. \
Answer only from the tools' results; name node and fault ids exactly as the tools give them. \
To say why a node is (or is not) in fault, use run_diagnosis and cite the rule, its measured value and its threshold. \
Changes (resolve_fault, inject_fault, clear_fault) are never carried out by you: they become pending actions that an \
operator must approve; say so plainly and give the action id.";

fn truncate(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.len() <= max { s } else { format!("{}… (truncated at {max} characters)", &s[..s.floor_char_boundary(max)]) }
}

async fn complete(
    client: &Client<OpenAIConfig>,
    req: &CreateChatCompletionRequest,
    cfg: &AgentConfig,
) -> Result<async_openai::types::chat::CreateChatCompletionResponse, String> {
    let mut wait = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        let r = tokio::time::timeout(Duration::from_secs_f64(cfg.timeout_s), client.chat().create(req.clone())).await;
        let err = match r {
            Ok(Ok(resp)) => return Ok(resp),
            Ok(Err(e)) => e,
            Err(_) => return Err(format!("no answer within {} s", cfg.timeout_s)),
        };
        let retry = match &err {
            OpenAIError::ApiError(a) => a.status_code.as_u16() == 429 || a.status_code.is_server_error(),
            OpenAIError::Reqwest(e) => e.status().is_none_or(|s| s.as_u16() == 429 || s.is_server_error()),
            _ => false,
        };
        if !retry || attempt >= cfg.retries {
            return Err(err.to_string());
        }
        attempt += 1;
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

/// Ids in `text` that look like the twin's (a known id's prefix) but that it does not know.
pub fn unverified_ids(text: &str, known: &BTreeSet<String>) -> Vec<String> {
    let prefixes: BTreeSet<String> =
        known.iter().filter_map(|k| k.split_once('-').map(|(p, _)| format!("{p}-"))).collect();
    let mut out = BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        let w = word.trim_matches('-');
        if w.contains('-') && prefixes.iter().any(|p| w.starts_with(p.as_str())) && !known.contains(w) {
            out.insert(w.to_string());
        }
    }
    out.into_iter().collect()
}

/// One turn: the conversation in, the reply with its tool events and pending actions out.
pub async fn chat(cfg: &AgentConfig, host: &dyn Host, messages: Vec<Value>) -> Reply {
    let known = known_ids(host);
    let Some((base, model, key)) = cfg.resolved() else {
        return fallback(host, "no model endpoint is configured (set TWINFAULT_AGENT_BASE_URL or [agent] base_url)");
    };
    let client = Client::with_config(OpenAIConfig::new().with_api_base(base.trim_end_matches('/')).with_api_key(key));
    let specs = specs();
    let tool_defs: Vec<ChatCompletionTools> = specs
        .iter()
        .map(|t| {
            ChatCompletionTools::Function(ChatCompletionTool {
                function: FunctionObject {
                    name: t.name.into(),
                    description: Some(t.description.into()),
                    parameters: Some(t.schema.clone()),
                    strict: None,
                },
            })
        })
        .collect();
    let mut msgs: Vec<Value> = vec![json!({ "role": "system", "content": SYSTEM })];
    msgs.extend(messages);
    let mut events = Vec::new();
    let mut pending = Vec::new();
    for round in 0..=cfg.max_tool_rounds {
        let typed: Result<Vec<ChatCompletionRequestMessage>, _> =
            msgs.iter().map(|m| serde_json::from_value(m.clone())).collect();
        let typed = match typed {
            Ok(t) => t,
            Err(e) => return fallback(host, &format!("the conversation is malformed: {e}")),
        };
        let req = CreateChatCompletionRequest {
            model: model.clone(),
            messages: typed,
            tools: Some(tool_defs.clone()),
            ..Default::default()
        };
        let resp = match complete(&client, &req, cfg).await {
            Ok(r) => r,
            Err(e) => return fallback(host, &format!("the model endpoint {base} is unreachable or failed ({e})")),
        };
        let Some(choice) = resp.choices.into_iter().next() else {
            return fallback(host, "the model returned no answer");
        };
        let calls: Vec<_> = choice.message.tool_calls.clone().unwrap_or_default();
        if calls.is_empty() {
            let text = choice.message.content.unwrap_or_default();
            return Reply {
                unverified_ids: unverified_ids(&text, &known),
                reply: text,
                tool_events: events,
                pending_actions: pending,
                model_available: true,
                rounds: round,
            };
        }
        if round == cfg.max_tool_rounds {
            break;
        }
        msgs.push(serde_json::to_value(&choice.message).unwrap_or(Value::Null));
        if let Some(m) = msgs.last_mut() {
            m["role"] = json!("assistant");
        }
        for call in calls {
            let ChatCompletionMessageToolCalls::Function(call) = call else { continue };
            let args: Value = serde_json::from_str(&call.function.arguments).unwrap_or(json!({}));
            let name = call.function.name.clone();
            let (outcome, result) = match Tool::parse(&name, &args) {
                Err(e) => ("error", json!({ "error": e })),
                Ok(tool) => match (tools::call(host, &tool, &args).await, matches!(tool, Tool::Propose(..))) {
                    (Ok(p), true) => {
                        pending.push(p.clone());
                        ("pending", p)
                    }
                    (Ok(v), false) => ("executed", v),
                    (Err(e), _) => ("error", json!({ "error": e })),
                },
            };
            msgs.push(json!({ "role": "tool", "tool_call_id": call.id, "content": truncate(&result, cfg.max_tool_output_chars) }));
            events.push(ToolEvent { tool: name, arguments: args, outcome, result });
        }
    }
    Reply {
        reply: format!(
            "Stopped after {} tool rounds without an answer (max_tool_rounds); the tool results so far are in tool_events.",
            cfg.max_tool_rounds
        ),
        tool_events: events,
        pending_actions: pending,
        unverified_ids: Vec::new(),
        model_available: true,
        rounds: cfg.max_tool_rounds,
    }
}

/// The plain answer when there is no model: say so, and show the twin's own overview.
fn fallback(host: &dyn Host, why: &str) -> Reply {
    let o = overview(host);
    Reply {
        reply: format!(
            "{why}. No model answered, so here is the twin's own overview, not an interpretation:\n{}",
            serde_json::to_string_pretty(&o).unwrap_or_default()
        ),
        tool_events: Vec::new(),
        pending_actions: Vec::new(),
        unverified_ids: Vec::new(),
        model_available: false,
        rounds: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_the_twin_does_not_know_are_flagged() {
        let known: BTreeSet<String> =
            ["BEL-VNT-003", "ahu-01", "F-BEL-VNT-003-gear_jam-100"].iter().map(|s| s.to_string()).collect();
        let text =
            "BEL-VNT-003 has a jam (F-BEL-VNT-003-gear_jam-100); BEL-VNT-099 and ahu-07 look fine. G36-style rules.";
        assert_eq!(unverified_ids(text, &known), ["BEL-VNT-099", "ahu-07"]);
    }
}
