//! A shard's side of the cluster: its AHUs' telemetry from the stream into the one ingest path
//! (acknowledged to JetStream only after the group commit), its summaries out, and HTTP ingest
//! forwarded to the stream for whichever shard owns the node.

use super::{Cluster, OPEN_IN_SUMMARY, RESOLVED_IN_SUMMARY, STATUSES_IN_SUMMARY, ShardSummary};
use crate::clock::now_ms;
use crate::live::Live;
use crate::serve::admit::{Ingest, Refused};
use crate::serve::{WriteJob, Writer};
use anyhow::{Context, Result};
use async_nats::jetstream;
use futures_util::{FutureExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use twinfault_core::config::{Facility, NodeRef};
use twinfault_core::types::Status;

/// Messages one AHU's consumer may have out unacknowledged (a burst waits in the stream).
const MAX_ACK_PENDING: i64 = 20_000;
/// How long JetStream waits for a message's acknowledgement before delivering it again.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// Samples in one message HTTP ingest publishes (a sample is about 200 bytes of JSON).
const PER_MESSAGE: usize = 2_000;
/// Messages taken into one write job at most.
const BATCH: usize = 1_000;

/// A shard's link to the cluster.
#[derive(Clone)]
pub struct Link {
    pub cluster: Arc<Cluster>,
    pub shard: String,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    /// The whole facility: HTTP ingest for any node is checked against it and forwarded.
    pub full: Arc<Facility>,
    /// The forwarder's admission: the whole facility's nodes, no samples of its own.
    pub forward_check: Arc<Ingest>,
}

impl Link {
    /// Connects, and makes sure the stream exists.
    pub async fn open(
        cluster: Arc<Cluster>,
        shard: &str,
        full: Arc<Facility>,
        forward_check: Arc<Ingest>,
    ) -> Result<Link> {
        let client = super::connect(&cluster, &format!("twinfault shard {shard}")).await?;
        let js = jetstream::new(client.clone());
        super::stream(&js, &cluster).await?;
        Ok(Link { cluster, shard: shard.to_string(), client, js, full, forward_check })
    }

    /// Starts one durable consumer per AHU of the shard (`facility` is the shard's subtree).
    pub fn start_consumers(&self, facility: &Facility, ingest: Arc<Ingest>, writer: Writer) {
        for a in &facility.ahus {
            let (link, ingest, writer, ahu) = (self.clone(), Arc::clone(&ingest), writer.clone(), a.id.clone());
            actix_web::rt::spawn(async move {
                loop {
                    if let Err(e) = link.consume(&ahu, &ingest, &writer).await {
                        tracing::warn!(ahu = %ahu, "JetStream consumer: {e:#}; retrying in 1 s");
                    }
                    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    }

    /// One AHU's consumer until its stream of messages ends or fails.
    async fn consume(&self, ahu: &str, ingest: &Arc<Ingest>, writer: &Writer) -> Result<()> {
        use jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
        let c = &self.cluster;
        let stream = self.js.get_stream(&c.stream).await.context("the stream")?;
        let name = c.consumer_name(ahu);
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: c.ahu_filter(ahu),
                    deliver_policy: DeliverPolicy::All,
                    // Each message on its own, once stored. (Not `All`: after a crash, the new
                    // process's first acknowledgement would also cover what the old one had been
                    // delivered and never stored.)
                    ack_policy: AckPolicy::Explicit,
                    // What a killed shard had been delivered and not acknowledged comes again
                    // this long after (a commit takes milliseconds to a second or so).
                    ack_wait: ACK_WAIT,
                    max_ack_pending: MAX_ACK_PENDING,
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("consumer {name}"))?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(BATCH)
            // A pull request lives 5 s and the server beats every 2 s: a consumer whose leader
            // moved (a NATS node lost) pulls again within seconds, not after the default 30.
            .expires(Duration::from_secs(5))
            .heartbeat(Duration::from_secs(2))
            .messages()
            .await
            .context("pulling")?;
        let live = &ingest.live;
        loop {
            // The first message waits; then whatever has already arrived, up to a batch.
            let Some(first) = messages.next().await else { return Ok(()) };
            let mut batch = vec![first.context("a message")?];
            while batch.len() < BATCH {
                match messages.next().now_or_never() {
                    Some(Some(m)) => batch.push(m.context("a message")?),
                    _ => break,
                }
            }
            // Parsed and checked on a blocking thread (as HTTP bodies are), so a burst does not
            // hold up the clock and the summaries on this one.
            let bodies: Vec<(bytes::Bytes, bool, String)> = batch
                .iter()
                .map(|m| {
                    // Delivered before (to a shard that died before acknowledging it): late is fine.
                    let again = m.info().is_ok_and(|i| i.delivered > 1);
                    (m.payload.clone(), again, m.subject.to_string())
                })
                .collect();
            let checker = Arc::clone(ingest);
            let checked = actix_web::rt::task::spawn_blocking(move || {
                let now = now_ms();
                bodies
                    .into_iter()
                    .map(|(body, again, subject)| (checker.check_late(&body, now, again), subject))
                    .collect::<Vec<_>>()
            })
            .await
            .context("checking a batch")?;
            let mut samples = Vec::new();
            for (c, subject) in checked {
                match c.and_then(|c| ingest.admit(c).map_err(|_| unreachable_admit())) {
                    Ok(s) => samples.extend(s),
                    // Refused: counted, logged, and acknowledged with the batch (so the stream
                    // does not deliver it again).
                    Err(r) => {
                        live.reject(nats_reason(&r), r.items() as u64);
                        let first =
                            r.details().first().map(|d| format!("{}: {}", d.path, d.message)).unwrap_or_default();
                        tracing::warn!(subject = %crate::live::clip(&subject), "NATS message refused: {first}");
                    }
                }
            }
            if !samples.is_empty() {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let mut job = WriteJob { samples, ack: tx };
                // Wait for room in the queue: the stream holds the rest.
                loop {
                    match writer.try_send(job) {
                        Ok(()) => break,
                        Err(back) => {
                            job = back;
                            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                match rx.await {
                    Ok(Ok(())) => {}
                    // Not acknowledged: JetStream delivers the batch again after `ack_wait`.
                    Ok(Err(e)) => anyhow::bail!("batch not stored: {e}"),
                    Err(_) => anyhow::bail!("the writer stopped"),
                }
            }
            for m in &batch {
                m.ack().await.map_err(|e| anyhow::anyhow!("acknowledging: {e}"))?;
            }
            live.nats_acked.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }

    /// Publishes the shard's summary every summary period.
    pub fn start_summaries(&self, live: Arc<Live>) {
        let link = self.clone();
        actix_web::rt::spawn(async move {
            let subject = link.cluster.summary_subject(&link.shard);
            let period = Duration::from_secs_f64(link.cluster.summary_period_s);
            let mut seq = 0u64;
            loop {
                seq += 1;
                let s = summary(&link.shard, seq, &live);
                match serde_json::to_vec(&s) {
                    Ok(body) => {
                        if let Err(e) = link.client.publish(subject.clone(), body.into()).await {
                            tracing::warn!("summary not published: {e}");
                        }
                    }
                    Err(e) => tracing::error!("summary not encoded: {e}"),
                }
                actix_web::rt::time::sleep(period).await;
            }
        });
    }

    /// Checks a body against the whole facility (no side effects: run it on a blocking thread)
    /// and groups its objects by the subject of their node.
    pub fn prepare(&self, body: &[u8]) -> Result<Prepared, Refused> {
        let items = crate::telemetry::payload::objects(body).map_err(Refused::NotJson)?;
        let checked = self.forward_check.check_objects(&items, now_ms(), false)?;
        let n = checked.len();
        // Each node's objects, in body order, to that node's subject: the check found each
        // object's node (under whichever of the id's names it came), one sample per object.
        let mut per_node: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
        for (item, i) in items.into_iter().zip(checked.actuators()) {
            let a = &self.full.actuators[i];
            per_node.entry(self.cluster.telemetry_subject(&self.full.ahus[a.ahu].id, &a.id)).or_default().push(item);
        }
        // At most PER_MESSAGE samples a message, well under NATS's 1 MB default payload limit.
        let messages = per_node
            .into_iter()
            .flat_map(|(subject, items)| {
                items
                    .chunks(PER_MESSAGE)
                    .map(|c| (subject.clone(), serde_json::to_vec(c).unwrap_or_default()))
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(Prepared { samples: n, messages })
    }

    /// Publishes a prepared body; `Ok(n)` once JetStream has stored all of it.
    pub async fn publish(&self, p: Prepared) -> Result<usize> {
        let mut acks = Vec::with_capacity(p.messages.len());
        for (subject, payload) in p.messages {
            acks.push(self.js.publish(subject, payload.into()).await.context("publishing to the stream")?);
        }
        for a in acks {
            a.await.context("the stream did not store the samples")?;
        }
        Ok(p.samples)
    }
}

/// A checked body, as the messages to publish.
pub struct Prepared {
    samples: usize,
    messages: Vec<(String, Vec<u8>)>,
}

/// `Ingest::admit` makes no nodes in cluster mode (`auto_create` is refused), so it cannot fail
/// there; should it, the batch is refused as a whole.
fn unreachable_admit() -> Refused {
    Refused::NotJson(crate::telemetry::payload::FieldError {
        path: "nodeId".into(),
        message: "could not create a node (auto_create is off in a cluster)".into(),
    })
}

/// The reason a refused NATS message is counted under.
fn nats_reason(r: &Refused) -> &'static str {
    match r {
        Refused::NotJson(_) => "nats_malformed",
        Refused::Checked { .. } => "nats_invalid",
        Refused::Simulated { .. } => "simulated_node",
    }
}

/// The shard's summary now.
pub fn summary(shard: &str, seq: u64, live: &Live) -> ShardSummary {
    let f = live.facility();
    let mut statuses: Vec<(String, Status)> =
        (0..f.ahus.len()).map(|h| (f.ahus[h].id.clone(), live.status(NodeRef::Ahu(h)))).collect();
    let mut alarms = (0..f.actuators.len())
        .map(|i| (i, live.status(NodeRef::Actuator(i))))
        .filter(|(_, s)| *s != Status::Healthy)
        .map(|(i, s)| (f.actuators[i].id.clone(), s));
    let room = STATUSES_IN_SUMMARY.saturating_sub(statuses.len());
    statuses.extend(alarms.by_ref().take(room));
    let statuses_truncated = alarms.next().is_some();
    let mut open_faults = live.open_faults();
    let open_faults_total = open_faults.len();
    open_faults.truncate(OPEN_IN_SUMMARY);
    ShardSummary {
        shard: shard.to_string(),
        seq,
        time_ms: now_ms(),
        statuses,
        statuses_truncated,
        phases: (0..f.ahus.len()).map(|h| (f.ahus[h].id.clone(), live.phase(h))).collect(),
        open_faults,
        open_faults_total,
        resolved: live.resolved_faults(RESOLVED_IN_SUMMARY),
        ingested: live.ingested.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use crate::live::Live;
    use std::sync::Arc;
    use twinfault_core::config::NodeRef;
    use twinfault_core::types::Status;

    /// A shard whose every device is in alarm still gets its summary under NATS's 1 MB: the
    /// statuses are capped and say so (the plant then shows the unlisted ones unknown).
    #[test]
    fn a_floor_of_alarms_fits_one_summary() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("twins/campus.toml");
        let size = twinfault_core::scenario::CampusSize { ahus: 250, actuators_per_ahu: 100 };
        let f = Arc::new(crate::load::facility(&path, Some(size)).unwrap());
        let live = Live::new(Arc::clone(&f));
        for i in 0..f.actuators.len() {
            live.set_status(NodeRef::Actuator(i), Status::Offline);
        }
        let s = super::summary("s1", 1, &live);
        assert!(s.statuses_truncated);
        assert_eq!(s.statuses.len(), super::STATUSES_IN_SUMMARY);
        assert!(s.statuses[..250].iter().all(|(id, _)| id.starts_with("ahu-")), "every AHU comes first");
        assert!(serde_json::to_vec(&s).unwrap().len() < 1024 * 1024);
        // A shard with few alarms lists them all.
        for i in 100..f.actuators.len() {
            live.set_status(NodeRef::Actuator(i), Status::Healthy);
        }
        let s = super::summary("s1", 2, &live);
        assert!(!s.statuses_truncated);
        assert_eq!(s.statuses.len(), 250 + 100);
    }
}
