//! The sled store: runs, their event logs, faults with their lifecycle, and telemetry history.
//!
//! Layout (one sled tree each; keys big-endian so range scans by run, node and time are cheap):
//!
//! | tree      | key                                         | value                          |
//! |-----------|---------------------------------------------|--------------------------------|
//! | `runs`    | run seq (u64)                               | [`RunRecord`] as JSON          |
//! | `events`  | run seq, event index (u64, u64)             | one event as JSON              |
//! | `faults`  | run seq, fault index (u64, u64)             | [`Fault`] (the ledger's) as JSON |
//! | `history` | run seq, node id, 0, block start ms (u64)   | one block: every metric, packed|
//!
//! History is stored in blocks of [`HISTORY_BLOCK_MS`] holding all metrics of every sample of one
//! node (one sled record per sample would cap ingest near 100 k samples/s), with a bounded
//! retention: writing a block deletes that node's blocks older than the retention.

pub mod audit;
pub mod fleet;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;
use twinfault_core::actuator::Sample;
use twinfault_core::ahu::AhuSummary;
use twinfault_core::event::Event;
use twinfault_core::ledger::{Fault, FaultLedger};
use twinfault_core::report::Report;
use twinfault_core::twin::{HISTORY_BLOCK_MS, HistoryBlock};
use twinfault_core::types::SimTime;

/// Default store directory, relative to the working directory.
pub const DEFAULT_DIR: &str = "twinfault-data";
/// sled's page cache [bytes]; set explicitly because its default grows to a gigabyte.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Default history retention per node [s] of simulated time.
pub const DEFAULT_RETENTION_S: f64 = 6.0 * 3600.0;
/// Most points a history query returns in one page.
pub const MAX_HISTORY_LIMIT: usize = 10_000;

/// The metrics of an actuator sample, by the names users query.
pub const METRICS: [&str; 7] =
    ["position_pct", "setpoint_pct", "torque_nm", "power_w", "temperature_c", "rotation", "signal_quality"];
/// The metrics of an AHU, one point per control epoch (`phase`: 0 off, 1 startup, 2 occupied,
/// 3 shutdown; `status`: 0 healthy, 1 warning, 2 critical, 3 offline, 4 unknown).
pub const AHU_METRICS: [&str; 9] = [
    "outdoor_air_c",
    "return_air_c",
    "mixed_air_c",
    "supply_air_c",
    "supply_air_setpoint_c",
    "cooling_kw",
    "heating_kw",
    "phase",
    "status",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub scenario: String,
    pub scenario_path: String,
    pub scenario_sha256: String,
    pub facility: String,
    pub seed: u64,
    pub threads: usize,
    /// Wall-clock start [s since the Unix epoch]; metadata only, never part of the event log.
    pub started_unix_s: u64,
    pub wall_s: f64,
    pub report: Report,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    runs: sled::Tree,
    events: sled::Tree,
    faults: sled::Tree,
    history: sled::Tree,
}

fn run_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn pair_key(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

fn history_prefix(run: u64, node: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + node.len() + 1 + 8);
    k.extend_from_slice(&run.to_be_bytes());
    k.extend_from_slice(node.as_bytes());
    k.push(0);
    k
}

fn history_key(run: u64, node: &str, start_ms: u64) -> Vec<u8> {
    let mut k = history_prefix(run, node);
    k.extend_from_slice(&start_ms.to_be_bytes());
    k
}

/// Bytes per packed sample.
const SAMPLE_BYTES: usize = 29;
/// First byte of a block: its layout.
const BLOCK_VERSION: u8 = 1;
const AHU_BLOCK_VERSION: u8 = 2;
/// Bytes per packed AHU point: offset, 7 temperatures and powers, phase, status.
const AHU_POINT_BYTES: usize = 4 + 7 * 4 + 2;

/// A block of one AHU's epoch summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct AhuBlock {
    pub start: SimTime,
    pub points: Vec<(SimTime, AhuSummary)>,
}

/// A closed block of any node, for the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Actuator(HistoryBlock),
    Ahu(AhuBlock),
}

impl Block {
    pub fn start(&self) -> SimTime {
        match self {
            Block::Actuator(b) => b.start,
            Block::Ahu(b) => b.start,
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Block::Actuator(b) => encode_block(b),
            Block::Ahu(b) => encode_ahu_block(b),
        }
    }
}

pub fn encode_ahu_block(b: &AhuBlock) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + b.points.len() * AHU_POINT_BYTES);
    v.push(AHU_BLOCK_VERSION);
    v.extend_from_slice(&(b.points.len() as u32).to_le_bytes());
    for (t, a) in &b.points {
        let off = t.0.saturating_sub(b.start.0).min(u64::from(u32::MAX)) as u32;
        v.extend_from_slice(&off.to_le_bytes());
        for x in [
            a.outdoor_air_c,
            a.return_air_c,
            a.mixed_air_c,
            a.supply_air_c,
            a.supply_air_setpoint_c,
            a.cooling_kw,
            a.heating_kw,
        ] {
            v.extend_from_slice(&(x as f32).to_le_bytes());
        }
        v.push(a.phase as u8);
        v.push(a.status as u8);
    }
    v
}

/// Decodes one stored block into (time, value of `metric`) points; `None` where the sample
/// lacks the metric (an actuator without signal quality).
fn block_points(start: SimTime, bytes: &[u8], metric_name: &str) -> Result<Vec<(SimTime, Option<f64>)>> {
    match bytes.first() {
        Some(&BLOCK_VERSION) => Ok(decode_block(start, bytes)?.iter().map(|s| (s.t, metric(s, metric_name))).collect()),
        Some(&AHU_BLOCK_VERSION) => {
            let n = u32::from_le_bytes(bytes.get(1..5).context("truncated AHU block")?.try_into()?) as usize;
            if bytes.len() != 5 + n * AHU_POINT_BYTES {
                bail!("AHU history block at {start} is truncated");
            }
            let k = AHU_METRICS.iter().position(|m| *m == metric_name);
            Ok(bytes[5..]
                .chunks_exact(AHU_POINT_BYTES)
                .map(|c| {
                    let t = SimTime(start.0 + u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                    let v = k.map(|k| match k {
                        0..=6 => f64::from(f32::from_le_bytes(c[4 + 4 * k..8 + 4 * k].try_into().expect("4 bytes"))),
                        7 => f64::from(c[32]),
                        _ => f64::from(c[33]),
                    });
                    (t, v)
                })
                .collect())
        }
        _ => bail!("history block at {start} has an unknown format"),
    }
}

/// Packs a block: version, count, then per sample the offset from the block start and every metric.
pub fn encode_block(b: &HistoryBlock) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + b.samples.len() * SAMPLE_BYTES);
    v.push(BLOCK_VERSION);
    v.extend_from_slice(&(b.samples.len() as u32).to_le_bytes());
    for s in &b.samples {
        let off = s.t.0.saturating_sub(b.start.0).min(u64::from(u32::MAX)) as u32;
        v.extend_from_slice(&off.to_le_bytes());
        for x in [s.setpoint_pct, s.position_pct, s.torque_nm, s.power_w, s.temperature_c] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.push(s.rotation);
        v.extend_from_slice(&s.signal_quality.unwrap_or(f32::NAN).to_le_bytes());
    }
    v
}

pub fn decode_block(start: SimTime, bytes: &[u8]) -> Result<Vec<Sample>> {
    if bytes.len() < 5 || bytes[0] != BLOCK_VERSION {
        bail!("history block at {start} has an unknown format");
    }
    let n = u32::from_le_bytes(bytes[1..5].try_into()?) as usize;
    if bytes.len() != 5 + n * SAMPLE_BYTES {
        bail!("history block at {start} is truncated");
    }
    let f = |b: &[u8], i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Ok(bytes[5..]
        .chunks_exact(SAMPLE_BYTES)
        .map(|c| {
            let q = f(c, 25);
            Sample {
                t: SimTime(start.0 + u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
                setpoint_pct: f(c, 4),
                position_pct: f(c, 8),
                torque_nm: f(c, 12),
                power_w: f(c, 16),
                temperature_c: f(c, 20),
                rotation: c[24],
                signal_quality: (!q.is_nan()).then_some(q),
            }
        })
        .collect())
}

/// A metric's value in a sample.
pub fn metric(s: &Sample, name: &str) -> Option<f64> {
    Some(match name {
        "position_pct" => f64::from(s.position_pct),
        "setpoint_pct" => f64::from(s.setpoint_pct),
        "torque_nm" => f64::from(s.torque_nm),
        "power_w" => f64::from(s.power_w),
        "temperature_c" => f64::from(s.temperature_c),
        "rotation" => f64::from(s.rotation),
        "signal_quality" => f64::from(s.signal_quality?),
        _ => return None,
    })
}

/// One page of a node's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryPage {
    pub points: Vec<(SimTime, f64)>,
    /// Pass as `from` to get the next page; `None` when this was the last.
    pub next_from: Option<SimTime>,
}

impl Store {
    /// Opens an existing store for reading commands; a missing one is an error, not a new store.
    pub fn open_existing(dir: &Path) -> Result<Store> {
        if !dir.join("db").exists() && !dir.join("conf").exists() {
            bail!("no store at {} (run a scenario first, or pass --store)", dir.display());
        }
        Self::open(dir)
    }

    pub fn open(dir: &Path) -> Result<Store> {
        // sled locks its directory; a store closed a moment ago (its flusher thread still ending)
        // or by a process that is exiting can hold the lock briefly: retry for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let db = loop {
            match sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open() {
                Ok(db) => break db,
                // sled reports a held lock as `Other` with this message.
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("cannot open the store at {}", dir.display())));
                }
            }
        };
        Ok(Store {
            runs: db.open_tree("runs")?,
            events: db.open_tree("events")?,
            faults: db.open_tree("faults")?,
            history: db.open_tree("history")?,
            db,
        })
    }

    /// Allocates the sequence number of a new run.
    pub fn next_run(&self) -> Result<u64> {
        // sled counts from 0; people count runs from 1.
        Ok(self.db.generate_id()? + 1)
    }

    pub fn run_id(seq: u64) -> String {
        format!("run-{seq:06}")
    }

    fn parse_run_id(id: &str) -> Result<u64> {
        id.strip_prefix("run-")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("\"{id}\" is not a run id (run-NNNNNN; see `twinfault runs`)"))
    }

    /// Writes one history block, then drops the node's blocks older than `retention_s`.
    pub fn put_history(&self, run: u64, node: &str, block: &Block, retention_s: f64) -> Result<()> {
        self.history.insert(history_key(run, node, block.start().0), block.encode())?;
        let keep_from = block.start().0.saturating_sub((retention_s * 1000.0) as u64);
        if keep_from > 0 {
            let old: Vec<sled::IVec> = self
                .history
                .range(history_key(run, node, 0)..history_key(run, node, keep_from))
                .keys()
                .collect::<Result<_, _>>()?;
            for k in old {
                self.history.remove(k)?;
            }
        }
        Ok(())
    }

    /// Writes a finished run: its record, event log and fault lifecycle; flushes to disk.
    pub fn put_run(&self, seq: u64, record: &RunRecord, log_lines: &[String], events: &[Event]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (i, line) in log_lines.iter().enumerate() {
            batch.insert(&pair_key(seq, i as u64), line.as_bytes());
        }
        self.events.apply_batch(batch)?;
        let mut batch = sled::Batch::default();
        for (i, f) in FaultLedger::of_events(events).all().into_iter().enumerate() {
            batch.insert(&pair_key(seq, i as u64), serde_json::to_vec(f)?);
        }
        self.faults.apply_batch(batch)?;
        self.runs.insert(run_key(seq), serde_json::to_vec(record)?)?;
        self.db.flush()?;
        Ok(())
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.runs.iter().values().map(|v| Ok(serde_json::from_slice(&v?)?)).collect()
    }

    pub fn run(&self, id: &str) -> Result<RunRecord> {
        let seq = Self::parse_run_id(id)?;
        let v = self
            .runs
            .get(run_key(seq))?
            .with_context(|| format!("no run \"{id}\" in the store (see `twinfault runs`)"))?;
        Ok(serde_json::from_slice(&v)?)
    }

    /// The event log of a run, as the JSON lines that were hashed.
    pub fn events(&self, id: &str) -> Result<Vec<String>> {
        let seq = Self::parse_run_id(id)?;
        self.events
            .range(pair_key(seq, 0)..=pair_key(seq, u64::MAX))
            .values()
            .map(|v| Ok(String::from_utf8(v?.to_vec())?))
            .collect()
    }

    pub fn faults(&self, id: &str) -> Result<Vec<Fault>> {
        let seq = Self::parse_run_id(id)?;
        self.faults
            .range(pair_key(seq, 0)..=pair_key(seq, u64::MAX))
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    /// One page of `metric` of `node` in run `id`, from `from` (inclusive) to `to` (exclusive).
    pub fn history(
        &self,
        id: &str,
        node: &str,
        metric_name: &str,
        from: SimTime,
        to: SimTime,
        limit: usize,
    ) -> Result<HistoryPage> {
        let seq = Self::parse_run_id(id)?;
        // The node's kind decides its metrics: look at any one of its blocks.
        let kind = self
            .history
            .scan_prefix(history_prefix(seq, node))
            .values()
            .next()
            .transpose()?
            .and_then(|v| v.first().copied());
        let names: &[&str] = if kind == Some(AHU_BLOCK_VERSION) { &AHU_METRICS } else { &METRICS };
        if !names.contains(&metric_name) {
            bail!("unknown metric \"{metric_name}\" for {node} (one of {})", names.join(", "));
        }
        let limit = limit.clamp(1, MAX_HISTORY_LIMIT);
        let first_block = from.0 / HISTORY_BLOCK_MS * HISTORY_BLOCK_MS;
        let mut points = Vec::new();
        for kv in self.history.range(history_key(seq, node, first_block)..history_key(seq, node, to.0)) {
            let (k, v) = kv?;
            let start = SimTime(u64::from_be_bytes(k[k.len() - 8..].try_into()?));
            for (t, x) in block_points(start, &v, metric_name)? {
                if t < from || t >= to {
                    continue;
                }
                if points.len() == limit {
                    return Ok(HistoryPage { points, next_from: Some(t) });
                }
                if let Some(x) = x {
                    points.push((t, x));
                }
            }
        }
        Ok(HistoryPage { points, next_from: None })
    }

    /// Nodes with history in a run.
    pub fn history_nodes(&self, id: &str) -> Result<Vec<String>> {
        let seq = Self::parse_run_id(id)?;
        let mut nodes: Vec<String> = Vec::new();
        for k in self.history.scan_prefix(seq.to_be_bytes()).keys() {
            let k = k?;
            let name = &k[8..k.len() - 9];
            let name = String::from_utf8_lossy(name).into_owned();
            if nodes.last() != Some(&name) {
                nodes.push(name);
            }
        }
        Ok(nodes)
    }
}

/// Live (served) telemetry: chunks of one node's samples from one commit, keyed by node, the
/// chunk's history block and a sequence number, so samples of the same millisecond, or arriving
/// out of order, never overwrite each other.
impl Store {
    fn live_key(node: &str, block_ms: u64, seq: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(node.len() + 17);
        k.extend_from_slice(node.as_bytes());
        k.push(0);
        k.extend_from_slice(&block_ms.to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// Adds chunks to the live history without flushing (the caller commits a group).
    pub fn put_live(&self, node: &str, samples: &[Sample]) -> Result<()> {
        let tree = self.db.open_tree("live_history")?;
        // One chunk per history block the samples fall in.
        let mut sorted: Vec<Sample> = samples.to_vec();
        sorted.sort_by_key(|s| s.t);
        for group in sorted.chunk_by(|a, b| a.t.0 / HISTORY_BLOCK_MS == b.t.0 / HISTORY_BLOCK_MS) {
            let block = group[0].t.0 / HISTORY_BLOCK_MS * HISTORY_BLOCK_MS;
            let seq = self.db.generate_id()?;
            let b = HistoryBlock { start: SimTime(block), samples: group.to_vec() };
            tree.insert(Self::live_key(node, block, seq), encode_block(&b))?;
        }
        Ok(())
    }

    /// Makes everything written so far durable (one fsync for a whole group of requests).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Calls `f` with every live sample of a node from `from` on, in time order, one history
    /// block at a time (bounded memory however long the retention).
    pub fn for_each_live_sample(&self, node: &str, from: SimTime, mut f: impl FnMut(&Sample)) -> Result<usize> {
        let tree = self.db.open_tree("live_history")?;
        let start = Self::live_key(node, from.0 / HISTORY_BLOCK_MS * HISTORY_BLOCK_MS, 0);
        let end = Self::live_key(node, u64::MAX, u64::MAX);
        let mut block_samples: Vec<Sample> = Vec::new();
        let mut current = None;
        let mut n = 0;
        let mut emit = |samples: &mut Vec<Sample>, n: &mut usize| {
            sort_unique(samples);
            for s in samples.drain(..).filter(|s| s.t >= from) {
                f(&s);
                *n += 1;
            }
        };
        for kv in tree.range(start..=end) {
            let (k, v) = kv?;
            let block = u64::from_be_bytes(k[node.len() + 1..node.len() + 9].try_into()?);
            if current.is_some_and(|b| b != block) {
                emit(&mut block_samples, &mut n);
            }
            current = Some(block);
            block_samples.extend(decode_block(SimTime(block), &v)?);
        }
        emit(&mut block_samples, &mut n);
        Ok(n)
    }

    /// One page of a live node's metric, from `from` (inclusive) to `to` (exclusive).
    pub fn live_history(
        &self,
        node: &str,
        metric_name: &str,
        from: SimTime,
        to: SimTime,
        limit: usize,
    ) -> Result<HistoryPage> {
        if !METRICS.contains(&metric_name) {
            bail!("unknown metric \"{metric_name}\" (one of {})", METRICS.join(", "));
        }
        let tree = self.db.open_tree("live_history")?;
        let limit = limit.clamp(1, MAX_HISTORY_LIMIT);
        let start = Self::live_key(node, from.0 / HISTORY_BLOCK_MS * HISTORY_BLOCK_MS, 0);
        let end = Self::live_key(node, to.0.min(u64::MAX - HISTORY_BLOCK_MS), 0);
        let mut points: Vec<(SimTime, f64)> = Vec::new();
        let mut block_samples: Vec<Sample> = Vec::new();
        let mut current_block = None;
        let flush_block = |samples: &mut Vec<Sample>, points: &mut Vec<(SimTime, f64)>| -> Option<SimTime> {
            sort_unique(samples);
            for s in samples.drain(..) {
                if s.t < from || s.t >= to {
                    continue;
                }
                if points.len() == limit {
                    return Some(s.t);
                }
                if let Some(x) = metric(&s, metric_name) {
                    points.push((s.t, x));
                }
            }
            None
        };
        for kv in tree.range(start..end) {
            let (k, v) = kv?;
            let block = u64::from_be_bytes(k[node.len() + 1..node.len() + 9].try_into()?);
            if current_block.is_some_and(|b| b != block)
                && let Some(next) = flush_block(&mut block_samples, &mut points)
            {
                return Ok(HistoryPage { points, next_from: Some(next) });
            }
            current_block = Some(block);
            block_samples.extend(decode_block(SimTime(block), &v)?);
        }
        let next_from = flush_block(&mut block_samples, &mut points);
        Ok(HistoryPage { points, next_from })
    }

    /// Drops a node's live chunks of blocks older than `before`.
    pub fn prune_live(&self, node: &str, before: SimTime) -> Result<usize> {
        let tree = self.db.open_tree("live_history")?;
        let keys: Vec<sled::IVec> = tree
            .range(Self::live_key(node, 0, 0)..Self::live_key(node, before.0 / HISTORY_BLOCK_MS * HISTORY_BLOCK_MS, 0))
            .keys()
            .collect::<Result<_, _>>()?;
        for k in &keys {
            tree.remove(k)?;
        }
        Ok(keys.len())
    }

    /// An operator's resolution of a live fault, kept across restarts.
    /// The audit log of the store.
    /// A fleet's acknowledged cycles.
    pub fn fleet_cycles(&self) -> Result<fleet::FleetCycles> {
        fleet::FleetCycles::open(&self.db)
    }

    pub fn audit(&self) -> Result<audit::Audit> {
        audit::Audit::open(&self.db)
    }

    pub fn put_resolution(&self, fault_id: &str, record: &serde_json::Value) -> Result<()> {
        self.db.open_tree("resolutions")?.insert(fault_id.as_bytes(), serde_json::to_vec(record)?)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn resolution(&self, fault_id: &str) -> Result<Option<serde_json::Value>> {
        Ok(match self.db.open_tree("resolutions")?.get(fault_id.as_bytes())? {
            Some(v) => Some(serde_json::from_slice(&v)?),
            None => None,
        })
    }
}

/// Auto-created live nodes, kept across restarts.
impl Store {
    pub fn put_auto_node(&self, id: &str, record: &serde_json::Value) -> Result<()> {
        self.db.open_tree("auto_nodes")?.insert(id.as_bytes(), serde_json::to_vec(record)?)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn auto_nodes(&self) -> Result<Vec<serde_json::Value>> {
        self.db.open_tree("auto_nodes")?.iter().values().map(|v| Ok(serde_json::from_slice(&v?)?)).collect()
    }
}

/// Sorts one history block's samples by time and drops exact copies: a message delivered again
/// (MQTT after a reconnect, a gateway's retry) is kept once, while two different samples of the
/// same millisecond are both kept.
fn sort_unique(samples: &mut Vec<Sample>) {
    // By time, then by content, so that copies are neighbours.
    let bits = |s: &Sample| {
        (
            [s.setpoint_pct, s.position_pct, s.torque_nm, s.power_w, s.temperature_c].map(f32::to_bits),
            s.rotation,
            s.signal_quality.map(f32::to_bits),
        )
    };
    samples.sort_by(|a, b| a.t.cmp(&b.t).then_with(|| bits(a).cmp(&bits(b))));
    samples.dedup_by(|a, b| a == b);
}
