//! The operations agent's conversation: any OpenAI-compatible chat-completions endpoint (through
//! `async-openai`), the twin's tools with JSON schemas generated from their Rust argument types,
//! read tools answered at once, change tools turned into pending actions (never carried out here),
//! a limit on tool rounds and on tool output, retries with backoff on 429/5xx, and a check of the
//! reply's ids against the twin.

use super::ground;
use super::tools::{self, Host, Tool, known_ids, specs};
use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestMessage, ChatCompletionTool, ChatCompletionToolChoiceOption,
    ChatCompletionTools, CreateChatCompletionRequest, FunctionObject, ToolChoiceOptions,
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
    /// Longest wait for one model request [s].
    #[serde(default = "d_timeout")]
    pub timeout_s: f64,
    /// Longest time for one question, all requests together [s]; then the twin's facts answer.
    /// A local model on a CPU needs minutes; a hosted one seconds.
    #[serde(default = "d_time_limit")]
    pub time_limit_s: f64,
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
    120.0
}
fn d_time_limit() -> f64 {
    240.0
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
    /// `twin`: called by the agent to ground the model before it spoke; `model`: the model's call.
    pub by: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    pub reply: String,
    pub tool_events: Vec<ToolEvent>,
    pub pending_actions: Vec<Value>,
    /// Ids in the reply that the twin does not know (never passed off as fact).
    pub unverified_ids: Vec<String>,
    pub model_available: bool,
    /// Model requests made.
    pub rounds: usize,
    /// What the question asks, as the agent read it (`which_fault`, `since_when`, …).
    pub kind: &'static str,
    /// `model`: the model's answer, checked against the twin; `twin`: the twin's own facts,
    /// because the model's answer failed the check (twice), or the model did not answer.
    pub answered_by: &'static str,
    /// Why the model's answer was not used.
    pub check: Option<String>,
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

/// One request, retried on 429/5xx with doubling backoff, within `cfg.timeout_s` and `left`.
async fn complete(
    client: &Client<OpenAIConfig>,
    req: &CreateChatCompletionRequest,
    cfg: &AgentConfig,
    left: Duration,
) -> Result<async_openai::types::chat::CreateChatCompletionResponse, String> {
    let mut wait = Duration::from_millis(250);
    let mut attempt = 0;
    let until = std::time::Instant::now() + left;
    loop {
        let limit = Duration::from_secs_f64(cfg.timeout_s.max(0.1))
            .min(until.saturating_duration_since(std::time::Instant::now()));
        let r = tokio::time::timeout(limit, client.chat().create(req.clone())).await;
        let err = match r {
            Ok(Ok(resp)) => return Ok(resp),
            Ok(Err(e)) => e,
            Err(_) => return Err(format!("no answer within {:.0} s", limit.as_secs_f64())),
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

/// The text of the conversation's last user message.
fn last_question(messages: &[Value]) -> String {
    let m = messages.iter().rev().find(|m| m["role"] == "user");
    match m.map(|m| &m["content"]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

const GROUNDED: &str = "You are the operations assistant of a digital twin of HVAC actuators, AHUs and a plant. \
The twin's tools have already been called for the question; their results come with it. Answer from them in one to three plain sentences for an operator: name the node and fault ids exactly as \
given, the fault kind, times as the tools give them (UTC), and for what to do, the recommended action in your own \
words. Never tell the operator to call a tool, and never answer with an empty message.";

/// One turn: the conversation in, the reply with its tool events and pending actions out.
///
/// Before the model speaks the agent calls the tools the question needs itself ([`ground::calls`]:
/// the overview, the nodes it names, the one its kind needs) and gives the model their results;
/// where those answer the question the model is asked for text only. Its answer is checked
/// against the twin ([`ground::verify`]); a failed answer is sent back once with the reason, and
/// if it fails again, or the model is silent, slow or unreachable, the twin's own facts answer
/// ([`ground::facts_answer`]), saying so. The reply is never empty.
pub async fn chat(cfg: &AgentConfig, host: &dyn Host, messages: Vec<Value>) -> Reply {
    let started = std::time::Instant::now();
    let known = known_ids(host);
    let intent = ground::intent(&last_question(&messages), host);
    let mut events = Vec::new();
    let mut facts = String::new();
    for tool in ground::calls(&intent, host) {
        let args = tool.arguments();
        let (outcome, result) = match tools::call(host, &tool, &args).await {
            Ok(v) => ("executed", v),
            Err(e) => ("error", json!({ "error": e })),
        };
        facts.push_str(&format!("{}({}) = {}\n", tool.name(), args, truncate(&result, cfg.max_tool_output_chars)));
        events.push(ToolEvent { tool: tool.name().into(), arguments: args, outcome, result, by: "twin" });
    }
    let reply = |text: String, by: &'static str, check: Option<String>, model: bool, rounds, events, pending| Reply {
        // The twin's own facts name only what it knows (its note may quote the model's invention).
        unverified_ids: if by == "twin" { Vec::new() } else { unverified_ids(&text, &known) },
        reply: text,
        tool_events: events,
        pending_actions: pending,
        model_available: model,
        rounds,
        kind: intent.kind.as_str(),
        answered_by: by,
        check,
    };
    let from_facts =
        |why: String| format!("{}\n(From the twin's own facts: {why}.)", ground::facts_answer(&intent, host));
    let Some((base, model, key)) = cfg.resolved() else {
        let why = "no model endpoint is configured (set TWINFAULT_AGENT_BASE_URL or [agent] base_url)".to_string();
        return reply(from_facts(why.clone()), "twin", Some(why), false, 0, events, Vec::new());
    };
    let client = Client::with_config(OpenAIConfig::new().with_api_base(base.trim_end_matches('/')).with_api_key(key));
    let tool_defs: Vec<ChatCompletionTools> = specs()
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
    let text_only = intent.answerable_from_facts();
    // The facts go with the question (a small model imitates a transcript of tool calls instead
    // of answering); where the model may call tools, they open the conversation.
    let mut msgs: Vec<Value> = Vec::with_capacity(messages.len() + 1);
    if text_only {
        msgs.push(json!({ "role": "system", "content": GROUNDED }));
        let last = messages.iter().rposition(|m| m["role"] == "user");
        for (k, m) in messages.into_iter().enumerate() {
            if Some(k) == last {
                msgs.push(json!({ "role": "user", "content": format!(
                    "The twin's facts, from its tools just now:\n{facts}\nQuestion: {}\nAnswer the question from these facts in one to three sentences. {}",
                    last_question(std::slice::from_ref(&m)), intent.kind.answer_shape()) }));
            } else {
                msgs.push(m);
            }
        }
    } else {
        msgs.push(json!({ "role": "system", "content": format!(
            "{SYSTEM}\n\nThe twin's facts, from its tools just now (call a tool for anything else):\n{facts}") }));
        msgs.extend(messages);
    }
    let deadline = Duration::from_secs_f64(cfg.time_limit_s.max(0.0));
    let mut pending = Vec::new();
    let mut retried = false;
    let mut round = 0;
    loop {
        let Some(left) = deadline.checked_sub(started.elapsed()).filter(|d| d.as_secs_f64() >= 0.5) else {
            let why = format!("the model gave no answer within the time limit ({} s)", cfg.time_limit_s);
            return reply(from_facts(why.clone()), "twin", Some(why), true, round, events, pending);
        };
        let typed: Result<Vec<ChatCompletionRequestMessage>, _> =
            msgs.iter().map(|m| serde_json::from_value(m.clone())).collect();
        let typed = match typed {
            Ok(t) => t,
            Err(e) => {
                let why = format!("the conversation is malformed: {e}");
                return reply(from_facts(why.clone()), "twin", Some(why), false, round, events, pending);
            }
        };
        // Text only where the facts answer the question (and after the tool rounds run out).
        let no_tools = text_only || round >= cfg.max_tool_rounds;
        let req = CreateChatCompletionRequest {
            model: model.clone(),
            messages: typed,
            tools: Some(tool_defs.clone()),
            tool_choice: no_tools.then_some(ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::None)),
            temperature: Some(0.0),
            ..Default::default()
        };
        let resp = match complete(&client, &req, cfg, left).await {
            Ok(r) => r,
            Err(e) => {
                let why = format!("the model endpoint {base} is unreachable or failed ({e})");
                return reply(from_facts(why.clone()), "twin", Some(why), false, round, events, pending);
            }
        };
        round += 1;
        let Some(choice) = resp.choices.into_iter().next() else {
            let why = "the model returned no answer".to_string();
            return reply(from_facts(why.clone()), "twin", Some(why), true, round, events, pending);
        };
        let calls: Vec<_> = if no_tools { Vec::new() } else { choice.message.tool_calls.clone().unwrap_or_default() };
        if calls.is_empty() {
            let text = choice.message.content.clone().unwrap_or_default().trim().to_string();
            let check = ground::verify(&intent, host, &text, &unverified_ids(&text, &known));
            match check {
                Ok(()) => return reply(text, "model", None, true, round, events, pending),
                Err(why) if !retried => {
                    retried = true;
                    msgs.push(json!({ "role": "assistant", "content": if text.is_empty() { "(no answer)" } else { text.as_str() } }));
                    msgs.push(json!({ "role": "user", "content": format!(
                        "That answer does not match the twin: {why}. Answer the question again from the tool results above, \
                         in one to three sentences, naming the ids exactly as they are given.") }));
                    continue;
                }
                Err(why) => {
                    let why = format!("the model's answer did not pass the check: {why}");
                    return reply(from_facts(why.clone()), "twin", Some(why), true, round, events, pending);
                }
            }
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
            events.push(ToolEvent { tool: name, arguments: args, outcome, result, by: "model" });
        }
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
