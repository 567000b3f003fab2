//! The operations agent against a real local HTTP server that speaks the OpenAI chat-completions
//! protocol with tool calls, scripted per test (no network), behind a real `twinfault serve`.

use crate::server::{READ, Server, WRITE};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A scripted chat-completions endpoint on a free loopback port.
struct Double {
    port: u16,
    /// Every request body it received.
    requests: Arc<Mutex<Vec<Value>>>,
}

fn tool_call(name: &str, args: Value) -> Value {
    json!({ "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "double",
        "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": { "role": "assistant", "content": null,
            "tool_calls": [{ "id": format!("call-{name}"), "type": "function", "function": { "name": name, "arguments": args.to_string() } }] } }] })
}

fn answer(text: &str) -> Value {
    json!({ "id": "chatcmpl-2", "object": "chat.completion", "created": 0, "model": "double",
        "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant", "content": text } }] })
}

impl Double {
    /// Serves `script` in order; the last entry again once it runs out.
    fn start(script: Vec<Value>) -> Double {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (req2, script2) = (Arc::clone(&requests), Arc::clone(&script));
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                actix_web::HttpServer::new(move || {
                    let (reqs, script) = (Arc::clone(&req2), Arc::clone(&script2));
                    actix_web::App::new().route(
                        "/v1/chat/completions",
                        actix_web::web::post().to(move |body: actix_web::web::Json<Value>| {
                            let (reqs, script) = (Arc::clone(&reqs), Arc::clone(&script));
                            async move {
                                reqs.lock().unwrap().push(body.into_inner());
                                let mut s = script.lock().unwrap();
                                let next =
                                    if s.len() > 1 { s.pop_front().unwrap() } else { s.front().cloned().unwrap() };
                                actix_web::HttpResponse::Ok().json(next)
                            }
                        }),
                    )
                })
                .workers(1)
                .bind(("127.0.0.1", port))
                .unwrap()
                .run()
                .await
                .unwrap();
            });
        });
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Double { port, requests }
    }

    fn config(&self, extra: &str) -> String {
        format!(
            "[agent]\nbase_url = \"http://127.0.0.1:{}/v1\"\napi_key = \"test\"\nmodel = \"double\"\n{extra}",
            self.port
        )
    }
}

fn ask(s: &Server, token: &str, question: &str) -> Value {
    let body = json!({ "messages": [{ "role": "user", "content": question }] });
    let r = s.post("/api/agent/chat", Some(token), &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn an_overview_question_calls_the_overview_tool_and_answers_from_it() {
    let d = Double::start(vec![tool_call("system_overview", json!({})), answer("All 14 actuators are healthy.")]);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, READ, "Give me a live overview and the top faults.");
    assert_eq!(r["model_available"], true);
    assert_eq!(r["reply"], "All 14 actuators are healthy.");
    assert_eq!(r["tool_events"][0]["tool"], "system_overview");
    assert_eq!(r["tool_events"][0]["outcome"], "executed");
    let reqs = d.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2);
    // The model was offered the tools with schemas from the Rust types, and got the tool's result.
    let tools: Vec<&str> =
        reqs[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"resolve_fault") && tools.contains(&"node_details"), "{tools:?}");
    let tool_msg = reqs[1]["messages"].as_array().unwrap().iter().find(|m| m["role"] == "tool").unwrap();
    assert!(tool_msg["content"].as_str().unwrap().contains("\"facility\":\"datacenter\""), "{tool_msg}");
    // The read is audited.
    let audit = s.get("/api/audit", Some(READ)).json();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["tool"] == "system_overview" && e["outcome"] == "executed")
    );
}

/// A store holding an open gear jam on BEL-VNT-005 (fed over HTTP); its fault id. The server
/// that made it is gone, so the next one can open the store.
fn jammed_store(dir: &std::path::Path) -> String {
    let probe = Server::start(dir, "");
    let from = crate::server::now_ms() - 240_000;
    for chunk in (0..4800).step_by(400) {
        let r =
            probe.post("/api/ingest", Some(WRITE), &crate::server::jam_ndjson("BEL-VNT-005", from, chunk, chunk + 400));
        assert_eq!(r.status, 200);
    }
    let mut fault = String::new();
    assert!(crate::server::wait_for(10, || {
        let f = probe.get("/api/faults", Some(READ)).json();
        f.as_array().unwrap().first().map(|f| fault = f["id"].as_str().unwrap().to_string()).is_some()
    }));
    fault
}

#[test]
fn a_resolve_request_becomes_a_pending_action_and_changes_nothing_until_approved() {
    let dir = tempfile::tempdir().unwrap();
    let fault = jammed_store(dir.path());
    // The same store, now with the agent pointed at the double.
    let d = Double::start(vec![
        tool_call("explain_fault", json!({ "fault": fault })),
        tool_call("resolve_fault", json!({ "fault": fault, "note": "validated on site" })),
        answer("I proposed resolving it; approve the pending action to carry it out."),
    ]);
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, WRITE, &format!("Why is BEL-VNT-005 jammed? Resolve fault {fault} with note 'validated on site'"));
    // The explanation traces the fault up the tree: the device (with the fault open), its AHU, the
    // plant, each with its status and open faults.
    let explain = &r["tool_events"][0];
    assert_eq!(
        (explain["tool"].as_str(), explain["outcome"].as_str()),
        (Some("explain_fault"), Some("executed")),
        "{explain}"
    );
    let chain = explain["result"]["chain"].as_array().unwrap();
    let nodes: Vec<&str> = chain.iter().map(|l| l["node"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["BEL-VNT-005", "ahu-02", "plant-01"], "{explain}");
    assert!(chain.iter().all(|l| l["status"].is_string()));
    assert_eq!(chain[0]["open_faults"][0]["id"], fault.as_str());
    assert_eq!(explain["result"]["fault"]["kind"], "gear_jam");
    assert_eq!(r["tool_events"][1]["outcome"], "pending");
    let action = r["pending_actions"][0]["pending_action"].as_str().unwrap().to_string();
    // Nothing changed.
    let open = s.get("/api/faults", Some(READ)).json();
    assert!(open.as_array().unwrap().iter().any(|f| f["id"] == fault.as_str()), "resolved without approval: {open}");
    // Only its operator (the gateway token) may approve; then it is carried out. The pending
    // action is in the store: it survives a restart of the server.
    assert_eq!(s.post(&format!("/api/actions/{action}/approve"), Some(READ), "").status, 403);
    drop(s);
    let s = Server::start(dir.path(), &d.config(""));
    let listed = s.get("/api/actions", Some(WRITE)).json();
    assert!(listed.to_string().contains(&action), "{listed}");
    let ok = s.post(&format!("/api/actions/{action}/approve"), Some(WRITE), "");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["note"], "validated on site");
    // Used once: not again, not after another restart.
    assert_eq!(s.post(&format!("/api/actions/{action}/approve"), Some(WRITE), "").status, 404);
    let audit = s.get("/api/audit?limit=1000", Some(READ)).json();
    let outcomes: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert!(outcomes.contains(&"pending") && outcomes.contains(&"approved"), "{outcomes:?}");
}

#[test]
fn run_diagnosis_reports_each_rule_against_its_threshold_from_the_live_twin() {
    let d = Double::start(vec![
        tool_call("run_diagnosis", json!({ "node": "BEL-VNT-005" })),
        answer("BEL-VNT-005: the gear-jam rule holds (tracking error above its threshold)."),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &d.config(""));
    let from = crate::server::now_ms() - 240_000;
    for chunk in (0..4800).step_by(400) {
        let r = s.post("/api/ingest", Some(WRITE), &crate::server::jam_ndjson("BEL-VNT-005", from, chunk, chunk + 400));
        assert_eq!(r.status, 200);
    }
    assert!(crate::server::wait_for(10, || !s.get("/api/faults", Some(READ)).json().as_array().unwrap().is_empty()));
    let r = ask(&s, READ, "Run diagnosis on BEL-VNT-005 now.");
    let ev = &r["tool_events"][0];
    assert_eq!((ev["tool"].as_str(), ev["outcome"].as_str()), (Some("run_diagnosis"), Some("executed")), "{ev}");
    let diag = &ev["result"];
    assert_eq!(diag["node"], "BEL-VNT-005");
    let checks = diag["checks"].as_array().unwrap();
    let jam = checks.iter().find(|c| c["kind"] == "gear_jam").expect("the gear-jam rule was evaluated");
    // The open finding comes first, with the value that crossed its threshold.
    assert_eq!(checks[0]["kind"], "gear_jam", "{diag}");
    assert_eq!((jam["finding"].as_str(), jam["holds"].as_bool()), (Some("open"), Some(true)), "{jam}");
    // Its reported value crossed the threshold; once open, a jam holds until the device moves again.
    assert!(jam["reported_value"].as_f64().unwrap() > jam["threshold"].as_f64().unwrap(), "{jam}");
    assert!(jam["rule"].as_str().unwrap().contains("until the device moves"));
    assert_eq!(jam["unit"], "%");
    assert!(jam["window_s"].as_f64().unwrap() > 0.0 && jam["confirm_s"].as_f64().unwrap() > 0.0);
    // Rules whose condition is clear say so, with their own value and threshold.
    let temp = checks.iter().find(|c| c["kind"] == "temperature_drift").expect("temperature rule evaluated");
    assert_eq!((temp["finding"].as_str(), temp["holds"].as_bool()), (Some("clear"), Some(false)), "{temp}");
    assert!(temp["measured"].as_f64().unwrap() < temp["threshold"].as_f64().unwrap());
    assert!(diag["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("torque baseline")));

    // The same over REST, for the AHU too; the plant and unknown nodes get a clear refusal.
    let rest = s.get("/api/nodes/BEL-VNT-005/diagnosis", Some(READ));
    assert_eq!(rest.status, 200);
    assert!(
        rest.json()["checks"].as_array().unwrap().iter().any(|c| c["kind"] == "gear_jam" && c["finding"] == "open")
    );
    let ahu = s.get("/api/nodes/ahu-02/diagnosis", Some(READ));
    assert_eq!(ahu.status, 200, "{}", ahu.body);
    assert_eq!(ahu.json()["node"], "ahu-02");
    assert!(!ahu.json()["checks"].as_array().unwrap().is_empty(), "{}", ahu.body);
    let plant = s.get("/api/nodes/plant-01/diagnosis", Some(READ));
    assert_eq!(plant.status, 422);
    assert!(plant.body.contains("plant"), "{}", plant.body);
    let none = s.get("/api/nodes/BEL-NOPE/diagnosis", Some(READ));
    assert_eq!(none.status, 404);
    assert!(none.body.contains("BEL-NOPE"));
}

#[test]
fn the_tool_round_limit_holds_and_invented_ids_are_flagged() {
    // A model that never stops calling tools.
    let d = Double::start(vec![tool_call("search_nodes", json!({ "query": "VNT" }))]);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &d.config("max_tool_rounds = 2"));
    let r = ask(&s, READ, "Which dampers are there?");
    assert!(r["reply"].as_str().unwrap().contains("Stopped after 2 tool rounds"), "{r}");
    assert_eq!(r["tool_events"].as_array().unwrap().len(), 2);
    assert_eq!(d.requests.lock().unwrap().len(), 3);
    drop(s);

    let d = Double::start(vec![answer("BEL-VNT-003 is fine, but BEL-VNT-099 reports a gear jam.")]);
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, READ, "Any jams?");
    assert_eq!(r["unverified_ids"], json!(["BEL-VNT-099"]));
}

#[test]
fn an_unreachable_endpoint_gets_the_plain_message_and_the_twins_own_overview() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!("[agent]\nbase_url = \"http://127.0.0.1:{closed}/v1\"\nretries = 1\ntimeout_s = 5.0");
    let s = Server::start(dir.path(), &cfg);
    let r = ask(&s, READ, "Give me a live overview.");
    assert_eq!(r["model_available"], false);
    let text = r["reply"].as_str().unwrap();
    assert!(text.contains("unreachable") && text.contains("\"open_faults\""), "{text}");
    assert!(r["tool_events"].as_array().unwrap().is_empty());
}

#[test]
fn the_terminal_chat_asks_the_operator_before_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let fault = jammed_store(dir.path());
    let script = |approve: &str| {
        vec![
            tool_call("node_details", json!({ "node": "BEL-VNT-005" })),
            tool_call("resolve_fault", json!({ "fault": fault, "note": "gear replaced" })),
            answer(&format!("BEL-VNT-005 has a gear jam; I proposed resolving it ({approve}).")),
        ]
    };
    let chat = |s: &Server, input: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
            .args(["agent", "--connect", &s.base, "--token", WRITE])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Declined: nothing changes.
    let d = Double::start(script("declined"));
    let s = Server::start(dir.path(), &d.config(""));
    let text = chat(&s, "Why is BEL-VNT-005 jammed? Resolve it.\nn\n\n");
    assert!(text.contains("[tool] node_details") && text.contains("[tool] resolve_fault"), "{text}");
    assert!(text.contains("proposed change A-") && text.contains("approve? [y/N]"), "{text}");
    assert!(s.get("/api/faults", Some(READ)).json().as_array().unwrap().iter().any(|f| f["id"] == fault.as_str()));
    drop(s);
    // Approved: carried out.
    let d = Double::start(script("approved"));
    let s = Server::start(dir.path(), &d.config(""));
    let text = chat(&s, "Resolve it.\ny\n\n");
    assert!(text.contains("done:") && text.contains("gear replaced"), "{text}");
}

#[test]
fn a_simulated_floor_takes_an_approved_injection() {
    let d = Double::start(vec![
        tool_call("inject_fault", json!({ "node": "BEL-VNT-002", "kind": "stiction", "severity": 0.6 })),
        answer("I proposed a 0.6 stiction on BEL-VNT-002."),
        tool_call("clear_fault", json!({ "node": "BEL-VNT-002" })),
        answer("I proposed repairing BEL-VNT-002."),
    ]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["agent", "--facility", crate::root().join("twins/datacenter.toml").to_str().unwrap()])
        .env("TWINFAULT_AGENT_BASE_URL", format!("http://127.0.0.1:{}/v1", d.port))
        .env("TWINFAULT_AGENT_MODEL", "double")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        b"Inject a 0.6 stiction into BEL-VNT-002\ny\nNow repair it\ny\n\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("[tool] inject_fault") && text.contains("-> pending"), "{text}");
    assert!(text.contains("done:") && text.contains("\"kind\":\"stiction\""), "{text}");
    // And the repair, approved the same way, ends the injection.
    assert!(text.contains("[tool] clear_fault") && text.contains("\"ended\":[\""), "{text}");
}

#[test]
fn agent_eval_scores_answers_and_counts_unrequested_changes() {
    // The twin's own answer: when the jam was found.
    let run = crate::run(&crate::load("datacenter_gear_jam.toml"), 1, None);
    let jam = run.report.detections.iter().find(|d| d.kind.as_str() == "gear_jam").expect("the jam is found");
    let reply = format!("BEL-VNT-003 has a gear_jam; it opened at {:.1} s.", jam.opened_at_s);
    // A model that first tries to change something nobody asked to change, then always gives
    // the same answer.
    // It also reads the jammed device first: the evaluation answers with the server's own tools.
    let d = Double::start(vec![
        tool_call("node_details", json!({ "node": "BEL-VNT-003" })),
        tool_call("resolve_fault", json!({ "fault": "F-x", "note": "n" })),
        answer(&reply),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out_json = dir.path().join("eval.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["agent-eval", "scenarios/datacenter_gear_jam.toml", "--model", "double", "--json"])
        .arg(&out_json)
        .args(["--endpoint", &format!("http://127.0.0.1:{}/v1", d.port)])
        .current_dir(crate::root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let e: Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    // Which fault and when: right; the recommended action: not in the answer.
    assert_eq!(e["by_kind"]["which_fault"], json!([1, 1]), "{text}");
    assert_eq!(e["by_kind"]["when_opened"], json!([1, 1]), "{text}");
    assert_eq!(e["by_kind"]["recommended_action"], json!([0, 1]), "{text}");
    assert_eq!(e["unrequested_changes"], 1);
    assert!(text.contains("change(s) proposed unasked"), "{text}");
    // The tool result the model saw is the server's node view, with the fault's server id.
    let requests = d.requests.lock().unwrap();
    let seen = requests[1]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    let v: Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["kind"].as_str(), v["status"].as_str()),
        (Some("BEL-VNT-003"), Some("actuator"), Some("critical")),
        "{seen}"
    );
    assert!(v["parent"].is_string() && v["role"].is_string(), "{seen}");
    let id = v["open_faults"][0]["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("F-BEL-VNT-003-gear_jam-"), "{seen}");
}
