//! The visualizer's live mode against a real `twinfault serve`: layout, statuses, ranked issues,
//! charts and fault history of the selected device, resolve and inject round trips, and clear
//! errors for a wrong token or no server.

mod common;

use common::{READ, WRITE, ingest_jam, serve, wait_for};
use std::time::Duration;
use twinfault_core::detect::Change;
use twinfault_core::twin::Mode;
use twinfault_core::types::{FaultKind, Status};
use twinfault_viz::state::{InjectForm, Sim};

const POLL: Duration = Duration::from_millis(100);

#[test]
fn live_mode_follows_the_server_and_resolves_through_it() {
    let s = serve();
    // What cannot work says so in one line.
    let refused = Sim::connect(&s.base, Some("not-a-valid-token-at-all".into()), POLL).err().unwrap();
    assert!(refused.contains("/api/facility") && refused.contains("401"), "{refused}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = Sim::connect(&format!("http://127.0.0.1:{closed}"), None, POLL).err().unwrap();
    assert!(down.contains("cannot reach"), "{down}");
    assert!(Sim::connect("ftp://x", None, POLL).err().unwrap().contains("http://"));

    let mut sim = Sim::connect(&s.base, Some(WRITE.into()), POLL).expect("connects");
    assert!(sim.is_live());
    // The server's layout is the twin file's, with each device's mode as the server runs it.
    let mut want = twinfault_load::facility(&common::root().join("twins/datacenter.toml"), None).unwrap().layout();
    for a in &mut want.actuators {
        a.mode = if a.id == "BEL-VNT-001" { Mode::Simulate } else { Mode::Ingest };
    }
    assert_eq!(*sim.layout, want);

    ingest_jam(&s.base, "BEL-VNT-005");
    sim.select("BEL-VNT-005");
    let jam =
        |sim: &Sim| sim.issues().into_iter().find(|i| i.target() == "BEL-VNT-005" && i.kind == FaultKind::GearJam);
    // The finding is listed at once; the statuses follow with the server's next epoch.
    assert!(
        wait_for(20, || {
            sim.poll();
            jam(&sim).is_some()
                && sim.status("BEL-VNT-005") == Status::Critical
                && sim.status("ahu-02") == Status::Critical
        }),
        "the jam never reached the issues panel with its statuses: {:?}",
        (jam(&sim).is_some(), sim.status("BEL-VNT-005"), sim.status("ahu-02"))
    );
    assert_eq!(sim.status("BEL-VNT-005"), Status::Critical);
    assert_eq!(sim.status("ahu-02"), Status::Critical, "the AHU rolls up its device");
    let seen_critical_s = sim.now().as_secs_f64();
    // Server time is wall-clock time, not a run clock.
    assert!((sim.now().0 as i64 - common::now_ms()).abs() < 60_000);
    let issue = jam(&sim).unwrap();
    let id = issue.id.clone().expect("live issues carry the server's fault id");
    assert!(sim.time_label(issue.opened_at).contains('T'), "{}", sim.time_label(issue.opened_at));
    // The selected device's charts fill from the stored history, the jam's shape visible in them.
    assert!(
        wait_for(20, || {
            sim.poll();
            sim.chart.len() > 100 && sim.fault_history.iter().any(|h| h.1 == "BEL-VNT-005" && h.3 == Change::Opened)
        }),
        "chart {} points, fault history {:?}",
        sim.chart.len(),
        sim.fault_history
    );
    let setpoint_max = sim.chart.iter().map(|p| p.setpoint_pct).fold(f64::MIN, f64::max);
    let position_max = sim.chart.iter().map(|p| p.position_pct).fold(f64::MIN, f64::max);
    assert!(setpoint_max > 50.0 && position_max < 2.0, "setpoint up to {setpoint_max}, position up to {position_max}");

    // Resolve: a note is required; the server answers who resolved it; the issue leaves the panel.
    assert!(sim.resolve(&id, "  ").unwrap_err().contains("note"));
    sim.resolve(&id, "gear replaced").unwrap();
    assert!(
        wait_for(20, || {
            sim.poll();
            sim.messages.iter().any(|m| m.contains(&format!("resolved {id} by gateway")))
                && !sim.issues().iter().any(|i| i.id.as_deref() == Some(id.as_str()))
        }),
        "messages {:?}",
        sim.messages
    );
    // The time slider, live: back through what this window has watched since it connected (the
    // server keeps no past statuses): the jam listed and its device critical, then now again.
    let (from, to) = sim.history_range().expect("polled");
    assert!(from < 0.0 && to == 0.0, "{from}..{to}");
    sim.scrub_to(Some(seen_critical_s - sim.chart_origin_s()));
    assert!(sim.shown_at().is_some());
    assert!(jam(&sim).is_some(), "the jam is not shown as it was: {:?}", sim.issues());
    assert_eq!((sim.status("BEL-VNT-005"), sim.status("ahu-02")), (Status::Critical, Status::Critical));
    sim.scrub_to(None);
    assert!(jam(&sim).is_none() && sim.shown_at().is_none());

    // Inject: the form is checked here by the core's rule, with the server's modes (an ingesting
    // node has no model to inject into), then the server carries it out.
    let form = |node: &str| InjectForm { node: node.into(), kind: FaultKind::Stiction, severity: "0.6".into() };
    assert!(sim.inject(&form("ahu-01")).unwrap_err().contains("unknown actuator"));
    assert!(sim.inject(&form("BEL-VNT-002")).unwrap_err().contains("fed by real telemetry"));
    sim.inject(&form("BEL-VNT-001")).unwrap();
    assert!(
        wait_for(20, || {
            sim.poll();
            sim.messages.iter().any(|m| m.starts_with("injected") && m.contains("BEL-VNT-001"))
        }),
        "messages {:?}",
        sim.messages
    );

    // The agent panel: the question goes to the server's agent; with no model configured there
    // the answer says so and gives the twin's own facts (its overview).
    assert!(sim.ask("   ").is_err());
    sim.ask("Give me a live overview and the top faults.").unwrap();
    assert!(
        wait_for(20, || {
            sim.poll();
            sim.agent
                .iter()
                .any(|(who, t)| who == "agent" && t.contains("no model endpoint") && t.contains("open fault(s)"))
        }),
        "agent log {:?}",
        sim.agent
    );
    assert_eq!(sim.agent[0], ("you".to_string(), "Give me a live overview and the top faults.".to_string()));

    // A read token watches but may not change anything.
    let mut reader = Sim::connect(&s.base, Some(READ.into()), POLL).unwrap();
    reader.inject(&form("BEL-VNT-001")).unwrap();
    assert!(
        wait_for(20, || {
            reader.poll();
            reader.messages.iter().any(|m| m.contains("injection refused") && m.contains("403"))
        }),
        "messages {:?}",
        reader.messages
    );
}
