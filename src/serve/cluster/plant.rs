//! The plant role: every shard's summaries rolled up into the facility's status, served with the
//! facility server's reads (`/api/status`, `/api/facility`, `/api/nodes/{id}`, `/api/faults`),
//! so the visualizer and the agent's reads work against it unchanged; a node's history, fault
//! history and diagnosis, and a fault's resolution, are passed to the shard that runs the node.
//! A shard silent for `offline_after_s` has its subtree shown `offline` until it speaks again.

use super::{Cluster, ShardSummary};
use crate::live::{Live, clip};
use crate::serve::api::{FaultsQuery, Served, authorize_cfg, by_severity, error, fault_list, status_view};
use crate::serve::{Access, ServeConfig};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use twinfault_core::config::{Facility, NodeRef};
use twinfault_core::ledger::Rank;
use twinfault_core::time::parse_timestamp_ms;
use twinfault_core::types::{SimTime, Status};
use twinfault_wire::FaultView;

/// What the plant knows of one shard.
struct ShardState {
    name: String,
    bind: String,
    ahus: Vec<usize>,
    last: Option<(Instant, ShardSummary)>,
    /// Summaries received.
    received: u64,
    /// Times it went from online to offline.
    went_offline: u64,
    was_online: bool,
}

/// The roll-up: the facility's statuses as the shards last reported them.
pub struct Rollup {
    facility: Arc<Facility>,
    /// Statuses and phases by node (the same view a facility's server keeps).
    live: Live,
    shards: RwLock<Vec<ShardState>>,
    /// AHU index → shard index.
    owner: Vec<usize>,
    offline_after: Duration,
}

/// `GET /api/cluster`: each shard as the plant sees it.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ShardView {
    pub name: String,
    pub online: bool,
    pub ahus: Vec<String>,
    /// Seconds since its last summary (none yet: `null`).
    pub silent_s: Option<f64>,
    pub summaries: u64,
    pub went_offline: u64,
    pub ingested: Option<u64>,
    pub open_faults: Option<usize>,
}

impl Rollup {
    pub fn new(cluster: &Cluster, facility: Arc<Facility>, parts: &[Vec<usize>]) -> Rollup {
        let mut owner = vec![0; facility.ahus.len()];
        for (k, part) in parts.iter().enumerate() {
            for &h in part {
                owner[h] = k;
            }
        }
        let shards = cluster
            .shards
            .iter()
            .zip(parts)
            .map(|(s, part)| ShardState {
                name: s.name.clone(),
                bind: s.bind.clone(),
                ahus: part.clone(),
                last: None,
                received: 0,
                went_offline: 0,
                was_online: false,
            })
            .collect();
        let live = Live::new(Arc::clone(&facility));
        // Nothing has reported yet: every AHU and device is offline until its shard speaks.
        for h in 0..facility.ahus.len() {
            live.set_status(NodeRef::Ahu(h), Status::Offline);
        }
        for i in 0..facility.actuators.len() {
            live.set_status(NodeRef::Actuator(i), Status::Offline);
        }
        let r = Rollup {
            facility,
            live,
            shards: RwLock::new(shards),
            owner,
            offline_after: Duration::from_secs_f64(cluster.offline_after_s),
        };
        r.roll_plant();
        r
    }

    /// Takes one summary in.
    pub fn apply(&self, s: ShardSummary) {
        let mut shards = self.shards.write().expect("not poisoned");
        let Some(k) = shards.iter().position(|x| x.name == s.shard) else {
            tracing::warn!(shard = %clip(&s.shard), "summary from a shard the cluster file does not name");
            return;
        };
        let f = &self.facility;
        let st = &mut shards[k];
        // Every actuator of the shard healthy unless the summary says otherwise (unknown when the
        // summary could not list every alarm).
        let unlisted = if s.statuses_truncated { Status::Unknown } else { Status::Healthy };
        for &h in &st.ahus {
            for &c in &f.ahus[h].children {
                self.live.set_status(NodeRef::Actuator(c), unlisted);
            }
        }
        for (id, status) in &s.statuses {
            match f.node(id) {
                Some(n @ NodeRef::Ahu(h)) if self.owner[h] == k => self.live.set_status(n, *status),
                Some(n @ NodeRef::Actuator(i)) if self.owner[f.actuators[i].ahu] == k => {
                    self.live.set_status(n, *status)
                }
                _ => tracing::warn!(shard = %st.name, node = %clip(id), "summary names a node outside the shard"),
            }
        }
        for (id, phase) in &s.phases {
            if let Some(NodeRef::Ahu(h)) = f.node(id)
                && self.owner[h] == k
            {
                self.live.set_phase(h, *phase);
            }
        }
        if !st.was_online {
            tracing::info!(shard = %st.name, "shard online");
        }
        st.was_online = true;
        st.received += 1;
        st.last = Some((Instant::now(), s));
        drop(shards);
        self.roll_plant();
    }

    /// Marks the subtrees of shards silent for `offline_after_s` offline.
    pub fn sweep(&self) {
        let mut shards = self.shards.write().expect("not poisoned");
        let f = &self.facility;
        for st in shards.iter_mut() {
            let online = st.last.as_ref().is_some_and(|(at, _)| at.elapsed() < self.offline_after);
            if !online {
                for &h in &st.ahus {
                    self.live.set_status(NodeRef::Ahu(h), Status::Offline);
                    for &c in &f.ahus[h].children {
                        self.live.set_status(NodeRef::Actuator(c), Status::Offline);
                    }
                }
                if st.was_online {
                    st.went_offline += 1;
                    tracing::warn!(shard = %st.name, "shard silent: its subtree is offline");
                }
                st.was_online = false;
            }
        }
        drop(shards);
        self.roll_plant();
    }

    fn roll_plant(&self) {
        if self.facility.plant.is_some() {
            let ahus = (0..self.facility.ahus.len()).map(|h| self.live.status(NodeRef::Ahu(h)));
            self.live.set_status(NodeRef::Plant, Status::roll_up(Status::Healthy, ahus));
        }
    }

    fn online(&self, st: &ShardState) -> bool {
        st.was_online && st.last.as_ref().is_some_and(|(at, _)| at.elapsed() < self.offline_after)
    }

    /// Open faults of every shard (as last reported; a silent shard's as it last said), worst first.
    pub fn open_faults(&self) -> Vec<FaultView> {
        let shards = self.shards.read().expect("not poisoned");
        let mut all: Vec<FaultView> =
            shards.iter().filter_map(|s| s.last.as_ref()).flat_map(|(_, s)| s.open_faults.iter().cloned()).collect();
        let opened = |f: &FaultView| SimTime(parse_timestamp_ms(&f.opened_at).unwrap_or(0).max(0) as u64);
        all.sort_by(|a, b| {
            Rank::of(a.severity, a.confidence, opened(a), &a.id).cmp(&Rank::of(
                b.severity,
                b.confidence,
                opened(b),
                &b.id,
            ))
        });
        all
    }

    pub fn resolved_faults(&self, limit: usize) -> Vec<FaultView> {
        let shards = self.shards.read().expect("not poisoned");
        let mut all: Vec<FaultView> =
            shards.iter().filter_map(|s| s.last.as_ref()).flat_map(|(_, s)| s.resolved.iter().cloned()).collect();
        // Latest resolved first.
        all.sort_by(|a, b| b.resolved_at.cmp(&a.resolved_at).then(a.id.cmp(&b.id)));
        all.truncate(limit);
        all
    }

    pub fn shard_views(&self) -> Vec<ShardView> {
        let shards = self.shards.read().expect("not poisoned");
        shards
            .iter()
            .map(|s| ShardView {
                name: s.name.clone(),
                online: self.online(s),
                ahus: s.ahus.iter().map(|&h| self.facility.ahus[h].id.clone()).collect(),
                silent_s: s.last.as_ref().map(|(at, _)| at.elapsed().as_secs_f64()),
                summaries: s.received,
                went_offline: s.went_offline,
                ingested: s.last.as_ref().map(|(_, x)| x.ingested),
                open_faults: s.last.as_ref().map(|(_, x)| x.open_faults_total.max(x.open_faults.len())),
            })
            .collect()
    }

    /// The address of the shard that runs `node`.
    fn shard_of(&self, node: NodeRef) -> Option<String> {
        let h = match node {
            NodeRef::Ahu(h) => h,
            NodeRef::Actuator(i) => self.facility.actuators[i].ahu,
            NodeRef::Plant => return None,
        };
        Some(self.shards.read().expect("not poisoned")[self.owner[h]].bind.clone())
    }
}

/// The plant's server state.
pub struct PlantState {
    pub cfg: Arc<ServeConfig>,
    pub rollup: Arc<Rollup>,
    /// Bodies being read, against `max_inflight_bytes` (read only after the token).
    pub inflight: Arc<crate::serve::body::Inflight>,
}

type State = web::Data<PlantState>;

/// The plant's routes.
pub fn routes(c: &mut web::ServiceConfig) {
    c.route("/metrics", web::get().to(metrics))
        .route("/api/status", web::get().to(status))
        .route("/api/facility", web::get().to(facility))
        .route("/api/cluster", web::get().to(cluster))
        .route("/api/nodes/{id}", web::get().to(node))
        .route("/api/nodes/{id}/{what}", web::get().to(pass_node))
        .route("/api/faults", web::get().to(faults))
        .route("/api/faults/{id}/resolve", web::post().to(pass_resolve));
}

/// Prometheus text: each shard's state as the plant sees it, open faults by severity.
async fn metrics(st: State) -> HttpResponse {
    let views = st.rollup.shard_views();
    let mut out = String::new();
    let mut family = |name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in rows {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    let per_shard = |f: &dyn Fn(&ShardView) -> f64| -> Vec<(String, f64)> {
        views.iter().map(|v| (format!("{{shard=\"{}\"}}", v.name), f(v))).collect()
    };
    family(
        "twinfault_shard_online",
        "1 while the shard's summaries arrive.",
        "gauge",
        per_shard(&|v| f64::from(u8::from(v.online))),
    );
    family(
        "twinfault_shard_summaries_total",
        "Summaries received from the shard.",
        "counter",
        per_shard(&|v| v.summaries as f64),
    );
    family(
        "twinfault_shard_offline_total",
        "Times the shard went silent.",
        "counter",
        per_shard(&|v| v.went_offline as f64),
    );
    family(
        "twinfault_shard_ingested_samples",
        "Samples the shard has stored since it started (its last summary).",
        "gauge",
        per_shard(&|v| v.ingested.unwrap_or(0) as f64),
    );
    family("twinfault_open_faults", "Open faults, by severity.", "gauge", by_severity(&st.rollup.open_faults()));
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}

async fn facility(req: HttpRequest, st: State) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    HttpResponse::Ok().json(st.rollup.facility.layout())
}

async fn cluster(req: HttpRequest, st: State) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    HttpResponse::Ok().json(st.rollup.shard_views())
}

async fn status(req: HttpRequest, st: State) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    HttpResponse::Ok().json(status_view(&st.rollup.live, st.rollup.open_faults()))
}

async fn node(req: HttpRequest, path: web::Path<String>, st: State) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    let Some(mut v) = st.rollup.live.node_view(&path) else {
        return error(StatusCode::NOT_FOUND, format!("unknown node \"{}\"", clip(&path)), vec![]);
    };
    let open = st.rollup.open_faults();
    v.open_faults = Some(open.into_iter().filter(|f| f.node == *path || f.device.as_deref() == Some(&path)).collect());
    HttpResponse::Ok().json(v)
}

async fn faults(req: HttpRequest, q: web::Query<FaultsQuery>, st: State) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    fault_list(&q, |n| st.rollup.open_faults().into_iter().take(n).collect(), |n| st.rollup.resolved_faults(n))
}

/// `GET /api/nodes/{id}/{history,fault-history,diagnosis}` from the shard that runs the node.
async fn pass_node(req: HttpRequest, path: web::Path<(String, String)>, st: State) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Read) {
        return r;
    }
    let (id, what) = path.into_inner();
    if !["history", "fault-history", "diagnosis"].contains(&what.as_str()) {
        return error(StatusCode::NOT_FOUND, format!("no route GET {}", clip(req.path())), vec![]);
    }
    let Some(n) = st.rollup.facility.node(&id) else {
        return error(StatusCode::NOT_FOUND, format!("unknown node \"{}\"", clip(&id)), vec![]);
    };
    let Some(bind) = st.rollup.shard_of(n) else {
        let msg = format!("\"{id}\" is the plant: ask for its AHUs or devices");
        return error(StatusCode::UNPROCESSABLE_ENTITY, msg, vec![]);
    };
    pass(&req, "GET", &bind, None).await
}

/// `POST /api/faults/{id}/resolve` to the shard whose node the open fault is on.
async fn pass_resolve(req: HttpRequest, path: web::Path<String>, payload: web::Payload, st: State) -> HttpResponse {
    if let Err(r) = authorize_cfg(&req, &st.cfg, Access::Write) {
        return r;
    }
    // The token first, then the body (small, against the deadline and the in-flight budget).
    let (body, _held) = match crate::serve::body::read(&req, payload, &st.cfg, &st.inflight, 256 * 1024).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(f) = st.rollup.open_faults().into_iter().find(|f| f.id == *path) else {
        return error(StatusCode::NOT_FOUND, format!("no open fault \"{}\"", clip(&path)), vec![]);
    };
    let Some(bind) = st.rollup.facility.node(&f.node).and_then(|n| st.rollup.shard_of(n)) else {
        return error(StatusCode::NOT_FOUND, format!("the node of \"{}\" is in no shard", clip(&path)), vec![]);
    };
    pass(&req, "POST", &bind, Some(body.to_vec())).await
}

/// The request passed to a shard with its path, query and token; the shard's reply back.
async fn pass(req: &HttpRequest, method: &'static str, bind: &str, body: Option<Vec<u8>>) -> HttpResponse {
    let url = format!("http://{bind}{}", req.uri().path_and_query().map_or("", |p| p.as_str()));
    let auth =
        req.headers().get(actix_web::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let answer = web::block(move || -> Result<(u16, Vec<u8>)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = match (method, body) {
            ("POST", Some(b)) => {
                let mut r = agent.post(&url).header("content-type", "application/json");
                if let Some(a) = &auth {
                    r = r.header("authorization", a);
                }
                r.send(&b[..])?
            }
            _ => {
                let mut r = agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("authorization", a);
                }
                r.call()?
            }
        };
        let status = resp.status().as_u16();
        let body = resp.body_mut().with_config().limit(64 * 1024 * 1024).read_to_vec()?;
        Ok((status, body))
    })
    .await;
    match answer {
        Ok(Ok((code, body))) => HttpResponse::build(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY))
            .content_type("application/json")
            .body(body),
        Ok(Err(e)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, format!("the shard at {bind} did not answer: {e:#}"), vec![])
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("could not ask the shard: {e}"), vec![]),
    }
}

/// Runs the plant role until it is stopped.
/// `cfg`'s bind is the plant's.
pub fn serve(cluster: Cluster, cfg: ServeConfig) -> Result<()> {
    let facility = Arc::new(crate::serve::facility(&cluster.facility_path, &cfg)?);
    let parts = cluster.check(&facility)?;
    let rollup = Arc::new(Rollup::new(&cluster, Arc::clone(&facility), &parts));
    let cfg = Arc::new(cfg);
    eprintln!(
        "twinfault serve: plant of {} ({} shards, {} AHUs, {} actuators), NATS {}, listening on http://{}",
        facility.name,
        cluster.shards.len(),
        facility.ahus.len(),
        facility.actuators.len(),
        cluster.nats.join(","),
        cfg.bind
    );
    actix_web::rt::System::new().block_on(async move {
        let client = super::connect(&cluster, "twinfault plant").await?;
        let mut sub = client.subscribe(cluster.summary_filter()).await.context("subscribing to summaries")?;
        {
            let rollup = Arc::clone(&rollup);
            actix_web::rt::spawn(async move {
                while let Some(m) = sub.next().await {
                    match serde_json::from_slice::<ShardSummary>(&m.payload) {
                        Ok(s) => rollup.apply(s),
                        Err(e) => tracing::warn!(subject = %clip(&m.subject), "summary not understood: {e}"),
                    }
                }
                tracing::error!("the summary subscription ended");
            });
        }
        {
            let rollup = Arc::clone(&rollup);
            let every = Duration::from_secs_f64(cluster.summary_period_s.min(1.0));
            actix_web::rt::spawn(async move {
                loop {
                    actix_web::rt::time::sleep(every).await;
                    rollup.sweep();
                }
            });
        }
        let inflight = Arc::new(crate::serve::body::Inflight::new(cfg.workers));
        let state = web::Data::new(PlantState { cfg: Arc::clone(&cfg), rollup, inflight });
        crate::serve::api::listen(cfg, Served::Plant(state)).await
    })
}
