//! The MQTT subscription against a real Mosquitto with its stock limits (1,000 queued messages
//! per client, 20 in flight for MQTT 3 clients): the same validation as HTTP, and nothing the
//! broker acknowledged to a publisher is lost to a burst, a `kill -9` or an oversized message.

use crate::server::{READ, Server, free_port, now_ms, seed_sample, wait_for};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real Mosquitto broker on a free loopback port (Debian package `mosquitto`; `.ci/run`
/// installs it), with the stock configuration apart from the listener.
struct Broker {
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n")).unwrap();
        let child = Command::new("mosquitto")
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is not installed: apt-get install mosquitto (.ci/run does this)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child, port }
    }

    /// Publishes messages at QoS 1 as client `id` and waits until the broker has acknowledged
    /// every one.
    fn publish(&self, id: &str, messages: &[(String, String)]) {
        use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
        let mut opts = MqttOptions::new(id, "127.0.0.1", self.port);
        opts.set_inflight(200);
        opts.set_max_packet_size(32 << 20, 32 << 20);
        let (client, mut connection) = Client::new(opts, 256);
        let owned: Vec<(String, String)> = messages.to_vec();
        let publisher = std::thread::spawn(move || {
            for (topic, body) in owned {
                client.publish(topic, QoS::AtLeastOnce, false, body.into_bytes()).unwrap();
            }
            client
        });
        let mut acked = 0;
        for ev in connection.iter() {
            if let Ok(Event::Incoming(Packet::PubAck(_))) = ev {
                acked += 1;
                if acked == messages.len() {
                    break;
                }
            }
            ev.expect("broker connection");
        }
        let client = publisher.join().unwrap();
        let _ = client.disconnect();
    }
}

/// A broker and a server subscribed to `site/+/telemetry` on it (publish only once the
/// subscription is in place: earlier messages are not retained).
fn subscribed() -> (tempfile::TempDir, Broker, Server) {
    subscribed_with("")
}

/// As [`subscribed`], with `extra` in the server's configuration.
fn subscribed_with(extra: &str) -> (tempfile::TempDir, Broker, Server) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let mqtt = format!("{extra}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\ntopic = \"site/+/telemetry\"", broker.port);
    let s = Server::start(dir.path(), &mqtt);
    assert!(wait_for(15, || metric(&s, "twinfault_mqtt_subscribed") == 1), "never subscribed");
    (dir, broker, s)
}

fn metric(s: &Server, name: &str) -> u64 {
    let m = s.get("/metrics", None).body;
    m.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// Every stored point of a node's position from `from` on: (time, value).
fn stored(s: &Server, node: &str, from: i64) -> Vec<(i64, f64)> {
    s.history(node, from, 10_000)
}

/// The eight zone dampers of the reference floor (the first actuators of its facility file).
fn nodes() -> Vec<String> {
    let f = twinfault::load::facility(&crate::root().join("twins/datacenter.toml"), None).unwrap();
    f.actuators.iter().take(8).map(|a| a.id.clone()).collect()
}

/// One sample as a gateway sends it (no parent named: the nodes are under two AHUs).
fn sample(node: &str, t_ms: i64, position: f64) -> String {
    format!(
        r#"{{"nodeId":"{node}","timestamp":{t_ms},"telemetry":{{"position_percent":{position},"setpoint_position_percent":40,"torque":0.01,"temperature":27.1,"power_w":0,"rotation_direction":0}}}}"#
    )
}

/// `n` single-sample messages over the eight zone dampers, 10 ms apart per node, ending now;
/// the position encodes the message's number.
fn burst(n: usize) -> (i64, Vec<(String, String)>) {
    let nodes = nodes();
    let per_node = n.div_ceil(nodes.len()) as i64;
    let t0 = now_ms() - per_node * 10 - 1_000;
    let msgs = (0..n)
        .map(|k| {
            let node = &nodes[k % nodes.len()];
            let t = t0 + (k / nodes.len()) as i64 * 10;
            ("site/floor1/telemetry".to_string(), sample(node, t, (k % 1000) as f64 / 10.0))
        })
        .collect();
    (t0, msgs)
}

/// Each node has each of its burst's samples exactly once, with the value sent.
fn assert_burst_stored(s: &Server, t0: i64, n: usize) {
    let mut total = 0;
    let nodes = nodes();
    for (i, node) in nodes.iter().enumerate() {
        let points = stored(s, node, t0);
        let want: Vec<(i64, f64)> = (i..n)
            .step_by(nodes.len())
            .map(|k| (t0 + (k / nodes.len()) as i64 * 10, ((k % 1000) as f64 / 10.0)))
            .collect();
        assert_eq!(points.len(), want.len(), "{node}: {} stored of {} published", points.len(), want.len());
        for (p, w) in points.iter().zip(&want) {
            assert!(p.0 == w.0 && (p.1 - w.1).abs() < 1e-3, "{node}: stored {p:?}, published {w:?}");
        }
        total += points.len();
    }
    assert_eq!(total, n);
}

#[test]
fn mqtt_messages_go_through_the_same_validation_into_the_twins() {
    let (_dir, broker, s) = subscribed();
    let t0 = now_ms() - 5_000;
    let mut msgs: Vec<(String, String)> = (0..3)
        .map(|k| ("site/floor1/telemetry".to_string(), seed_sample("BEL-VNT-004", t0 + k * 100, 41.0 + k as f64)))
        .collect();
    msgs.push(("site/floor1/telemetry".into(), "{broken".into()));
    msgs.push((
        "site/floor1/telemetry".into(),
        seed_sample("BEL-VNT-004", t0, 40.0).replace("\"torque\":0.01", "\"torque\":\"x\""),
    ));
    msgs.push(("other/topic".into(), seed_sample("BEL-VNT-004", t0 + 500, 49.0)));
    broker.publish("test-pub", &msgs);
    assert!(wait_for(10, || stored(&s, "BEL-VNT-004", t0).len() == 3), "the three valid messages did not arrive");
    let m = s.get("/metrics", None).body;
    assert!(m.contains("twinfault_rejected_samples_total{reason=\"mqtt_malformed\"} 1"), "{m}");
    assert!(m.contains("twinfault_rejected_samples_total{reason=\"mqtt_invalid\"} 1"), "{m}");
    // The message on another topic was not subscribed to.
    assert!(stored(&s, "BEL-VNT-004", t0).iter().all(|p| p.1 != 49.0));
}

/// A 20,000-message QoS 1 burst, faster than the server stores it, through a stock broker
/// (which drops what exceeds 1,000 queued messages for a client): every message is stored.
#[test]
fn a_20000_message_burst_is_stored_whole() {
    let (_dir, broker, s) = subscribed();
    let n = 20_000;
    let (t0, msgs) = burst(n);
    broker.publish("test-burst", &msgs);
    assert!(
        wait_for(120, || metric(&s, "twinfault_ingested_samples_total") >= n as u64),
        "stored {} of {n}: {}",
        metric(&s, "twinfault_ingested_samples_total"),
        s.get("/metrics", None).body
    );
    assert_burst_stored(&s, t0, n);
    assert_eq!(metric(&s, "twinfault_mqtt_connections_total"), 1, "the connection was lost on the way");
}

/// `kill -9` while the server holds a burst the broker has acknowledged, part of it stored: after
/// the restart every message is there, once.
#[test]
fn kill_9_in_a_qos1_burst_loses_no_message_the_broker_acknowledged() {
    let (_dir, broker, s) = subscribed();
    let n = 20_000;
    let (t0, msgs) = burst(n);
    // The server is stopped while the broker takes the whole burst (and acknowledges it to the
    // publisher), then goes on and is killed once it has stored part of it.
    s.signal("STOP");
    broker.publish("test-burst", &msgs);
    s.signal("CONT");
    // Polled closely: the kill must come while the burst is being stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let stored_now = metric(&s, "twinfault_ingested_samples_total");
        if stored_now > 0 {
            break stored_now;
        }
        assert!(Instant::now() < deadline, "nothing stored");
        std::thread::sleep(Duration::from_millis(2));
    };
    let s = s.kill_and_restart();
    eprintln!("killed with {at_kill} of {n} stored");
    assert!(at_kill < n as u64, "the burst was stored whole before the kill ({at_kill}): nothing was tested");
    assert!(
        wait_for(120, || metric(&s, "twinfault_ingested_samples_total") + at_kill >= n as u64),
        "after the restart: {} more, {at_kill} before the kill, of {n}",
        metric(&s, "twinfault_ingested_samples_total")
    );
    // Some messages stored before the kill were not yet acknowledged and come again; the store
    // keeps one copy. Wait for the broker to have nothing left for us.
    assert!(
        wait_for(60, || {
            let before = metric(&s, "twinfault_ingested_samples_total");
            std::thread::sleep(Duration::from_millis(500));
            metric(&s, "twinfault_ingested_samples_total") == before
        }),
        "redelivery did not settle"
    );
    assert_burst_stored(&s, t0, n);
}

/// A 9 MB message (over `max_body_bytes`, 8 MiB) is taken in, counted and acknowledged; a 20 MB
/// one (over twice that, the MQTT 5 Maximum Packet Size the server asks for) is dropped by the
/// broker rather than sent. Neither costs the connection, and the next message, from another
/// publisher, is stored.
#[test]
fn an_oversized_message_does_not_cost_the_next_one() {
    let (_dir, broker, s) = subscribed();
    let t0 = now_ms() - 2_000;
    let one = sample("BEL-VNT-003", t0, 10.0);
    let big = |bytes: usize| format!("[{}]", vec![one.as_str(); bytes / one.len() + 1].join(","));
    broker.publish("test-big", &[("site/floor1/telemetry".into(), big(9_000_000))]);
    broker.publish("test-huge", &[("site/floor1/telemetry".into(), big(20_000_000))]);
    broker.publish("test-small", &[("site/floor1/telemetry".into(), sample("BEL-VNT-003", t0 + 100, 55.0))]);
    assert!(
        wait_for(20, || stored(&s, "BEL-VNT-003", t0) == vec![(t0 + 100, 55.0)]),
        "{:?}",
        stored(&s, "BEL-VNT-003", t0)
    );
    assert_eq!(metric(&s, "twinfault_rejected_samples_total{reason=\"mqtt_oversized\"}"), 1);
    assert_eq!(metric(&s, "twinfault_mqtt_connections_total"), 1, "an oversized message cost the connection");
}

/// MQTT goes through the same admission as HTTP: with `auto_create`, a message for a new node
/// under a known AHU creates it; one refused for a bad value creates nothing.
#[test]
fn mqtt_auto_creates_nodes_only_for_admitted_messages() {
    let (_dir, broker, s) = subscribed_with("auto_create = true");
    let t0 = now_ms() - 3_000;
    let new = |id: &str, t: i64| seed_sample(id, t, 40.0);
    let bad = new("BEL-MQTT-REFUSED", t0).replace("\"torque\":0.01", "\"torque\":\"x\"");
    broker.publish(
        "test-auto",
        &[("site/floor1/telemetry".into(), bad), ("site/floor1/telemetry".into(), new("BEL-MQTT-NEW", t0))],
    );
    assert!(wait_for(10, || stored(&s, "BEL-MQTT-NEW", t0).len() == 1), "the new node's sample did not arrive");
    assert_eq!(s.get("/api/nodes/BEL-MQTT-NEW", Some(READ)).json()["parent"], "ahu-01");
    assert_eq!(s.get("/api/nodes/BEL-MQTT-REFUSED", Some(READ)).status, 404);
    assert_eq!(metric(&s, "twinfault_rejected_samples_total{reason=\"mqtt_invalid\"}"), 1);
}
