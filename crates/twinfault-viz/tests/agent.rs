//! The operations agent in-process: the server's own chat, tools and approval policy over a
//! scenario the visualizer runs itself, against the scripted model double (a real HTTP server on
//! loopback). The app's thread is played by the test: it steps the run and polls, which answers
//! the agent's diagnoses and takes its replies, as a frame does.

use serde_json::json;
use std::time::{Duration, Instant};
use twinfault::agent::double::{Double, answer, tool_call};
use twinfault_core::types::{FaultKind, Severity};
use twinfault_viz::state::Sim;

fn scenario(name: &str) -> Sim {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios")).join(name);
    let l = twinfault_load::scenario(&path, None).unwrap();
    Sim::new(l.scenario, l.facility)
}

/// Steps until a critical issue is open about `device`.
fn run_until_critical(sim: &mut Sim, device: &str) {
    while !sim.issues().iter().any(|i| i.severity == Severity::Critical && i.target() == device) {
        assert!(!sim.finished(), "the run ended without a critical issue about {device}");
        sim.step();
    }
}

/// Asks, then polls (as frames do) until the reply is in; the reply's text.
fn ask(sim: &mut Sim, question: &str) -> String {
    sim.ask(question).unwrap();
    let start = Instant::now();
    while sim.agent_waiting() > 0 {
        assert!(start.elapsed() < Duration::from_secs(120), "no reply to \"{question}\"");
        sim.poll();
        std::thread::sleep(Duration::from_millis(5));
    }
    let (who, text) = sim.agent.last().unwrap().clone();
    assert_eq!(who, "agent");
    text
}

#[test]
fn asked_in_process_the_agent_grounds_the_model_in_the_run_and_never_answers_empty() {
    // The model says nothing at all, every time.
    let d = Double::start(vec![answer("")]).unwrap();
    let mut sim = scenario("datacenter_stuck_at.toml");
    sim.agent_config = d.agent_config();
    run_until_critical(&mut sim, "BEL-CHW-201");
    let question = "What is wrong with BEL-CHW-201?";
    let reply = ask(&mut sim, question);
    assert!(sim.agent_answers_with().unwrap().contains(&d.base_url()), "{:?}", sim.agent_answers_with());
    // The model was asked, with the run's facts about the device in front of it: the diagnosis
    // came from the run's own twins, through the app's thread.
    let requests = d.requests();
    assert!(!requests.is_empty(), "the model was never asked");
    // (The question names the device; the facts beside it must too.)
    let facts = requests[0]["messages"].to_string().replace(question, "");
    assert!(facts.contains("BEL-CHW-201") && facts.contains("stuck_at"), "{facts}");
    // Empty from the model: the twin's own facts answer, naming the device and what it has.
    assert!(!reply.trim().is_empty());
    assert!(reply.contains("BEL-CHW-201") && reply.contains("stuck"), "{reply}");
}

#[test]
fn a_change_the_agent_proposes_in_process_waits_for_the_panel_then_the_run_takes_it() {
    let d = Double::start(vec![
        tool_call("inject_fault", json!({ "node": "BEL-VNT-002", "kind": "stiction", "severity": 0.6 })),
        answer("I proposed a 0.6 stiction on BEL-VNT-002; approve it to inject."),
        tool_call("clear_fault", json!({ "node": "BEL-VNT-002" })),
        answer("I proposed repairing BEL-VNT-002."),
        tool_call("clear_fault", json!({ "node": "BEL-VNT-002" })),
        answer("I proposed repairing BEL-VNT-002 again."),
    ])
    .unwrap();
    let mut sim = scenario("datacenter_stuck_at.toml");
    sim.agent_config = d.agent_config();
    for _ in 0..120 {
        sim.step();
    }
    ask(&mut sim, "Inject a 0.6 stiction into BEL-VNT-002");
    assert_eq!(sim.pending.len(), 1, "{:?}", sim.agent);
    let (action, what) = sim.pending[0].clone();
    assert!(what.contains("inject_fault") && what.contains("BEL-VNT-002"), "{what}");
    // Proposed is not done: the run goes on without it.
    sim.step();
    assert!(sim.truth.iter().all(|t| t.node != "BEL-VNT-002"), "injected before approval");
    sim.decide(&action, true);
    assert!(sim.pending.is_empty());
    let said = sim.messages.last().unwrap().clone();
    assert!(said.starts_with(&format!("approved {action}")) && said.contains("injected"), "{said}");
    sim.step();
    let t = sim.truth.iter().find(|t| t.node == "BEL-VNT-002").expect("the approved injection is in the run");
    assert_eq!((t.kind, t.severity, t.end_s), (FaultKind::Stiction, 0.6, None));
    let started = t.start_s;
    // The same action cannot be approved twice.
    let said = sim.messages.len();
    sim.decide(&action, true);
    assert_eq!(sim.messages.len(), said + 1, "a second approval said nothing");
    let again = sim.messages.last().unwrap();
    assert!(again.contains(&action) && again.contains("no pending action"), "{again}");
    assert_eq!(sim.truth.iter().filter(|t| t.node == "BEL-VNT-002").count(), 1);

    // A repair rejected changes nothing; approved, the injection ends.
    for _ in 0..30 {
        sim.step();
    }
    ask(&mut sim, "Now repair it");
    let (reject, _) = sim.pending[0].clone();
    sim.decide(&reject, false);
    assert!(sim.messages.last().unwrap().starts_with(&format!("rejected {reject}")), "{:?}", sim.messages);
    sim.step();
    assert_eq!(sim.truth.iter().find(|t| t.node == "BEL-VNT-002").unwrap().end_s, None);
    ask(&mut sim, "Repair BEL-VNT-002 now");
    let (repair, _) = sim.pending[0].clone();
    sim.decide(&repair, true);
    let said = sim.messages.last().unwrap().clone();
    assert!(said.contains("repaired BEL-VNT-002: ended"), "{said}");
    sim.step();
    let ended = sim.truth.iter().find(|t| t.node == "BEL-VNT-002").unwrap().end_s;
    assert!(ended.is_some_and(|e| e > started), "{ended:?}");
}

#[test]
fn an_operator_resolves_an_in_process_fault_with_a_note() {
    let mut sim = scenario("datacenter_stuck_at.toml");
    run_until_critical(&mut sim, "BEL-CHW-201");
    let issue = sim.issues().into_iter().find(|i| i.target() == "BEL-CHW-201").unwrap();
    let id = issue.id.clone().unwrap();
    assert!(sim.resolve(&id, "  ").unwrap_err().contains("note"));
    assert_eq!(sim.resolve(&id, "linkage refitted").unwrap(), format!("resolved {id} (linkage refitted)"));
    sim.step();
    assert!(sim.issues().iter().all(|i| i.id.as_deref() != Some(id.as_str())), "{id} still listed");
    assert!(sim.resolve(&id, "again").unwrap_err().contains("no open fault"));
}
