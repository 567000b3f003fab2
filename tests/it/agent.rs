//! The operations agent against a real local HTTP server that speaks the OpenAI chat-completions
//! protocol with tool calls, scripted per test (no network), behind a real `twinfault serve`.

use crate::server::{READ, Server, WRITE};
use serde_json::{Value, json};
use twinfault::agent::double::{Double, answer, tool_call};

fn double(script: Vec<Value>) -> Double {
    Double::start(script).expect("the model double starts on loopback")
}

/// The tool calls the model made (after the ones the agent made to ground it).
fn model_events(r: &Value) -> Vec<Value> {
    r["tool_events"].as_array().unwrap().iter().filter(|e| e["by"] == "model").cloned().collect()
}

fn ask(s: &Server, token: &str, question: &str) -> Value {
    let body = json!({ "messages": [{ "role": "user", "content": question }] });
    let r = s.post("/api/agent/chat", Some(token), &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn an_overview_question_is_grounded_in_the_overview_before_the_model_speaks() {
    let d = double(vec![answer("All 14 actuators are healthy.")]);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, READ, "Give me a live overview and the top faults.");
    assert_eq!(r["model_available"], true);
    assert_eq!(r["reply"], "All 14 actuators are healthy.");
    assert_eq!((r["kind"].as_str(), r["answered_by"].as_str()), (Some("overview"), Some("model")), "{r}");
    // The agent called the overview itself, before the model spoke.
    assert_eq!(r["tool_events"][0]["tool"], "system_overview");
    assert_eq!(
        (r["tool_events"][0]["outcome"].as_str(), r["tool_events"][0]["by"].as_str()),
        (Some("executed"), Some("twin"))
    );
    let reqs = d.requests();
    assert_eq!(reqs.len(), 1);
    // The model was offered the tools with schemas from the Rust types, told to answer in text
    // (the facts answer the question), and had the tool's result in its first request.
    let tools: Vec<&str> =
        reqs[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"resolve_fault") && tools.contains(&"recent_changes"), "{tools:?}");
    assert_eq!(reqs[0]["tool_choice"], "none");
    let question = reqs[0]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(
        question.contains("system_overview({}) = {") && question.contains("\"facility\":\"datacenter\""),
        "{question}"
    );
    assert!(question.contains("Question: Give me a live overview"), "{question}");
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
    let d = double(vec![
        tool_call("explain_fault", json!({ "fault": fault })),
        tool_call("resolve_fault", json!({ "fault": fault, "note": "validated on site" })),
        answer("I proposed resolving it; approve the pending action to carry it out."),
    ]);
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, WRITE, &format!("Why is BEL-VNT-005 jammed? Resolve fault {fault} with note 'validated on site'"));
    // The explanation traces the fault up the tree: the device (with the fault open), its AHU, the
    // plant, each with its status and open faults.
    let events = model_events(&r);
    let explain = &events[0];
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
    assert_eq!(events[1]["outcome"], "pending");
    assert_eq!(r["kind"], "change");
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
    let d = double(vec![
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
    let ev = &model_events(&r)[0];
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
fn the_tool_round_limit_holds_and_invented_ids_never_reach_the_operator() {
    // A model that never stops calling tools, and never answers.
    let d = double(vec![tool_call("search_nodes", json!({ "query": "VNT" }))]);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &d.config("max_tool_rounds = 2"));
    let r = ask(&s, READ, "Which dampers are there?");
    assert_eq!(model_events(&r).len(), 2, "{r}");
    // Two tool rounds, then text only; its empty answer is sent back once, then the twin answers.
    assert_eq!(d.requests().len(), 4);
    assert_eq!(d.requests()[2]["tool_choice"], "none");
    assert_eq!(r["answered_by"], "twin");
    assert!(r["check"].as_str().unwrap().contains("empty"), "{r}");
    assert!(r["reply"].as_str().unwrap().contains("datacenter: 0 open fault(s)"), "{r}");
    drop(s);

    // A model that invents a device: its answer is checked, sent back, and replaced.
    let d = double(vec![answer("BEL-VNT-003 is fine, but BEL-VNT-099 reports a gear jam.")]);
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, READ, "Any jams?");
    let retry = d.requests()[1]["messages"].as_array().unwrap().last().unwrap().clone();
    assert!(retry["content"].as_str().unwrap().contains("BEL-VNT-099"), "{retry}");
    assert_eq!(r["answered_by"], "twin");
    // The answer is the twin's; only its note says what the model made up.
    let (answer, note) = r["reply"].as_str().unwrap().split_once("\n(From the twin's own facts").unwrap();
    assert!(!answer.contains("BEL-VNT-099") && note.contains("BEL-VNT-099"), "{r}");
    assert_eq!(r["unverified_ids"], json!([]));
    assert!(r["check"].as_str().unwrap().contains("BEL-VNT-099"), "{r}");
}

#[test]
fn a_grounded_question_is_checked_retried_and_answered_from_the_twin_when_the_model_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fault = jammed_store(dir.path());
    // Right at once: the model had the device's facts in its first request and said them.
    let d = double(vec![answer(&format!("BEL-VNT-005 has a gear jam ({fault})."))]);
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, READ, "Which fault does BEL-VNT-005 have?");
    assert_eq!((r["kind"].as_str(), r["answered_by"].as_str()), (Some("which_fault"), Some("model")), "{r}");
    let first = d.requests()[0].clone();
    assert_eq!(first["tool_choice"], "none");
    let grounded: Vec<&str> =
        r["tool_events"].as_array().unwrap().iter().map(|e| e["tool"].as_str().unwrap()).collect();
    assert_eq!(grounded, ["system_overview", "node_details"], "{r}");
    let facts = first["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    let details = facts.lines().find(|l| l.starts_with("node_details(")).unwrap();
    assert!(details.contains(&fault) && details.contains("\"id\":\"BEL-VNT-005\""), "{details}");
    drop(s);

    // Wrong, then right: the reason goes back to the model once.
    let d = double(vec![answer("BEL-VNT-005 has stiction."), answer("BEL-VNT-005 has a gear_jam.")]);
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, READ, "Which fault does BEL-VNT-005 have?");
    assert_eq!((r["answered_by"].as_str(), r["reply"].as_str()), (Some("model"), Some("BEL-VNT-005 has a gear_jam.")));
    let reqs = d.requests();
    assert_eq!(reqs.len(), 2);
    let back = reqs[1]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(back.contains("does not name BEL-VNT-005's open fault (gear_jam)"), "{back}");
    drop(s);

    // Empty twice (a small model's habit): never an empty reply; the twin's facts, said so.
    let d = double(vec![answer("")]);
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, READ, "When did the gear_jam on BEL-VNT-005 open?");
    assert_eq!((r["kind"].as_str(), r["answered_by"].as_str()), (Some("since_when"), Some("twin")), "{r}");
    let text = r["reply"].as_str().unwrap();
    let opened = s.get("/api/faults", Some(READ)).json()[0]["opened_at"].as_str().unwrap().to_string();
    assert!(text.contains(&opened) && text.contains("From the twin's own facts"), "{text}");
    assert!(r["check"].as_str().unwrap().contains("empty"));
    assert_eq!(d.requests().len(), 2);
    drop(s);

    // A model that tells the operator to call a tool, for what to do: refused; the twin's
    // recommended action instead.
    let d = double(vec![answer("Call node_details on BEL-VNT-005 to find out.")]);
    let s = Server::start(dir.path(), &d.config(""));
    let r = ask(&s, READ, "What should I do about the gear_jam on BEL-VNT-005?");
    assert_eq!((r["kind"].as_str(), r["answered_by"].as_str()), (Some("recommended_action"), Some("twin")), "{r}");
    let action = s.get("/api/faults", Some(READ)).json()[0]["recommended_action"].as_str().unwrap().to_string();
    assert!(r["reply"].as_str().unwrap().contains(&action), "{r}");
    assert!(r["check"].as_str().unwrap().contains("call a tool"), "{r}");
    drop(s);

    // Out of time (a per-question limit below one request): the twin answers, no model asked.
    let d = double(vec![answer("BEL-VNT-005 has a gear_jam.")]);
    let s = Server::start(dir.path(), &d.config("time_limit_s = 0.2"));
    let r = ask(&s, READ, "Which fault does BEL-VNT-005 have?");
    assert_eq!(r["answered_by"], "twin");
    assert!(r["check"].as_str().unwrap().contains("time limit (0.2 s)"), "{r}");
    assert!(r["reply"].as_str().unwrap().contains("gear_jam"), "{r}");
    assert!(d.requests().is_empty());
}

#[test]
fn an_unreachable_endpoint_gets_the_plain_message_and_the_twins_own_facts() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!("[agent]\nbase_url = \"http://127.0.0.1:{closed}/v1\"\nretries = 1\ntimeout_s = 5.0");
    let s = Server::start(dir.path(), &cfg);
    let r = ask(&s, READ, "Give me a live overview.");
    assert_eq!(r["model_available"], false);
    let text = r["reply"].as_str().unwrap();
    assert!(text.contains("unreachable") && text.contains("datacenter: 0 open fault(s)"), "{text}");
    assert_eq!(r["answered_by"], "twin");
    assert!(model_events(&r).is_empty());
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
    let d = double(script("declined"));
    let s = Server::start(dir.path(), &d.config(""));
    let text = chat(&s, "Why is BEL-VNT-005 jammed? Resolve it.\nn\n\n");
    assert!(text.contains("[tool] node_details") && text.contains("[tool] resolve_fault"), "{text}");
    // The twin's own calls, made before the model spoke, are marked apart.
    assert!(text.contains("[twin] node_details {\"node\":\"BEL-VNT-005\"}"), "{text}");
    assert!(text.contains("proposed change A-") && text.contains("approve? [y/N]"), "{text}");
    assert!(s.get("/api/faults", Some(READ)).json().as_array().unwrap().iter().any(|f| f["id"] == fault.as_str()));
    drop(s);
    // Approved: carried out.
    let d = double(script("approved"));
    let s = Server::start(dir.path(), &d.config(""));
    let text = chat(&s, "Resolve it.\ny\n\n");
    assert!(text.contains("done:") && text.contains("gear replaced"), "{text}");
}

#[test]
fn a_simulated_floor_takes_an_approved_injection() {
    let d = double(vec![
        tool_call("inject_fault", json!({ "node": "BEL-VNT-002", "kind": "stiction", "severity": 0.6 })),
        answer("I proposed a 0.6 stiction on BEL-VNT-002."),
        tool_call("clear_fault", json!({ "node": "BEL-VNT-002" })),
        answer("I proposed repairing BEL-VNT-002."),
    ]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["agent", "--facility", crate::root().join("twins/datacenter.toml").to_str().unwrap()])
        .env("TWINFAULT_AGENT_BASE_URL", d.base_url())
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
fn agent_eval_asks_through_the_servers_tools_and_scores_per_kind() {
    // The twin's own answer: when the jam was found.
    let run = crate::run(&crate::load("datacenter_gear_jam.toml"), 1, None);
    let jam = run.report.detections.iter().find(|d| d.kind.as_str() == "gear_jam").expect("the jam is found");
    let reply = format!("BEL-VNT-003 has a gear_jam; it opened at {:.1} s.", jam.opened_at_s);
    // A model that first tries to change something nobody asked to change (it was offered no
    // tools: the facts answer every question here), then always gives the same answer.
    let d = double(vec![tool_call("resolve_fault", json!({ "fault": "F-x", "note": "n" })), answer(&reply)]);
    let dir = tempfile::tempdir().unwrap();
    let out_json = dir.path().join("eval.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twinfault"))
        .args(["agent-eval", "scenarios/datacenter_gear_jam.toml", "--model", "double", "--json"])
        .arg(&out_json)
        .args(["--endpoint", &d.base_url()])
        .current_dir(crate::root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let e: Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    let kind = |k: &str| {
        let v = &e["by_kind"][k];
        (v["right"].as_u64().unwrap(), v["by_model"].as_u64().unwrap(), v["asked"].as_u64().unwrap())
    };
    // Which fault and when: the model, right. What to do: its answer fails the check, so the
    // twin's recommended action answers (right, not by the model). Fixed? It is not: the
    // model's "has a gear_jam" says nothing of that, so the twin says it is still open.
    assert_eq!(kind("which_fault"), (1, 1, 1), "{text}");
    assert_eq!(kind("since_when"), (1, 1, 1), "{text}");
    assert_eq!(kind("recommended_action"), (1, 0, 1), "{text}");
    assert_eq!(kind("fixed_after_repair"), (1, 0, 1), "{text}");
    // The jammed damper is behind its AHU's alarm, and it changed within the last hour.
    assert_eq!(kind("root_cause"), (1, 1, 1), "{text}");
    assert_eq!(kind("what_changed"), (1, 1, 1), "{text}");
    assert_eq!(e["unrequested_changes"], 0);
    assert_eq!(e["model"], "double");
    assert_eq!((e["correct"].as_u64(), e["correct_by_model"].as_u64()), (Some(6), Some(4)), "{text}");
    assert!(text.contains("by model") && text.contains("6 of 6 right"), "{text}");
    let fixed =
        e["results"].as_array().unwrap().iter().find(|r| r["question"]["kind"] == "fixed_after_repair").unwrap();
    assert!(fixed["reply"].as_str().unwrap().contains("still open"), "{fixed}");
    assert_eq!(fixed["answered_by"], "twin");
    // What the model saw first is the server's node view, from the server's tool, with the
    // fault's server id: the agent called it before the model spoke.
    let requests = d.requests();
    let facts = requests[0]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    let line = facts.lines().find(|l| l.starts_with("node_details(")).expect("the device's details");
    let v: Value = serde_json::from_str(line.split_once(" = ").unwrap().1).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["kind"].as_str(), v["status"].as_str()),
        (Some("BEL-VNT-003"), Some("actuator"), Some("critical")),
        "{v}"
    );
    assert!(v["parent"].is_string() && v["role"].is_string(), "{v}");
    let id = v["open_faults"][0]["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("F-BEL-VNT-003-gear_jam-"), "{v}");
}
