//! `twinfault serve`: the facility's twins fed by real telemetry over HTTP, live.
//!
//! ```text
//!  HTTP POST /api/ingest ──validate──▶ queue (bounded: 429 when full) ──▶ writer thread
//!                                                                         │ group commit: sled insert + one flush
//!                                                                         │ then acknowledge every request (2xx)
//!                                                                         ▼
//!                                                           IngestSample ▶ actuator actors
//!  clock (every control period) ──RunEpoch──▶ supervisor ──▶ events ──▶ live state (status, faults) ◀── GET /api/…
//! ```
//!
//! Time is wall-clock UTC: a sample's timestamp is its `SimTime` in milliseconds since the epoch.
//! An acknowledged sample is on disk. On start the server replays each ingesting node's stored
//! samples through its twin, so fault state survives a restart, and re-applies operators'
//! resolutions. A fleet file (`kind = "fleet"`) is served by [`fleet`], in the same app.

pub mod admit;
pub mod api;
pub mod body;
pub mod cluster;
pub mod fleet;
pub mod mqtt;

use crate::clock::now_ms;
use crate::live::Live;
use crate::sim::engine::{Engine, IngestSample, RunEpoch};
use crate::store::Store;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;
use twinfault_core::SimTime;
use twinfault_core::config::{ConfigError, Facility, parse_toml};
use twinfault_core::plain::{Recorder, Setup};
use twinfault_core::scenario::Scenario;
use twinfault_core::twin::Mode;

/// Who may do what with a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read endpoints only.
    Read,
    /// Read, ingest, resolve, inject.
    Write,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenDef {
    /// Who holds it (shown in resolutions and logs).
    pub name: String,
    pub token: String,
    pub access: Access,
}

/// The server's configuration file (all keys optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    #[serde(default = "default_bind")]
    pub bind: String,
    /// Store directory.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// Read endpoints without a token.
    #[serde(default)]
    pub read_open: bool,
    #[serde(default)]
    pub tokens: Vec<TokenDef>,
    /// Origins allowed by CORS; none by default.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Largest request body [bytes]; larger gets 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Ingest requests waiting for the writer; more gets 429 with Retry-After.
    #[serde(default = "default_queue")]
    pub queue_depth: usize,
    /// Bytes all request bodies being read or processed may hold at once; more gets 429.
    #[serde(default = "default_inflight_bytes")]
    pub max_inflight_bytes: usize,
    /// Samples accepted but not yet on disk, across all requests; more gets 429.
    #[serde(default = "default_inflight_samples")]
    pub max_inflight_samples: usize,
    /// A body must arrive within this [s] plus one second per `body_min_rate_bytes_s` bytes;
    /// slower gets 408 and the connection closed.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_s: f64,
    #[serde(default = "default_body_rate")]
    pub body_min_rate_bytes_s: f64,
    /// A body that pauses this long [s] gets 408.
    #[serde(default = "default_body_idle")]
    pub body_idle_timeout_s: f64,
    /// Open connections the server keeps at once (all workers); more wait in the kernel backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Samples older than their node's latest by more than this are refused [s]; newer
    /// out-of-order samples are stored (history is sorted) but only evaluated in time order.
    #[serde(default = "default_ooo")]
    pub out_of_order_window_s: f64,
    /// Samples timestamped further ahead of the server clock are refused [s].
    #[serde(default = "default_future")]
    pub max_future_s: f64,
    /// How far back the store keeps live samples, and replays them on restart [s].
    #[serde(default = "default_retention")]
    pub history_retention_s: f64,
    /// Actuators that are simulated; every other actuator is fed by telemetry.
    #[serde(default)]
    pub simulate: Vec<String>,
    /// Sample rate of simulated actuators [Hz].
    #[serde(default = "default_rate")]
    pub sample_rate_hz: f64,
    /// Controller period and epoch length [s].
    #[serde(default = "default_period")]
    pub control_period_s: f64,
    /// HTTP worker threads.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How long a proposed change waits for its operator's approval [s].
    #[serde(default = "default_action_expiry")]
    pub action_expiry_s: f64,
    /// Operators (token names) who may approve or reject changes proposed for others.
    #[serde(default)]
    pub approve_for_others: Vec<String>,
    /// The operations agent's model endpoint and limits.
    #[serde(default)]
    pub agent: crate::agent::chat::AgentConfig,
    /// Create an actuator twin when telemetry names an unknown node whose `parentIds` name a known
    /// AHU (default false: unknown nodes get 404).
    #[serde(default)]
    pub auto_create: bool,
    /// An MQTT subscription feeding the same ingest path.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
}

/// `[mqtt]`: where to subscribe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:port`.
    pub url: String,
    /// Topic filter, e.g. `site/+/telemetry`.
    pub topic: String,
    /// The session's client id: keep it stable (and unique per server) so that the broker keeps
    /// the session, and what it holds, across restarts.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// How long the broker keeps the session while the server is away [s] (MQTT 5 Session Expiry
    /// Interval; default one week).
    #[serde(default = "default_session_expiry")]
    pub session_expiry_s: u32,
    /// Messages the broker may have out to the server unacknowledged (MQTT 5 Receive Maximum,
    /// 1..=65535): a burst up to this size waits for the disk here rather than in the broker's
    /// queue, which a stock Mosquitto caps at 1,000 messages and then drops.
    #[serde(default = "default_receive_window")]
    pub receive_window: u16,
}

impl MqttConfig {
    /// A subscription with the default session settings.
    pub fn new(url: String, topic: String) -> MqttConfig {
        MqttConfig {
            url,
            topic,
            client_id: default_client_id(),
            session_expiry_s: default_session_expiry(),
            receive_window: default_receive_window(),
        }
    }
}

fn default_client_id() -> String {
    "twinfault".into()
}
fn default_session_expiry() -> u32 {
    7 * 24 * 3600
}
fn default_receive_window() -> u16 {
    u16::MAX
}

fn default_bind() -> String {
    "127.0.0.1:5000".into()
}
fn default_store() -> PathBuf {
    PathBuf::from(crate::store::DEFAULT_DIR)
}
fn default_max_body() -> usize {
    8 * 1024 * 1024
}
fn default_queue() -> usize {
    1024
}
fn default_inflight_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_inflight_samples() -> usize {
    500_000
}
fn default_body_timeout() -> f64 {
    10.0
}
fn default_body_rate() -> f64 {
    64.0 * 1024.0
}
fn default_body_idle() -> f64 {
    5.0
}
fn default_max_connections() -> usize {
    1024
}
fn default_ooo() -> f64 {
    300.0
}
fn default_future() -> f64 {
    300.0
}
fn default_retention() -> f64 {
    7.0 * 86_400.0
}
fn default_rate() -> f64 {
    1.0
}
fn default_period() -> f64 {
    1.0
}
fn default_action_expiry() -> f64 {
    crate::agent::policy::DEFAULT_EXPIRY_S
}
fn default_workers() -> usize {
    2
}

impl Default for ServeConfig {
    fn default() -> Self {
        parse_toml::<ServeConfig>("", "default").expect("all keys have defaults")
    }
}

impl ServeConfig {
    pub fn load(path: &std::path::Path) -> Result<ServeConfig> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {label}"))?;
        let c: ServeConfig = parse_toml(&text, &label)?;
        let bad = |k: &str, m: &str| -> anyhow::Error { ConfigError::new(&label, k, m).locate(&text).into() };
        if c.tokens.iter().any(|t| t.token.len() < 16) {
            return Err(bad("tokens", "every token needs at least 16 characters"));
        }
        if !(c.sample_rate_hz > 0.0 && c.sample_rate_hz <= 20.0) {
            return Err(bad("sample_rate_hz", "must be in (0, 20]"));
        }
        if !(c.control_period_s >= 0.1 && c.control_period_s * c.sample_rate_hz >= 1.0) {
            return Err(bad("control_period_s", "must be at least 0.1 s and hold one sample"));
        }
        if !(c.action_expiry_s >= 1.0 && c.action_expiry_s <= 86_400.0) {
            return Err(bad("action_expiry_s", "must be within 1..=86400"));
        }
        if c.mqtt.as_ref().is_some_and(|m| m.receive_window == 0) {
            return Err(bad("receive_window", "must be within 1..=65535"));
        }
        if c.queue_depth == 0 || c.max_body_bytes < 1024 {
            return Err(bad("queue_depth", "queue_depth must be positive and max_body_bytes at least 1024"));
        }
        if c.max_inflight_bytes < c.max_body_bytes {
            return Err(bad("max_inflight_bytes", "must be at least max_body_bytes (one whole body)"));
        }
        if c.max_inflight_samples == 0 || c.max_connections == 0 {
            return Err(bad("max_inflight_samples", "max_inflight_samples and max_connections must be positive"));
        }
        if !(c.body_timeout_s > 0.0 && c.body_idle_timeout_s > 0.0 && c.body_min_rate_bytes_s >= 1.0) {
            return Err(bad(
                "body_timeout_s",
                "body_timeout_s and body_idle_timeout_s must be positive, body_min_rate_bytes_s at least 1",
            ));
        }
        Ok(c)
    }
}

/// A durable write: samples per actuator, acknowledged when on disk.
pub struct WriteJob {
    pub samples: Vec<crate::telemetry::payload::Accepted>,
    pub ack: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The writer's end: a bounded queue.
#[derive(Clone)]
pub struct Writer {
    tx: SyncSender<WriteJob>,
    live: Arc<Live>,
}

/// Most requests committed with one flush.
const GROUP_COMMIT_MAX: usize = 512;

impl Writer {
    /// The sending end of a writer queue; `serve` starts the thread that drains it.
    pub fn new(tx: SyncSender<WriteJob>, live: Arc<Live>) -> Writer {
        Writer { tx, live }
    }

    /// Queues a job; `Err` gives the job back when the queue is full.
    pub fn try_send(&self, job: WriteJob) -> Result<(), WriteJob> {
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(j) | TrySendError::Disconnected(j) => j,
        })?;
        self.live.queue_depth.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn run(rx: Receiver<WriteJob>, store: Store, actors: Actors, live: Arc<Live>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < GROUP_COMMIT_MAX {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let result = (|| -> Result<()> {
                let mut per_node: std::collections::BTreeMap<usize, Vec<twinfault_core::actuator::Sample>> =
                    Default::default();
                for j in &jobs {
                    for a in &j.samples {
                        per_node.entry(a.actuator).or_default().push(a.sample);
                    }
                }
                for (i, samples) in &per_node {
                    store.put_live(&live.actuator_id(*i), samples)?;
                }
                store.flush()
            })();
            match result {
                Ok(()) => {
                    let mut n = 0u64;
                    let actors = actors.read().expect("not poisoned");
                    for j in jobs {
                        for a in &j.samples {
                            actors[a.actuator].do_send(IngestSample(a.sample));
                            live.note_sample(a.actuator, a.sample);
                        }
                        n += j.samples.len() as u64;
                        let _ = j.ack.send(Ok(()));
                        live.queue_depth.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    live.ingested.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!("group commit failed: {e:#}");
                    for j in jobs {
                        let _ = j.ack.send(Err(format!("the store could not write: {e}")));
                        live.queue_depth.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Every actuator actor by index: the facility's, then auto-created ones.
pub type Actors = Arc<std::sync::RwLock<Vec<actix::Addr<crate::sim::engine::ActuatorActor>>>>;

/// Creates (or finds) the twin of an auto-created actuator under AHU `ahu`; returns its index.
pub fn create_extra(
    facility: &Facility,
    live: &Live,
    actors: &Actors,
    store: &Store,
    node: crate::live::ExtraNode,
    restore_from: Option<SimTime>,
) -> Result<usize> {
    use actix::Actor;
    if let Some((i, _)) = live.extra(&node.id) {
        return Ok(i);
    }
    // The template and role of a sibling of the same kind (valve or damper), else of any
    // actuator; with the facility's classifier, as every twin.
    let valve = node.device_type.contains("valve");
    let like = facility
        .actuators
        .iter()
        .find(|a| matches!(a.role, twinfault_core::Role::CoolingValve | twinfault_core::Role::HeatingValve) == valve)
        .or(facility.actuators.first())
        .context("the facility has no actuator template to create a node from")?;
    let mut twin = twinfault_core::twin::ActuatorTwin::of_node(facility, like, &node.id, Mode::Ingest, 1, false);
    let index = live.add_extra(node.clone());
    if let Some(from) = restore_from {
        let mut findings = Vec::new();
        store.for_each_live_sample(&node.id, from, |s| {
            twin.ingest(s, &mut findings);
            live.note_sample(index, *s);
        })?;
        live.apply_restored(&node.id, findings);
    } else {
        store.put_auto_node(&node.id, &serde_json::to_value(&node)?)?;
    }
    let addr = crate::sim::engine::ActuatorActor::new(twin).start();
    actors.write().expect("not poisoned").push(addr);
    tracing::info!(node = %node.id, ahu = %facility.ahus[node.ahu].id, "auto-created an actuator twin");
    Ok(index)
}

/// The scenario-like settings of a live facility: wall-clock time, always on.
fn live_scenario(cfg: &ServeConfig) -> Result<Scenario> {
    let text = format!(
        "name = \"live\"\nfacility = \"-\"\nseed = 1\nduration_s = {}\nsample_rate_hz = {}\ncontrol_period_s = {}\n\
         [schedule]\nmode = \"always_on\"\nstartup_s = 0\n[weather]\noutdoor_mean_c = 20.0\noutdoor_amplitude_c = 5.0\n",
        twinfault_core::scenario::MAX_DURATION_S,
        cfg.sample_rate_hz,
        cfg.control_period_s
    );
    Ok(Scenario::parse(&text, "serve")?)
}

/// Loads the facility with every actuator ingesting except those the config simulates.
pub fn facility(path: &std::path::Path, cfg: &ServeConfig) -> Result<Facility> {
    let mut f = crate::load::facility(path, None)?;
    for name in &cfg.simulate {
        anyhow::ensure!(
            f.actuators.iter().any(|a| &a.id == name),
            "serve config: `simulate` names unknown actuator \"{name}\""
        );
    }
    for a in &mut f.actuators {
        a.mode = if cfg.simulate.contains(&a.id) { Mode::Simulate } else { Mode::Ingest };
    }
    Ok(f)
}

/// Runs the server until it is stopped.
pub fn serve(facility_path: &std::path::Path, cfg: ServeConfig) -> Result<()> {
    let facility = facility(facility_path, &cfg)?;
    run(facility, cfg, None)
}

/// A cluster's shard: the twins of its AHUs' subtrees, fed from the stream (see [`cluster`]).
/// `cfg`'s bind and store are the shard's.
pub fn serve_shard(cluster: crate::serve::cluster::Cluster, shard: &str, cfg: ServeConfig) -> Result<()> {
    anyhow::ensure!(
        !cfg.auto_create,
        "auto_create is not supported in a cluster (a node belongs to one AHU's subject)"
    );
    anyhow::ensure!(cfg.mqtt.is_none(), "a cluster's MQTT goes into NATS (the server's MQTT port), not to a shard");
    let full = Arc::new(facility(&cluster.facility_path, &cfg)?);
    let parts = cluster.check(&full)?;
    let (k, _) = cluster.shard(shard)?;
    let sub = full.subtree(&parts[k]);
    run(sub, cfg, Some((Arc::new(cluster), shard.to_string(), full)))
}

/// The server over `facility` (a cluster's shard: its subtree, with the cluster, its name and the
/// whole facility).
fn run(
    facility: Facility,
    cfg: ServeConfig,
    shard: Option<(Arc<crate::serve::cluster::Cluster>, String, Arc<Facility>)>,
) -> Result<()> {
    let facility = Arc::new(facility);
    let scenario = live_scenario(&cfg)?;
    let store = Store::open(&cfg.store)?;
    let mut setup = Setup::new(&scenario, &facility, false);
    let live = Arc::new(Live::new(Arc::clone(&facility)));

    // Restore: replay each ingesting node's stored samples through its twin.
    let keep_from = SimTime((now_ms() - (cfg.history_retention_s * 1000.0) as i64).max(0) as u64);
    let mut restored = 0usize;
    for (i, a) in facility.actuators.iter().enumerate() {
        if a.mode != Mode::Ingest {
            continue;
        }
        store.prune_live(&a.id, keep_from)?;
        let mut findings = Vec::new();
        let twin = &mut setup.actuators[i];
        // As the clock met them while the server ran: silences raise and clear signal loss again.
        let mut since: Option<SimTime> = None;
        restored += store.for_each_live_sample(&a.id, keep_from, |s| {
            twin.ingest_after(since.unwrap_or(s.t), s, &mut findings);
            since = Some(since.map_or(s.t, |t| t.max(s.t)));
            live.note_sample(i, *s);
        })?;
        live.apply_restored(&a.id, findings);
    }
    // Operators' resolutions outlive restarts.
    for (i, a) in facility.actuators.iter().enumerate() {
        for f in live.open_faults_of(&a.id) {
            if let Some(r) = store.resolution(&f.id)? {
                // At the operator's time, as it was resolved (not the restart's).
                let at = r.get("at").and_then(|v| v.as_str()).and_then(twinfault_core::time::parse_timestamp_ms);
                let t = SimTime(at.unwrap_or_else(now_ms).max(0) as u64);
                if let Some(e) = setup.actuators[i].force_resolve(t, f.kind) {
                    live.apply_restored(&a.id, vec![e]);
                    live.mark_resolved(&f.id, &r);
                }
            }
        }
    }
    tracing::info!(restored, "restored ingested samples from the store");
    eprintln!(
        "twinfault serve: {} ({} actuators, {} ingesting), store {}, {restored} samples restored, listening on http://{}",
        facility.name,
        facility.actuators.len(),
        facility.actuators.iter().filter(|a| a.mode == Mode::Ingest).count(),
        cfg.store.display(),
        cfg.bind
    );

    let cfg = Arc::new(cfg);
    actix_web::rt::System::new().block_on(async move {
        let mut recorder = Recorder::new(Arc::clone(&facility), Vec::new());
        recorder.stream_only();
        let history_store = store.clone();
        let sink: crate::sim::engine::HistorySink = Box::new(move |node, block| {
            if let crate::store::Block::Actuator(b) = block
                && let Err(e) = history_store.put_live(node, &b.samples)
            {
                tracing::warn!("history of simulated {node} not stored: {e:#}");
            }
        });
        let engine = Engine::start_with(setup, Arc::clone(&facility), recorder, scenario.duration, 1, sink);
        let actors: Actors = Arc::new(std::sync::RwLock::new(engine.actuators.clone()));
        // Auto-created actuators of earlier runs, with their stored samples replayed.
        for v in store.auto_nodes()? {
            let node: crate::live::ExtraNode = serde_json::from_value(v)?;
            if node.ahu < facility.ahus.len() && facility.node(&node.id).is_none() {
                create_extra(&facility, &live, &actors, &store, node, Some(keep_from))?;
            }
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<WriteJob>(cfg.queue_depth);
        {
            let (store, actors, live) = (store.clone(), Arc::clone(&actors), Arc::clone(&live));
            std::thread::Builder::new()
                .name("twinfault-writer".into())
                .spawn(move || Writer::run(rx, store, actors, live))?;
        }
        let writer = Writer { tx, live: Arc::clone(&live) };

        // The clock: one epoch per control period of wall time.
        let period_ms = (cfg.control_period_s * 1000.0).round() as i64;
        {
            let supervisor = engine.supervisor.clone();
            let live = Arc::clone(&live);
            let grid = engine.grid;
            let actors = Arc::clone(&actors);
            let n_facility = facility.actuators.len();
            actix_web::rt::spawn(async move {
                let mut epoch = (now_ms() / period_ms) as u64;
                loop {
                    let next_start = grid.epoch_start(epoch + 1).0 as i64;
                    let wait = next_start - now_ms();
                    if wait > 0 {
                        actix_web::rt::time::sleep(Duration::from_millis(wait as u64)).await;
                    }
                    match supervisor.send(RunEpoch(epoch)).await {
                        Ok(events) => live.apply(&events),
                        Err(e) => {
                            tracing::error!("the supervisor stopped: {e}");
                            break;
                        }
                    }
                    // Auto-created actuators are not under an AHU actor: the clock advances them.
                    let extras: Vec<_> = actors.read().expect("not poisoned")[n_facility..].to_vec();
                    for (k, addr) in extras.into_iter().enumerate() {
                        let first_sample = epoch * grid.samples_per_epoch;
                        let adv = crate::sim::engine::Advance {
                            grid,
                            first_sample,
                            command_pct: f64::NAN,
                            phase: twinfault_core::Phase::Occupied,
                        };
                        if let Ok(r) = addr.send(adv).await {
                            let id = live.actuator_id(n_facility + k);
                            live.apply_restored(&id, r.findings);
                            live.set_extra_status(n_facility + k, r.report.status);
                        }
                    }
                    epoch += 1;
                }
            });
        }

        let ingest = Arc::new(admit::Ingest {
            cfg: Arc::clone(&cfg),
            facility: Arc::clone(&facility),
            live: Arc::clone(&live),
            actors: Arc::clone(&actors),
            store: store.clone(),
        });
        if let Some(m) = cfg.mqtt.clone() {
            mqtt::start(m, Arc::clone(&ingest), writer.clone())?;
        }
        let cluster = match shard {
            None => None,
            Some((cluster, name, full)) => {
                let check = Arc::new(admit::Ingest {
                    cfg: Arc::clone(&cfg),
                    live: Arc::new(Live::new(Arc::clone(&full))),
                    facility: Arc::clone(&full),
                    actors: Arc::clone(&actors),
                    store: store.clone(),
                });
                let link = crate::serve::cluster::shard::Link::open(cluster, &name, full, check).await?;
                link.start_consumers(&facility, Arc::clone(&ingest), writer.clone());
                link.start_summaries(Arc::clone(&live));
                tracing::info!(shard = %name, "consuming this shard's AHUs from the stream");
                Some(link)
            }
        };
        let policy = Arc::new(crate::agent::policy::Policy::new(
            store.audit()?,
            cfg.action_expiry_s,
            cfg.approve_for_others.clone(),
        )?);
        let state = actix_web::web::Data::new(api::AppState {
            policy,
            cfg: Arc::clone(&cfg),
            facility: Arc::clone(&facility),
            live: Arc::clone(&live),
            store: store.clone(),
            writer,
            actuators: Arc::clone(&actors),
            ahus: engine.ahus.clone(),
            supervisor: engine.supervisor.clone(),
            inflight: Arc::new(body::Inflight::new(cfg.workers)),
            ingest,
            cluster,
        });
        api::listen(Arc::clone(&cfg), api::Served::Facility(state)).await?;
        drop(engine);
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::ServeConfig;

    /// `serve.example.toml` documents every limit at its default: it parses, and the values it
    /// states are the ones the server takes without it.
    #[test]
    fn the_example_config_parses_and_states_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("serve.example.toml");
        let c = ServeConfig::load(&path).unwrap();
        let d = ServeConfig::default();
        assert_eq!(
            (c.max_body_bytes, c.max_inflight_bytes, c.max_inflight_samples, c.queue_depth, c.max_connections),
            (d.max_body_bytes, d.max_inflight_bytes, d.max_inflight_samples, d.queue_depth, d.max_connections)
        );
        assert_eq!(
            (c.body_timeout_s, c.body_min_rate_bytes_s, c.body_idle_timeout_s, c.history_retention_s),
            (d.body_timeout_s, d.body_min_rate_bytes_s, d.body_idle_timeout_s, d.history_retention_s)
        );
        // The commented-out [mqtt] section, taken in, states the session defaults.
        let text = std::fs::read_to_string(&path).unwrap();
        let section: String = text
            .lines()
            .skip_while(|l| *l != "# [mqtt]")
            .take_while(|l| l.starts_with("# "))
            .map(|l| format!("{}\n", &l[2..]))
            .collect();
        let m: super::MqttConfig = toml::from_str::<toml::Table>(&section).unwrap()["mqtt"].clone().try_into().unwrap();
        let d = super::MqttConfig::new(m.url.clone(), m.topic.clone());
        assert_eq!(
            (&m.client_id, m.session_expiry_s, m.receive_window),
            (&d.client_id, d.session_expiry_s, d.receive_window)
        );
    }
}
