//! Cluster load: publishes telemetry to a cluster's JetStream stream, `PER` samples per message,
//! many publishes in flight, and times (a) how fast the stream stores it and (b) how fast the
//! shards store and evaluate it (the sum of their `/metrics` `twinfault_ingested_samples_total`).
//!
//!     cargo run --release --example cluster_load -- CLUSTER.toml SAMPLES PER SHARD_URL...
//!
//! The cluster file names the NATS servers, the site and the facility; every actuator of the
//! facility gets an equal share of the samples (timestamps a second apart per actuator, starting
//! in the past so the shards' future-time limit is not hit).

use futures_util::StreamExt;
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

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 5, "usage: cluster_load CLUSTER.toml SAMPLES PER SHARD_URL...");
    let cluster = twinfault::serve::cluster::Cluster::load(std::path::Path::new(&args[1]))?;
    let (total, per): (usize, usize) = (args[2].parse()?, args[3].parse()?);
    let shards: Vec<String> = args[4..].to_vec();
    let facility = twinfault::load::facility(&cluster.facility_path, None)?;
    let nodes: Vec<(String, String)> =
        facility.actuators.iter().map(|a| (facility.ahus[a.ahu].id.clone(), a.id.clone())).collect();
    let per_node = total.div_ceil(nodes.len());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    // Every node's samples a second apart, ending now: `per_node` seconds of 1 Hz telemetry.
    let start_ms = now - per_node as i64 * 1000;
    let before: u64 = shards.iter().map(|s| ingested(s)).sum();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let (stored, publish_s) = rt.block_on(async {
        let client = twinfault::serve::cluster::connect(&cluster, "twinfault cluster_load").await?;
        let js = async_nats::jetstream::new(client);
        let t0 = Instant::now();
        // Up to 256 publishes waiting for their acknowledgement at once.
        let mut messages = Vec::new();
        for k in (0..per_node).step_by(per) {
            for (ahu, node) in &nodes {
                let mut body = String::with_capacity(per * 200);
                for j in k..(k + per).min(per_node) {
                    let t = start_ms + j as i64 * 1000;
                    let sp = 20.0 + (j % 60) as f64;
                    body.push_str(&format!(
                        r#"{{"nodeId":"{node}","timestamp":{t},"telemetry":{{"position_percent":{sp},"setpoint_position_percent":{sp},"torque":0.01,"temperature":27.1,"power_w":0.5,"rotation_direction":0}}}}"#
                    ));
                    body.push('\n');
                }
                messages.push((cluster.telemetry_subject(ahu, node), (k + per).min(per_node) - k, body));
            }
        }
        let stored = futures_util::stream::iter(messages)
            .map(|(subject, n, body)| {
                let js = js.clone();
                async move {
                    js.publish(subject, body.into_bytes().into()).await?.await?;
                    Ok::<usize, async_nats::Error>(n)
                }
            })
            .buffer_unordered(256)
            .fold(Ok(0usize), |acc, r| async move { Ok(acc? + r?) })
            .await
            .map_err(|e: async_nats::Error| anyhow::anyhow!("publishing: {e}"))?;
        anyhow::Ok((stored, t0.elapsed().as_secs_f64()))
    })?;
    let t0 = Instant::now() - Duration::from_secs_f64(publish_s);
    let target = before + stored as u64;
    let mut last = before;
    let mut last_change = Instant::now();
    loop {
        let now: u64 = shards.iter().map(|s| ingested(s)).sum();
        if now >= target {
            break;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        } else if last_change.elapsed() > Duration::from_secs(30) {
            anyhow::bail!("the shards stopped at {} of {stored} samples", now - before);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_s = t0.elapsed().as_secs_f64();
    println!(
        "{stored} samples ({per} per message) to {} actuators: stream stored them at {:.0} samples/s ({publish_s:.2} s); \
         {} shard(s) stored and evaluated them at {:.0} samples/s ({all_s:.2} s from the first publish)",
        nodes.len(),
        stored as f64 / publish_s,
        shards.len(),
        stored as f64 / all_s
    );
    for s in &shards {
        println!("  {s}: {} samples", ingested(s));
    }
    Ok(())
}
