//! MQTT load: publishes N single-sample messages at QoS 1 through a broker and times how long the
//! server takes to store and evaluate them all (read from its /metrics).
//!
//!     cargo run --release --example mqtt_load -- 127.0.0.1:1883 http://127.0.0.1:5000 100000

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};

fn ingested(base: &str) -> u64 {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let Ok(mut r) = agent.get(format!("{base}/metrics")).call() else { return 0 };
    let body = r.body_mut().read_to_string().unwrap_or_default();
    body.lines()
        .find_map(|l| l.strip_prefix("twinfault_ingested_samples_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (broker, base, n) = (&args[1], &args[2], args.get(3).map_or(100_000, |s| s.parse().unwrap()));
    let (host, port) = broker.rsplit_once(':').unwrap();
    let mut opts = MqttOptions::new("twinfault-load", host, port.parse().unwrap());
    opts.set_inflight(100);
    let (client, mut connection) = Client::new(opts, 1000);
    let before = ingested(base);
    let t0 = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64) - 200_000;
    let nodes = [
        "BEL-VNT-001",
        "BEL-VNT-002",
        "BEL-VNT-003",
        "BEL-VNT-004",
        "BEL-VNT-005",
        "BEL-VNT-006",
        "BEL-VNT-007",
        "BEL-VNT-008",
    ];
    let start = Instant::now();
    let publisher = std::thread::spawn(move || {
        for k in 0..n {
            let body = format!(
                r#"{{"nodeId":"{}","timestamp":{},"telemetry":{{"position_percent":40.1,"setpoint_position_percent":40,"torque":0.01,"temperature":27.1,"power_w":0,"rotation_direction":0}}}}"#,
                nodes[k as usize % nodes.len()],
                t0 + k
            );
            client.publish("site/load/telemetry", QoS::AtLeastOnce, false, body).unwrap();
        }
        client
    });
    let mut acked = 0;
    for ev in connection.iter() {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = ev {
            acked += 1;
            if acked == n {
                break;
            }
        }
    }
    let _client = publisher.join().unwrap();
    let published = start.elapsed();
    while ingested(base) < before + n && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = start.elapsed();
    println!(
        "{n} messages: published (broker acks) in {:.2} s = {:.0} msg/s; stored and evaluated by the server in {:.2} s = {:.0} msg/s",
        published.as_secs_f64(),
        n as f64 / published.as_secs_f64(),
        done.as_secs_f64(),
        (ingested(base) - before) as f64 / done.as_secs_f64()
    );
}
