//! A scripted stand-in for a model: a real HTTP server on a free loopback port that speaks the
//! OpenAI chat-completions protocol (with tool calls) and answers each request with the next reply
//! of its script. The agent's tests (the server's, the visualizer's) and CI use it in place of a
//! model; it makes no network calls and decides nothing itself.

use super::chat::AgentConfig;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A scripted chat-completions endpoint; it stops with the process.
pub struct Double {
    pub port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
}

/// A reply that calls tool `name` with `args`.
pub fn tool_call(name: &str, args: Value) -> Value {
    json!({ "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "double",
        "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": { "role": "assistant", "content": null,
            "tool_calls": [{ "id": format!("call-{name}"), "type": "function", "function": { "name": name, "arguments": args.to_string() } }] } }] })
}

/// A reply that answers `text`.
pub fn answer(text: &str) -> Value {
    json!({ "id": "chatcmpl-2", "object": "chat.completion", "created": 0, "model": "double",
        "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant", "content": text } }] })
}

impl Double {
    /// Serves `script` in order, then its last reply again and again; returns once it accepts
    /// connections.
    pub fn start(script: Vec<Value>) -> std::io::Result<Double> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let reqs = Arc::clone(&requests);
        let (started, ready) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("model-double".into()).spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    let (reqs, script) = (Arc::clone(&reqs), Arc::clone(&script));
                    actix_web::App::new().route(
                        "/v1/chat/completions",
                        actix_web::web::post().to(move |body: actix_web::web::Json<Value>| {
                            let (reqs, script) = (Arc::clone(&reqs), Arc::clone(&script));
                            async move {
                                if let Ok(mut r) = reqs.lock() {
                                    r.push(body.into_inner());
                                }
                                let next = script
                                    .lock()
                                    .ok()
                                    .and_then(|mut s| if s.len() > 1 { s.pop_front() } else { s.front().cloned() });
                                match next {
                                    Some(reply) => actix_web::HttpResponse::Ok().json(reply),
                                    None => actix_web::HttpResponse::InternalServerError().body("the script is empty"),
                                }
                            }
                        }),
                    )
                })
                .workers(1)
                .listen(listener);
                match server {
                    Ok(server) => {
                        let _ = started.send(Ok(()));
                        let _ = server.run().await;
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
            });
        })?;
        ready.recv().map_err(|_| std::io::Error::other("the double's thread ended"))??;
        Ok(Double { port, requests })
    }

    /// Its base URL, as an agent's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Every request body it has received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// An `[agent]` table pointing at it, with `extra` lines.
    pub fn config(&self, extra: &str) -> String {
        format!("[agent]\nbase_url = \"{}\"\napi_key = \"test\"\nmodel = \"double\"\n{extra}", self.base_url())
    }

    /// An agent configuration pointing at it.
    pub fn agent_config(&self) -> AgentConfig {
        AgentConfig {
            base_url: Some(self.base_url()),
            model: Some("double".into()),
            api_key: Some("test".into()),
            ..AgentConfig::default()
        }
    }
}
