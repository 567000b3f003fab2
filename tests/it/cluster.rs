//! A facility served by three shards and a plant role over a real 3-node NATS JetStream cluster
//! (Debian's `nats-server`; `.ci/run` installs it), every part a process on loopback.

use crate::root;
use crate::server::{READ, Server, WRITE, free_port, jam_ndjson, now_ms, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The NATS servers' one login (every role's, the gateways' and the MQTT gateway's).
const NATS_USER: &str = "twinfault";
const NATS_PASSWORD: &str = "nats-test-password-0123";

/// Three `nats-server`s with JetStream in one cluster; the first also speaks MQTT.
struct Nats {
    children: Vec<Option<Child>>,
    ports: Vec<u16>,
    mqtt: u16,
}

impl Drop for Nats {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Nats {
    fn start(dir: &Path) -> Nats {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mqtt = free_port();
        let route_list: Vec<String> = routes.iter().map(|p| format!("\"nats://127.0.0.1:{p}\"")).collect();
        let mut children = Vec::new();
        for i in 0..3 {
            let store = dir.join(format!("js{i}"));
            let mut conf = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\n\
                 authorization {{ user: \"{NATS_USER}\", password: \"{NATS_PASSWORD}\" }}\n\
                 cluster {{ name: tf, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                ports[i],
                store.display(),
                routes[i],
                route_list.join(", ")
            );
            if i == 0 {
                conf.push_str(&format!("mqtt {{ listen: 127.0.0.1:{mqtt} }}\n"));
            }
            let path = dir.join(format!("n{i}.conf"));
            std::fs::write(&path, conf).unwrap();
            let child = Command::new("nats-server")
                .args(["-c", path.to_str().unwrap(), "-l", dir.join(format!("n{i}.log")).to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server is not installed: apt-get install nats-server (.ci/run does this)");
            children.push(Some(child));
        }
        for &p in ports.iter().chain([&mqtt]) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(Instant::now() < deadline, "nats-server did not listen on {p}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Nats { children, ports, mqtt }
    }

    fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect()
    }

    /// Kills server `i` with SIGKILL.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

/// A campus of three AHUs with four devices each (`ahu-000K`, `OAD-000K-0001`, `CHW-000K-0002`,
/// `HW-000K-0003`, `VNT-000K-0004`), one shard per AHU.
fn cluster_files(dir: &Path, nats: &Nats) -> (PathBuf, PathBuf, Vec<u16>, u16) {
    let twins = root().join("twins");
    let facility = dir.join("campus.toml");
    std::fs::write(
        &facility,
        format!(
            "kind = \"campus\"\nname = \"campus\"\n[templates]\ndamper = \"{0}/damper_actuator.toml\"\n\
             valve = \"{0}/valve_actuator.toml\"\nahu = \"{0}/ahu.toml\"\nplant = \"{0}/campus_plant.toml\"\n\
             [campus]\nahus = 3\nactuators_per_ahu = 4\ndamper_template = \"damper\"\nvalve_template = \"valve\"\n\
             ahu_template = \"ahu\"\nplant_template = \"plant\"\n",
            twins.display()
        ),
    )
    .unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let plant = free_port();
    let nats_list: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let mut c = format!(
        "facility = \"campus.toml\"\nsite = \"site1\"\nnats = [{}]\nnats_user = \"{NATS_USER}\"\n\
         nats_password = \"{NATS_PASSWORD}\"\nreplicas = 3\nsummary_period_s = 0.5\n\
         offline_after_s = 3\n[plant]\nbind = \"127.0.0.1:{plant}\"\n",
        nats_list.join(", ")
    );
    for (k, p) in ports.iter().enumerate() {
        c.push_str(&format!(
            "[[shards]]\nname = \"s{}\"\nahus = [\"ahu-000{}\"]\nbind = \"127.0.0.1:{p}\"\nstore = \"store-s{}\"\n",
            k + 1,
            k + 1,
            k + 1
        ));
    }
    let cluster = dir.join("cluster.toml");
    std::fs::write(&cluster, c).unwrap();
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[[tokens]]\nname = \"gateway\"\ntoken = \"{WRITE}\"\naccess = \"write\"\n\
             [[tokens]]\nname = \"dashboard\"\ntoken = \"{READ}\"\naccess = \"read\"\n"
        ),
    )
    .unwrap();
    (cluster, config, ports, plant)
}

fn shard(dir: &Path, cluster: &Path, config: &Path, name: &str, port: u16) -> Server {
    let args = vec!["--cluster".into(), cluster.display().to_string(), "--shard".into(), name.into()];
    Server::spawn(port, dir.join(format!("store-{name}")), config.to_path_buf(), args)
}

/// Publishes each body to its subject and waits for JetStream to store it, retrying a refused or
/// unanswered publish (while a cluster re-elects a leader) for up to 30 s; returns how many were
/// stored.
fn publish(urls: &[String], messages: &[(String, String)]) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let servers: Vec<async_nats::ServerAddr> = urls.iter().map(|u| u.parse().unwrap()).collect();
        let client = async_nats::ConnectOptions::with_user_and_password(NATS_USER.into(), NATS_PASSWORD.into())
            .connect(servers)
            .await
            .expect("the test's NATS client connects");
        let js = async_nats::jetstream::new(client);
        let mut stored = 0;
        for (subject, body) in messages {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let attempt = async {
                    js.publish(subject.clone(), body.clone().into_bytes().into()).await?.await?;
                    Ok::<(), async_nats::Error>(())
                };
                match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                    Ok(Ok(())) => {
                        stored += 1;
                        break;
                    }
                    _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                    other => panic!("{subject}: not stored by JetStream within 30 s: {other:?}"),
                }
            }
        }
        stored
    })
}

/// `n` samples of a node as messages of `per` samples each, to the node's subject.
fn jam_messages(ahu: &str, node: &str, from_ms: i64, n: usize, per: usize) -> Vec<(String, String)> {
    (0..n)
        .step_by(per)
        .map(|k| (format!("twinfault.telemetry.site1.{ahu}.{node}"), jam_ndjson(node, from_ms, k, (k + per).min(n))))
        .collect()
}

fn cluster_view(plant: &Server) -> serde_json::Value {
    plant.get("/api/cluster", Some(READ)).json()
}

fn node_status(plant: &Server, id: &str) -> String {
    plant.get(&format!("/api/nodes/{id}"), Some(READ)).json()["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn three_shards_and_a_plant_on_a_three_node_jetstream_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(dir.path());
    let (cluster, config, ports, plant_port) = cluster_files(dir.path(), &nats);
    // The JetStream cluster has elected its leader and holds the stream before the shards start
    // (the product's own call, which waits for the election).
    {
        let c = twinfault::serve::cluster::Cluster::load(&cluster).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let client = twinfault::serve::cluster::connect(&c, "test").await.unwrap();
            twinfault::serve::cluster::stream(&async_nats::jetstream::new(client), &c).await.unwrap();
        });
    }
    let shards: Vec<Server> =
        (0..3).map(|k| shard(dir.path(), &cluster, &config, &format!("s{}", k + 1), ports[k])).collect();
    let plant_args = vec!["--cluster".into(), cluster.display().to_string(), "--plant".into()];
    let plant = Server::spawn(plant_port, dir.path().join("plant"), config.clone(), plant_args);
    assert!(
        wait_for(20, || cluster_view(&plant).as_array().unwrap().iter().all(|s| s["online"] == true)),
        "not every shard came online at the plant: {}",
        cluster_view(&plant)
    );
    assert_eq!(node_status(&plant, "OAD-0002-0001"), "unknown");
    // A client without the login cannot publish telemetry (or a shard's summary).
    let stranger = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let url = nats.urls()[0].clone();
        tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url)).await
    });
    assert!(!matches!(stranger, Ok(Ok(_))), "a client without credentials connected to NATS");
    // Each shard runs its own subtree only.
    let s1 = shards[0].get("/api/status", Some(READ)).json();
    let ids: Vec<&str> = s1["nodes"].as_array().unwrap().iter().filter_map(|n| n["id"].as_str()).collect();
    assert!(ids.contains(&"VNT-0001-0004") && !ids.contains(&"VNT-0002-0004"), "{ids:?}");

    // 1. A gear jam published to NATS reaches the plant's status.
    let from = now_ms() - 200_000;
    let jam = jam_messages("ahu-0001", "VNT-0001-0004", from, 4000, 200);
    assert_eq!(publish(&nats.urls(), &jam), jam.len());
    assert!(
        wait_for(20, || {
            let st = plant.get("/api/status", Some(READ)).json();
            st["open_faults"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["kind"] == "gear_jam" && f["node"] == "VNT-0001-0004")
        }),
        "the jam did not reach the plant: {}",
        plant.get("/api/status", Some(READ)).body
    );
    // The plant shows each node as its shard does (the jammed damper critical, or offline once
    // its samples stop), and rolls the AHUs up.
    for id in ["VNT-0001-0004", "ahu-0001", "OAD-0001-0001"] {
        assert!(
            wait_for(5, || node_status(&plant, id) == node_status(&shards[0], id)),
            "{id}: plant {} / shard {}",
            node_status(&plant, id),
            node_status(&shards[0], id)
        );
    }
    assert!(["critical", "offline"].contains(&node_status(&plant, "VNT-0001-0004").as_str()));
    assert!(["critical", "offline"].contains(&node_status(&plant, "plant-01").as_str()));
    // The plant passes a node's history to its shard.
    assert_eq!(plant.history("VNT-0001-0004", from, 1000).len(), 4000);
    // An operator resolves the jam at the plant: passed to its shard, then resolved at the plant.
    let open = plant.get("/api/faults", Some(READ)).json();
    let id =
        open.as_array().unwrap().iter().find(|f| f["kind"] == "gear_jam").unwrap()["id"].as_str().unwrap().to_string();
    let path = format!("/api/faults/{id}/resolve");
    assert_eq!(plant.post(&path, Some(READ), r#"{"note":"x"}"#).status, 403);
    // A stranger declaring 8 MB is refused from the head alone; the plant reads none of it.
    let mut c = crate::hardening::slow_post_to(plant.port, &path, None, 8_000_000, 16);
    assert_eq!(crate::hardening::status_and_closed(&mut c), (401, true));
    let r = plant.post(&path, Some(WRITE), r#"{"note":"gear replaced"}"#);
    assert_eq!((r.status, r.json()["resolved_by"].as_str()), (200, Some("gateway")), "{}", r.body);
    assert!(
        wait_for(10, || {
            let resolved = plant.get("/api/faults?state=resolved", Some(READ)).json();
            resolved.as_array().unwrap().iter().any(|f| f["id"] == id.as_str() && f["note"] == "gear replaced")
        }),
        "the resolution did not reach the plant"
    );

    // 2. HTTP to any shard is checked against the whole facility and goes to the owning shard.
    let body = jam_ndjson("VNT-0003-0004", now_ms() - 10_000, 0, 100);
    let r = shards[0].post("/api/ingest", Some(WRITE), &body);
    assert_eq!((r.status, r.json()["accepted"].as_u64()), (200, Some(100)), "{}", r.body);
    assert!(wait_for(10, || shards[2].history("VNT-0003-0004", 0, 1000).len() == 100), "forwarded samples");
    assert_eq!(shards[0].history("VNT-0003-0004", 0, 1000).len(), 0, "shard 1 stored another shard's node");
    // The node under another of its names, the rig's field names: the same admission.
    let rig = format!(
        r#"{{"node_id":"CHW-0002-0002","timestamp":{},"telemetry":{{"feedback_position_%":40,"setpoint_position_%":40,"motor_torque_Nmm":0.01,"internal_temperature_deg_C":27.0,"power_W":0.5}}}}"#,
        now_ms() - 3_000
    );
    let r = shards[0].post("/api/ingest", Some(WRITE), &rig);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(wait_for(10, || shards[1].history("CHW-0002-0002", 0, 10).len() == 1), "the node_id sample");
    let unknown = shards[0].post("/api/ingest", Some(WRITE), &jam_ndjson("VNT-0009-0004", now_ms(), 0, 1));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let invalid = body.replacen("\"position_percent\":1.2", "\"position_percent\":\"x\"", 1);
    assert_eq!(shards[1].post("/api/ingest", Some(WRITE), &invalid).status, 422);

    // 3. MQTT straight into NATS (the server's MQTT port), QoS 1.
    let t = now_ms() - 5_000;
    let sample = jam_ndjson("CHW-0003-0002", t, 0, 1);
    {
        use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
        let mut opts = MqttOptions::new("gateway-1", "127.0.0.1", nats.mqtt);
        opts.set_credentials(NATS_USER, NATS_PASSWORD);
        let (client, mut connection) = Client::new(opts, 16);
        client
            .publish("twinfault/telemetry/site1/ahu-0003/CHW-0003-0002", QoS::AtLeastOnce, false, sample.into_bytes())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        for ev in connection.iter() {
            assert!(Instant::now() < deadline, "no PUBACK from the NATS server's MQTT port");
            if let Ok(Event::Incoming(Packet::PubAck(_))) = ev {
                break;
            }
        }
    }
    assert!(wait_for(10, || shards[2].history("CHW-0003-0002", 0, 10).len() == 1), "the MQTT sample");

    // 4. kill -9 of a shard mid-burst, and a restart, lose no sample the stream accepted; its
    //    silence shows its subtree offline at the plant, and it recovers.
    let from = now_ms() - 200_000;
    let burst = jam_messages("ahu-0002", "VNT-0002-0004", from, 4000, 25);
    let urls = nats.urls();
    let mut shards = shards;
    let mut s2 = shards.remove(1);
    // The burst goes on through the kill: a first part while the shard takes it in, the rest
    // once it is dead (the publisher waits for the word).
    let (killed_tx, killed_rx) = std::sync::mpsc::channel::<()>();
    let publisher = {
        let (urls, burst) = (urls.clone(), burst.clone());
        std::thread::spawn(move || {
            let mut stored = 0;
            for (k, m) in burst.iter().enumerate() {
                if k == 80 {
                    killed_rx.recv().unwrap();
                }
                std::thread::sleep(Duration::from_millis(if k < 80 { 25 } else { 5 }));
                stored += publish(&urls, std::slice::from_ref(m));
            }
            stored
        })
    };
    assert!(wait_for(10, || !s2.history("VNT-0002-0004", from, 1000).is_empty()), "shard 2 took none of the burst");
    s2.kill();
    killed_tx.send(()).unwrap();
    // A device that never reported is unknown at its shard; when the shard falls silent, the
    // plant shows it (and all of the shard's subtree) offline, and no other shard's.
    let online =
        |name: &str| cluster_view(&plant).as_array().unwrap().iter().any(|s| s["name"] == name && s["online"] == true);
    assert!(
        wait_for(15, || !online("s2") && node_status(&plant, "OAD-0002-0001") == "offline"),
        "the silent shard's subtree is not offline: {}",
        cluster_view(&plant)
    );
    assert_eq!(node_status(&plant, "ahu-0002"), "offline");
    assert_eq!(node_status(&plant, "OAD-0001-0001"), "unknown", "another shard's subtree changed");
    assert!(online("s1") && online("s3"), "{}", cluster_view(&plant));
    assert_eq!(publisher.join().unwrap(), burst.len());
    let s2 = s2.restart();
    assert!(
        // What the killed shard had been delivered and had not acknowledged comes again after
        // the consumer's ack wait (10 s).
        wait_for(45, || s2.history("VNT-0002-0004", from, 1000).len() == 4000),
        "after kill -9 and restart: {} of 4000 samples",
        s2.history("VNT-0002-0004", from, 1000).len()
    );
    assert!(wait_for(15, || node_status(&plant, "OAD-0002-0001") == "unknown"), "shard 2 did not recover at the plant");
    let m = plant.get("/metrics", None).body;
    assert!(
        m.contains("twinfault_shard_online{shard=\"s2\"} 1")
            && m.contains("twinfault_shard_offline_total{shard=\"s2\"} 1"),
        "{m}"
    );
    let view = cluster_view(&plant);
    let s2_view = view.as_array().unwrap().iter().find(|s| s["name"] == "s2").unwrap();
    assert_eq!((s2_view["online"].as_bool(), s2_view["went_offline"].as_u64()), (Some(true), Some(1)), "{view}");

    // 5. The loss of one NATS node does not stop ingest (the stream has three replicas).
    nats.kill(2);
    let t = now_ms() - 20_000;
    let after = jam_messages("ahu-0003", "HW-0003-0003", t, 200, 20);
    assert_eq!(publish(&urls[..2], &after), after.len());
    let r = shards[0].post("/api/ingest", Some(WRITE), &jam_ndjson("OAD-0003-0001", t, 0, 50));
    assert_eq!(r.status, 200, "HTTP ingest with a NATS node down: {}", r.body);
    assert!(
        wait_for(20, || shards[1].history("HW-0003-0003", t, 1000).len() == 200
            && shards[1].history("OAD-0003-0001", t, 1000).len() == 50),
        "ingest stopped with one NATS node down: {} of 200 and {} of 50 samples; {}",
        shards[1].history("HW-0003-0003", t, 1000).len(),
        shards[1].history("OAD-0003-0001", t, 1000).len(),
        shards[1].get("/metrics", None).body
    );
    drop(s2);
}

#[test]
fn a_cluster_file_that_leaves_out_or_repeats_an_ahu_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, shards: &str| -> PathBuf {
        let p = dir.path().join(name);
        let facility = root().join("twins/datacenter.toml");
        std::fs::write(
            &p,
            format!(
                "facility = \"{}\"\nsite = \"dc\"\nnats = [\"nats://127.0.0.1:1\"]\n[plant]\nbind = \"127.0.0.1:0\"\n{shards}",
                facility.display()
            ),
        )
        .unwrap();
        p
    };
    let run = |cluster: &Path, role: &[&str]| -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_twinfault"))
            .args(["serve", "--cluster", cluster.to_str().unwrap()])
            .args(role)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let shard = |name: &str, ahus: &str| {
        format!("[[shards]]\nname = \"{name}\"\nahus = [{ahus}]\nbind = \"127.0.0.1:0\"\nstore = \"s-{name}\"\n")
    };
    let missing = write("missing.toml", &shard("a", "\"ahu-01\""));
    let (ok, err) = run(&missing, &["--shard", "a"]);
    assert!(!ok && err.contains("\"ahu-02\" is in no shard"), "{err}");
    let twice = write("twice.toml", &(shard("a", "\"ahu-01\", \"ahu-02\"") + &shard("b", "\"ahu-02\"")));
    let (ok, err) = run(&twice, &["--plant"]);
    assert!(!ok && err.contains("\"ahu-02\" is in shard \"a\" and in shard \"b\""), "{err}");
    let unknown = write("unknown.toml", &shard("a", "\"ahu-01\", \"ahu-02\", \"ahu-99\""));
    let (ok, err) = run(&unknown, &["--shard", "a"]);
    assert!(!ok && err.contains("\"ahu-99\", which is not an AHU"), "{err}");
    let (ok, err) = run(&unknown, &["--shard", "zz"]);
    assert!(!ok && err.contains("no shard \"zz\""), "{err}");
    let (ok, err) = run(&missing, &[]);
    assert!(!ok && err.contains("--shard NAME or --plant"), "{err}");
}
