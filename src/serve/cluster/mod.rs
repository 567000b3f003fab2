//! A facility served by several processes over NATS JetStream: a cluster file assigns AHU subtrees
//! to shards; each shard (`twinfault serve --cluster FILE --shard NAME`) runs its subtree's twins
//! and store, consumes its AHUs' telemetry from a replicated JetStream stream and publishes its
//! AHUs' summaries; the plant role (`--plant`) rolls the summaries up and serves the
//! facility-wide reads.
//!
//! ```text
//!  gateway ──NATS publish / MQTT (the NATS server's) / HTTP to any shard──▶ stream (file, R3)
//!      subjects  <prefix>.telemetry.<site>.<ahu>.<node>
//!  stream ──durable consumer per AHU (ack after the shard's group commit)──▶ shard: twins, sled
//!  shard ──<prefix>.summary.<site>.<shard> every summary period──▶ plant: roll-up, API
//! ```
//!
//! Parent-child messages stay inside a shard (its AHUs and their actuators are its actors); only
//! summaries cross. A consumer is named after its AHU, not its shard, so an AHU moved to another
//! shard takes its place in the stream with it.

pub mod plant;
pub mod shard;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use twinfault_core::config::{ConfigError, Facility, parse_toml};
use twinfault_core::types::{Phase, Status};
use twinfault_wire::FaultView;

/// The cluster file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterDoc {
    facility: String,
    site: String,
    nats: Vec<String>,
    /// The NATS user and password every role connects with (the servers' `authorization`).
    #[serde(default)]
    nats_user: Option<String>,
    #[serde(default)]
    nats_password: Option<String>,
    /// Or a token.
    #[serde(default)]
    nats_token: Option<String>,
    #[serde(default = "default_stream")]
    stream: String,
    #[serde(default = "default_replicas")]
    replicas: usize,
    #[serde(default = "default_prefix")]
    subject_prefix: String,
    #[serde(default = "default_summary")]
    summary_period_s: f64,
    #[serde(default = "default_offline")]
    offline_after_s: f64,
    #[serde(default = "default_max_age")]
    max_age_s: f64,
    plant: PlantDef,
    shards: Vec<ShardDef>,
}

fn default_stream() -> String {
    "TWINFAULT_TELEMETRY".into()
}
fn default_replicas() -> usize {
    3
}
fn default_prefix() -> String {
    "twinfault".into()
}
fn default_summary() -> f64 {
    1.0
}
fn default_offline() -> f64 {
    5.0
}
fn default_max_age() -> f64 {
    7.0 * 86_400.0
}

/// `[plant]`: where the plant role listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantDef {
    pub bind: String,
}

/// `[[shards]]`: one shard's AHUs, address and store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardDef {
    pub name: String,
    pub ahus: Vec<String>,
    pub bind: String,
    /// Store directory, relative to the cluster file.
    pub store: PathBuf,
}

/// A checked cluster file with its facility.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The facility file (resolved against the cluster file's folder).
    pub facility_path: PathBuf,
    pub site: String,
    pub nats: Vec<String>,
    pub nats_auth: NatsAuth,
    pub stream: String,
    pub replicas: usize,
    pub prefix: String,
    pub summary_period_s: f64,
    pub offline_after_s: f64,
    pub max_age_s: f64,
    pub plant: PlantDef,
    pub shards: Vec<ShardDef>,
}

/// How the roles authenticate to NATS.
#[derive(Clone, PartialEq, Eq)]
pub enum NatsAuth {
    None,
    UserPassword(String, String),
    Token(String),
}

impl std::fmt::Debug for NatsAuth {
    /// Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword(u, _) => write!(f, "UserPassword({u}, …)"),
            NatsAuth::Token(_) => f.write_str("Token(…)"),
        }
    }
}

/// Whether `s` may be one token of a NATS subject (and of an MQTT topic that maps onto one):
/// no `.`, `*`, `>`, `/`, `#`, `+` or whitespace.
pub fn subject_token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || ".*>/#+".contains(c))
}

impl Cluster {
    /// Reads and checks a cluster file (its own keys; [`Cluster::check`] checks it against the
    /// facility).
    pub fn load(path: &Path) -> Result<Cluster> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {label}"))?;
        let d: ClusterDoc = parse_toml(&text, &label)?;
        let bad = |k: &str, m: String| -> anyhow::Error { ConfigError::new(&label, k, m).locate(&text).into() };
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok(&d.site) {
            return Err(bad("site", format!("\"{}\" must be letters, digits, '-' or '_'", d.site)));
        }
        if !name_ok(&d.stream) {
            return Err(bad("stream", format!("\"{}\" must be letters, digits, '-' or '_'", d.stream)));
        }
        if !d.subject_prefix.split('.').all(name_ok) {
            return Err(bad("subject_prefix", format!("\"{}\" is not a subject prefix", d.subject_prefix)));
        }
        if d.nats.is_empty() {
            return Err(bad("nats", "name at least one NATS server, e.g. [\"nats://127.0.0.1:4222\"]".into()));
        }
        if !(1..=5).contains(&d.replicas) {
            return Err(bad("replicas", format!("{} is outside 1..=5 (JetStream's limit)", d.replicas)));
        }
        if !(d.summary_period_s >= 0.1 && d.summary_period_s <= 60.0) {
            return Err(bad("summary_period_s", "must be within 0.1..=60".into()));
        }
        if !(d.offline_after_s.is_finite() && d.offline_after_s >= 2.0 * d.summary_period_s) {
            return Err(bad("offline_after_s", "must be at least two summary periods".into()));
        }
        if !(d.max_age_s.is_finite() && d.max_age_s >= 60.0) {
            return Err(bad("max_age_s", "must be at least 60".into()));
        }
        if d.shards.is_empty() {
            return Err(bad("shards", "a cluster needs at least one [[shards]]".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, s) in d.shards.iter().enumerate() {
            if !name_ok(&s.name) {
                return Err(bad(
                    &format!("shards[{i}].name"),
                    format!("\"{}\" must be letters, digits, '-' or '_'", s.name),
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(bad(&format!("shards[{i}].name"), format!("duplicate shard \"{}\"", s.name)));
            }
            if s.ahus.is_empty() {
                return Err(bad(&format!("shards[{i}].ahus"), format!("shard \"{}\" has no AHUs", s.name)));
            }
        }
        let nats_auth = match (d.nats_user, d.nats_password, d.nats_token) {
            (None, None, None) => NatsAuth::None,
            (Some(u), Some(p), None) => NatsAuth::UserPassword(u, p),
            (None, None, Some(t)) => NatsAuth::Token(t),
            _ => {
                return Err(bad(
                    "nats_user",
                    "give nats_user with nats_password, or nats_token, or none of them".into(),
                ));
            }
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let shards = d.shards.into_iter().map(|s| ShardDef { store: dir.join(&s.store), ..s }).collect();
        Ok(Cluster {
            facility_path: dir.join(&d.facility),
            site: d.site,
            nats: d.nats,
            nats_auth,
            stream: d.stream,
            replicas: d.replicas,
            prefix: d.subject_prefix,
            summary_period_s: d.summary_period_s,
            offline_after_s: d.offline_after_s,
            max_age_s: d.max_age_s,
            plant: d.plant,
            shards,
        })
    }

    /// Checks the file against its facility: every AHU in exactly one shard, every id a subject
    /// token. Returns each shard's AHU indices.
    pub fn check(&self, facility: &Facility) -> Result<Vec<Vec<usize>>> {
        let mut owner: Vec<Option<&str>> = vec![None; facility.ahus.len()];
        let mut parts = Vec::with_capacity(self.shards.len());
        for s in &self.shards {
            let mut part = Vec::new();
            for id in &s.ahus {
                let Some(h) = facility.ahus.iter().position(|a| &a.id == id) else {
                    bail!("cluster: shard \"{}\" names \"{id}\", which is not an AHU of {}", s.name, facility.name);
                };
                if let Some(other) = owner[h] {
                    bail!("cluster: AHU \"{id}\" is in shard \"{other}\" and in shard \"{}\"", s.name);
                }
                owner[h] = Some(&s.name);
                part.push(h);
            }
            parts.push(part);
        }
        if let Some(h) = owner.iter().position(Option::is_none) {
            bail!("cluster: AHU \"{}\" is in no shard (every AHU needs one)", facility.ahus[h].id);
        }
        let ids = facility.ahus.iter().map(|a| &a.id).chain(facility.actuators.iter().map(|a| &a.id));
        for id in ids {
            if !subject_token(id) {
                bail!("cluster: node \"{id}\" cannot be a NATS subject token (no '.', '*', '>', '#' or '+')");
            }
        }
        Ok(parts)
    }

    pub fn shard(&self, name: &str) -> Result<(usize, &ShardDef)> {
        self.shards.iter().enumerate().find(|(_, s)| s.name == name).with_context(|| {
            let known: Vec<&str> = self.shards.iter().map(|s| s.name.as_str()).collect();
            format!("cluster: no shard \"{name}\" (the file has {})", known.join(", "))
        })
    }

    /// The subject a node's telemetry is published to.
    pub fn telemetry_subject(&self, ahu: &str, node: &str) -> String {
        format!("{}.telemetry.{}.{ahu}.{node}", self.prefix, self.site)
    }

    /// Every telemetry subject of the site's stream.
    pub fn telemetry_subjects(&self) -> String {
        format!("{}.telemetry.{}.>", self.prefix, self.site)
    }

    /// The filter of one AHU's consumer.
    pub fn ahu_filter(&self, ahu: &str) -> String {
        format!("{}.telemetry.{}.{ahu}.>", self.prefix, self.site)
    }

    /// The durable consumer of one AHU's telemetry.
    pub fn consumer_name(&self, ahu: &str) -> String {
        format!("{}-{ahu}", self.site)
    }

    pub fn summary_subject(&self, shard: &str) -> String {
        format!("{}.summary.{}.{shard}", self.prefix, self.site)
    }

    pub fn summary_filter(&self) -> String {
        format!("{}.summary.{}.*", self.prefix, self.site)
    }

    /// The NATS servers, parsed.
    pub fn servers(&self) -> Result<Vec<async_nats::ServerAddr>> {
        self.nats
            .iter()
            .map(|u| u.parse().with_context(|| format!("cluster: bad NATS server address \"{u}\"")))
            .collect()
    }
}

/// What a shard publishes about its subtree every summary period.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardSummary {
    pub shard: String,
    /// Counts up from 1 from the shard's start (a restart starts again).
    pub seq: u64,
    pub time_ms: i64,
    /// Every AHU of the shard, and every actuator that is not healthy (the rest are healthy), at
    /// most [`STATUSES_IN_SUMMARY`] of them.
    pub statuses: Vec<(String, Status)>,
    /// More actuators were not healthy than the summary lists: the unlisted ones are unknown.
    #[serde(default)]
    pub statuses_truncated: bool,
    pub phases: Vec<(String, Phase)>,
    /// The worst open faults, at most [`OPEN_IN_SUMMARY`].
    pub open_faults: Vec<FaultView>,
    /// How many faults are open in all.
    #[serde(default)]
    pub open_faults_total: usize,
    /// The most recently resolved faults (at most [`RESOLVED_IN_SUMMARY`]).
    pub resolved: Vec<FaultView>,
    /// Samples the shard has stored since it started.
    pub ingested: u64,
}

/// Resolved faults a summary carries.
pub const RESOLVED_IN_SUMMARY: usize = 50;
/// Open faults a summary carries (the worst; a fault's JSON is about 600 bytes).
pub const OPEN_IN_SUMMARY: usize = 500;
/// Statuses a summary carries (about 30 bytes each): with the faults, well under NATS's 1 MB
/// default payload, so a shard with a floor of alarms still gets its summary out.
pub const STATUSES_IN_SUMMARY: usize = 20_000;

/// Connects to the cluster's NATS servers (any of them; the client reconnects to the others).
pub async fn connect(cluster: &Cluster, name: &str) -> Result<async_nats::Client> {
    let servers = cluster.servers()?;
    let options = match &cluster.nats_auth {
        NatsAuth::None => async_nats::ConnectOptions::new(),
        NatsAuth::UserPassword(u, p) => async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone()),
        NatsAuth::Token(t) => async_nats::ConnectOptions::with_token(t.clone()),
    };
    options
        .name(name)
        // A refused login or a server's error is said, not only retried in silence.
        .event_callback(|e| async move {
            match e {
                async_nats::Event::ServerError(err) => tracing::error!("NATS: {err}"),
                async_nats::Event::ClientError(err) => tracing::error!("NATS: {err}"),
                other => tracing::info!("NATS: {other}"),
            }
        })
        .retry_on_initial_connect()
        .connect(servers)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", cluster.nats.join(", ")))
}

/// The site's telemetry stream, created if it is not there (file storage, `replicas` copies).
/// Retried while the JetStream cluster elects its leader.
pub async fn stream(
    js: &async_nats::jetstream::Context,
    cluster: &Cluster,
) -> Result<async_nats::jetstream::stream::Stream> {
    use async_nats::jetstream::stream::{Config, StorageType};
    let config = Config {
        name: cluster.stream.clone(),
        subjects: vec![cluster.telemetry_subjects()],
        storage: StorageType::File,
        num_replicas: cluster.replicas,
        max_age: std::time::Duration::from_secs_f64(cluster.max_age_s),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(s) => return Ok(s),
            Err(e) if started.elapsed() < std::time::Duration::from_secs(60) => {
                tracing::info!("JetStream stream {} not ready ({e}); retrying", cluster.stream);
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create the JetStream stream {}", cluster.stream)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cluster, subject_token};

    /// `cluster.example.toml` loads, and fits the facility it names: each shard one AHU.
    #[test]
    fn the_example_cluster_file_loads_and_fits_its_facility() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.example.toml");
        let c = Cluster::load(&path).unwrap();
        let f = crate::load::facility(&c.facility_path, None).unwrap();
        assert_eq!(c.check(&f).unwrap(), vec![vec![0], vec![1]]);
        assert_eq!(c.replicas, 3);
        assert_eq!(c.telemetry_subject("ahu-01", "BEL-VNT-001"), "twinfault.telemetry.dc1.ahu-01.BEL-VNT-001");
        assert_eq!(c.consumer_name("ahu-01"), "dc1-ahu-01");
    }

    #[test]
    fn a_nats_login_is_a_user_with_a_password_or_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let load = |auth: &str| {
            let p = dir.path().join("c.toml");
            let text = format!(
                "facility = \"f.toml\"\nsite = \"s\"\nnats = [\"nats://127.0.0.1:4222\"]\n{auth}\n\
                 [plant]\nbind = \"127.0.0.1:1\"\n[[shards]]\nname = \"a\"\nahus = [\"h\"]\nbind = \"127.0.0.1:2\"\nstore = \"s\"\n"
            );
            std::fs::write(&p, text).unwrap();
            Cluster::load(&p)
        };
        assert_eq!(load("").unwrap().nats_auth, super::NatsAuth::None);
        let c = load("nats_user = \"u\"\nnats_password = \"p\"").unwrap();
        assert_eq!(c.nats_auth, super::NatsAuth::UserPassword("u".into(), "p".into()));
        assert!(!format!("{c:?}").contains("\"p\""), "the password is not in a debug print");
        assert_eq!(load("nats_token = \"t\"").unwrap().nats_auth, super::NatsAuth::Token("t".into()));
        let e = load("nats_user = \"u\"").unwrap_err().to_string();
        assert!(e.contains("nats_user") && e.contains("nats_password"), "{e}");
    }

    #[test]
    fn subject_tokens() {
        assert!(subject_token("BEL-CHW-201"));
        assert!(subject_token("ahu_1"));
        for bad in ["", "a.b", "a*", ">", "a b", "a/b", "a#", "a+"] {
            assert!(!subject_token(bad), "{bad}");
        }
    }
}
