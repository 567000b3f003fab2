//! The MQTT subscription: the same payloads and validation as `POST /api/ingest`. A message is
//! acknowledged to the broker (QoS 1, manual acks) only once its samples are on disk; a bad
//! message is counted, logged and acknowledged (so the broker does not resend it forever); a lost
//! connection is retried every second.
//!
//! MQTT 5, so that nothing the broker accepted is lost to a crash or a burst:
//! - a persistent session (stable client id, `clean_start = false`, a session expiry): what the
//!   broker holds for us while we are down, and what we had received but not acknowledged, is
//!   delivered again when we reconnect;
//! - a Receive Maximum of `receive_window` messages: the broker may have that many unacknowledged
//!   messages out to us, so a burst waits in our window (and in TCP) rather than in the broker's
//!   queue, which a stock broker caps at 1,000 and then drops;
//! - a Maximum Packet Size of twice `max_body_bytes`: a message over `max_body_bytes` but within
//!   that is taken in, counted (`mqtt_oversized`) and acknowledged; a bigger one the broker drops
//!   rather than send (a too-big packet would otherwise end the connection, and in a persistent
//!   session be delivered again after every reconnect).

use super::admit::Ingest;
use super::{MqttConfig, WriteJob, Writer};
use crate::clock::now_ms;
use anyhow::{Context, Result, bail};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Messages buffered between the MQTT event loop and us.
const MQTT_CHANNEL: usize = 1024;

fn host_port(url: &str) -> Result<(String, u16)> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .context("the MQTT url must start with mqtt://")?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => {
            (h.to_string(), p.trim_end_matches('/').parse::<u16>().with_context(|| format!("bad port in {url}"))?)
        }
        None => (rest.trim_end_matches('/').to_string(), 1883),
    };
    if host.is_empty() {
        bail!("no host in {url}");
    }
    Ok((host, port))
}

pub fn start(m: MqttConfig, ingest: Arc<Ingest>, writer: Writer) -> Result<()> {
    let (live, cfg) = (Arc::clone(&ingest.live), Arc::clone(&ingest.cfg));
    let (host, port) = host_port(&m.url)?;
    let mut opts = MqttOptions::new(m.client_id.clone(), host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_manual_acks(true);
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(m.session_expiry_s));
    opts.set_receive_maximum(Some(m.receive_window));
    // Up to twice the body limit is taken in and refused (counted); more the broker drops.
    opts.set_max_packet_size(Some(u32::try_from(cfg.max_body_bytes.saturating_mul(2)).unwrap_or(u32::MAX)));
    let (client, mut eventloop) = AsyncClient::new(opts, MQTT_CHANNEL);
    let topic = m.topic.clone();
    // Acknowledgements in arrival order (MQTT asks for it), each once its samples are on disk;
    // the event loop goes on reading meanwhile.
    let (ack_tx, mut ack_rx) =
        tokio::sync::mpsc::unbounded_channel::<(u64, Publish, tokio::sync::oneshot::Receiver<Result<(), String>>)>();
    let acker = client.clone();
    // Which connection a message came on (`Live::mqtt_connections`): an acknowledgement is sent
    // only on that one (after a reconnect the broker delivers an unacknowledged message again,
    // and packet ids may be reused).
    let acked_live = Arc::clone(&live);
    actix_web::rt::spawn(async move {
        while let Some((on, p, rx)) = ack_rx.recv().await {
            match rx.await {
                Ok(Ok(())) if on == acked_live.mqtt_connections.load(Ordering::Acquire) => {
                    let _ = acker.ack(&p).await;
                }
                // Stored, but the connection it came on is gone: the broker delivers it again and
                // the store keeps one copy of an identical sample.
                Ok(Ok(())) => {}
                // Not acknowledged: the broker delivers it again after a reconnect.
                Ok(Err(e)) => tracing::error!("MQTT message not stored: {e}"),
                Err(_) => tracing::error!("MQTT message not stored: the writer stopped"),
            }
        }
    });
    actix_web::rt::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(c))) => {
                    live.mqtt_connections.fetch_add(1, Ordering::AcqRel);
                    tracing::info!(session_present = c.session_present, "MQTT connected; subscribing to {topic}");
                    if let Err(e) = client.subscribe(topic.clone(), QoS::AtLeastOnce).await {
                        tracing::warn!("MQTT subscribe failed: {e}");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    live.mqtt_subscribed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let on = live.mqtt_connections.load(Ordering::Acquire);
                    let topic_name = crate::live::clip(&String::from_utf8_lossy(&p.topic));
                    // A refused message is counted, logged and acknowledged, in its turn among
                    // the acknowledgements (so the broker does not deliver it again).
                    let refuse = |reason: &'static str, n: usize, why: String| {
                        live.reject(reason, n as u64);
                        tracing::warn!(topic = %topic_name, "MQTT message refused: {why}");
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let _ = tx.send(Ok(()));
                        let _ = ack_tx.send((on, ack_of(&p), rx));
                    };
                    if p.payload.len() > cfg.max_body_bytes {
                        refuse(
                            "mqtt_oversized",
                            1,
                            format!("{} bytes, over max_body_bytes = {}", p.payload.len(), cfg.max_body_bytes),
                        );
                        continue;
                    }
                    // The same admission as HTTP (auto-created nodes included).
                    let samples = match ingest.check(&p.payload, now_ms()) {
                        Ok(c) => match ingest.admit(c) {
                            Ok(s) => s,
                            Err(e) => {
                                // Not acknowledged: delivered again after a reconnect.
                                tracing::error!(topic = %topic_name, "MQTT message not admitted: {e:#}");
                                continue;
                            }
                        },
                        Err(r) => {
                            let first =
                                r.details().first().map(|d| format!("{}: {}", d.path, d.message)).unwrap_or_default();
                            refuse(r.mqtt_reason(), r.items(), first);
                            continue;
                        }
                    };
                    // Wait for room in the queue rather than drop: the broker holds the rest.
                    let mut job = {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        (WriteJob { samples, ack: tx }, rx)
                    };
                    loop {
                        match writer.try_send(job.0) {
                            Ok(()) => break,
                            Err(back) => {
                                job.0 = back;
                                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    // Only the packet id is needed to acknowledge: the payload is not kept.
                    let _ = ack_tx.send((on, ack_of(&p), job.1));
                }
                Ok(_) => {}
                Err(e) => {
                    live.mqtt_subscribed.store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!("MQTT connection: {e}; retrying in 1 s");
                    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

/// What acknowledging `p` needs (its id and QoS), without its payload.
fn ack_of(p: &Publish) -> Publish {
    let mut a = Publish::new("", p.qos, bytes::Bytes::new(), None);
    a.pkid = p.pkid;
    a
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_broker_urls() {
        assert_eq!(super::host_port("mqtt://127.0.0.1:1884").unwrap(), ("127.0.0.1".into(), 1884));
        assert_eq!(super::host_port("mqtt://broker").unwrap(), ("broker".into(), 1883));
        assert!(super::host_port("http://x").is_err());
    }
}
