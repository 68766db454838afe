//! Events: durable, at-least-once delivery, in order per topic and site.
//!
//! Publishing writes one queue entry per subscriber enabled at the site (`Tree::EventQueue`,
//! keyed subscriber / site / topic / sequence), in the same atomic write as the publisher's
//! data when it publishes from a `kv` batch (the outbox), else on its own; the event's id is
//! returned once that write is durable. A dispatcher delivers the head of each
//! (subscriber, site, topic) queue, one at a time, so each subscriber sees a topic's events
//! in order; an entry is removed only after its handler succeeded, so a crash at any moment
//! means a redelivery, never a loss (handlers use the event id to be idempotent). A failing
//! handler is retried with exponential backoff, then its event is parked
//! (`Tree::EventParked`) for an administrator, and the queue moves on.
//!
//! The handler acts for the person the publisher served (with the publisher's chain of
//! plugins), or unattended when nobody was behind it. Storms are bounded: an event published
//! by a handler is one level deeper, and beyond [`MAX_DEPTH`] publishing is refused; one call
//! publishes at most [`MAX_PER_CALL`] events, and a plugin at most its per-minute allowance.
//! Every refusal is counted for the administrator.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::instance::{self, Done, Work};
use super::sandbox::{Call, Person, Tally};
use super::{Plugins, Status, latest, now};
use crate::access::{Ctx, Principal, Role};
use crate::storage::{Batch, StorageError, Tree, key};

/// How many events deep a chain of handlers may publish.
pub const MAX_DEPTH: u8 = 4;
/// Events one call (one sandbox) may publish.
pub const MAX_PER_CALL: u32 = 16;
/// Largest payload, bytes.
pub const MAX_PAYLOAD: usize = 64 << 10;
/// The longest wait between two delivery attempts.
const MAX_RETRY_DELAY_MS: i64 = 10 * 60 * 1000;

/// An event as queued for one subscriber.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    pub topic: String,
    pub payload: String,
    pub site: String,
    /// The publishing plugin.
    pub source: String,
    /// 0 for an event published while serving a request; one more for each handler.
    pub depth: u8,
    pub published_at: String,
    /// Who the publisher served: the handler acts for them.
    pub who: Who,
}

/// The context an event carries to its handlers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Who {
    Person {
        person: Box<Person>,
        roles: Vec<Role>,
        patient: Option<String>,
        source: Option<String>,
        via: Option<String>,
    },
    Unattended {
        via: Option<String>,
    },
}

/// A queued (or parked) delivery.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    event: Envelope,
    attempts: u32,
    /// Unix milliseconds before which it is not retried.
    not_before: i64,
    last_error: Option<String>,
}

/// A parked event, as an administrator sees it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parked {
    /// Pass back to retry it.
    pub key: String,
    pub id: String,
    pub topic: String,
    pub site: String,
    pub source: String,
    pub published_at: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// What happened to a plugin's events since the server started.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventStats {
    /// Events it published.
    pub published: u64,
    /// Events delivered to it.
    pub delivered: u64,
    /// Failed deliveries to it that will be retried.
    pub retried: u64,
    /// Events parked after failing every attempt.
    pub parked: u64,
    /// Publishes refused: too deep.
    pub dropped_depth: u64,
    /// Publishes refused: more than one call may publish.
    pub dropped_fan_out: u64,
    /// Publishes refused: over the per-minute allowance.
    pub dropped_rate: u64,
}

/// The dispatcher's shared state.
#[derive(Default)]
pub struct Bus {
    wake: tokio::sync::Notify,
    stats: Mutex<HashMap<String, EventStats>>,
    rate: super::PerMinute,
    started: std::sync::atomic::AtomicBool,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn queue_key(subscriber: &str, site: &str, topic: &str, seq: u64) -> Vec<u8> {
    let mut k = key(&[
        subscriber.as_bytes(),
        site.as_bytes(),
        topic.as_bytes(),
        b"",
    ]);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The (subscriber, site, topic) queue a key belongs to: the key without its sequence.
fn group_of(k: &[u8]) -> &[u8] {
    &k[..k.len().saturating_sub(8)]
}

/// Checks a topic and payload as the publisher `id` sends them.
pub fn check_event(id: &str, topic: &str, payload: &str) -> Result<(), latest::Error> {
    let name = topic.strip_prefix(&format!("{id}.")).unwrap_or("");
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !ok {
        return Err(latest::Error::Invalid(format!(
            "a topic is '{id}.<name>' (lowercase letters, digits, '-', '_', '.')"
        )));
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(latest::Error::TooLarge(format!(
            "an event payload is at most {MAX_PAYLOAD} bytes"
        )));
    }
    if serde_json::from_str::<serde_json::Value>(payload).is_err() {
        return Err(latest::Error::Invalid("the payload is not JSON".into()));
    }
    Ok(())
}

impl Plugins {
    fn count(&self, id: &str, f: impl FnOnce(&mut EventStats)) {
        f(self
            .inner
            .bus
            .stats
            .lock()
            .expect("lock")
            .entry(id.to_string())
            .or_default());
    }

    /// A plugin's event figures since the server started.
    pub fn event_stats(&self, id: &str) -> EventStats {
        self.inner
            .bus
            .stats
            .lock()
            .expect("lock")
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// Check an event `call` wants to publish against the limits (depth, per call, per
    /// minute), and add its queue entries (one per subscriber enabled at the site) to `batch`.
    /// Returns the event's id. Nothing is delivered until `batch` is durable and
    /// [`Plugins::events_committed`] is called.
    pub(crate) fn stage_event(
        &self,
        call: &Call,
        tally: &Tally,
        topic: &str,
        payload: &str,
        batch: &mut Batch,
    ) -> Result<String, latest::Error> {
        let id = call.id().to_string();
        check_event(&id, topic, payload)?;
        if call.event_depth >= MAX_DEPTH {
            self.count(&id, |s| s.dropped_depth += 1);
            return Err(latest::Error::TooLarge(format!(
                "events nest at most {MAX_DEPTH} deep: a handler of an event at depth \
                 {} may not publish another",
                call.event_depth.saturating_sub(1)
            )));
        }
        if tally.events.fetch_add(1, Ordering::Relaxed) >= MAX_PER_CALL {
            self.count(&id, |s| s.dropped_fan_out += 1);
            return Err(latest::Error::TooLarge(format!(
                "one call publishes at most {MAX_PER_CALL} events"
            )));
        }
        let per_minute = self.runtime_limits().events_per_minute;
        if !self.inner.bus.rate.take(&id, per_minute) {
            self.count(&id, |s| s.dropped_rate += 1);
            return Err(latest::Error::TooLarge(format!(
                "plugin '{id}' may publish {per_minute} events a minute"
            )));
        }
        let seq = self.services().storage.next_id().map_err(|e| {
            tracing::error!(error = %e, "cannot number an event");
            latest::Error::Internal("storage is unavailable".into())
        })?;
        let event_id = uuid::Uuid::new_v4().to_string();
        let ctx = &call.ctx;
        let who = match (&call.person, ctx.principal) {
            (Some(person), Principal::Person) => Who::Person {
                person: Box::new((**person).clone()),
                roles: ctx.roles.clone(),
                patient: ctx.patient.clone(),
                source: ctx.source.clone(),
                via: ctx.via.clone(),
            },
            _ => Who::Unattended {
                via: ctx.via.clone(),
            },
        };
        let envelope = Envelope {
            id: event_id.clone(),
            topic: topic.into(),
            payload: payload.into(),
            site: call.site.clone(),
            source: id.clone(),
            depth: call.event_depth,
            published_at: now(),
            who,
        };
        for sub in self.subscribers(&call.site, topic) {
            let pending = Pending {
                event: envelope.clone(),
                attempts: 0,
                not_before: 0,
                last_error: None,
            };
            batch.put(
                Tree::EventQueue,
                queue_key(&sub, &call.site, topic, seq),
                serde_json::to_vec(&pending).expect("serialises"),
            );
        }
        self.count(&id, |s| s.published += 1);
        Ok(event_id)
    }

    /// The plugins enabled and ready at `site` that subscribe to `topic`.
    fn subscribers(&self, site: &str, topic: &str) -> Vec<String> {
        self.inner
            .installed
            .read()
            .expect("lock")
            .values()
            .filter(|p| {
                matches!(p.status, Status::Ready { .. })
                    && p.manifest.subscribe.iter().any(|t| t == topic)
                    && self.is_enabled(&p.manifest.id, site)
            })
            .map(|p| p.manifest.id.clone())
            .collect()
    }

    /// Queue entries were committed: deliver them.
    pub(crate) fn events_committed(&self) {
        self.start_events();
        self.inner.bus.wake.notify_one();
    }

    /// Start delivering events (once; `osler serve` calls it). Entries left from before a
    /// restart are delivered first.
    pub fn start_events(&self) {
        if self.inner.bus.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move { this.dispatch_loop().await });
    }

    async fn dispatch_loop(self) {
        let in_flight: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
        loop {
            let next = match self.dispatch_once(&in_flight) {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the event queue");
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = self.inner.bus.wake.notified() => {}
                _ = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Start a delivery for the head of each queue that is due and not already being
    /// delivered. Returns how long to wait before looking again.
    fn dispatch_once(
        &self,
        in_flight: &Arc<Mutex<HashSet<Vec<u8>>>>,
    ) -> Result<Duration, StorageError> {
        let storage = &self.services().storage;
        let rows = storage.scan(Tree::EventQueue, b"", None, 10_000)?;
        let mut heads: BTreeMap<Vec<u8>, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
        for (k, v) in rows {
            heads.entry(group_of(&k).to_vec()).or_insert((k, v));
        }
        let now = now_ms();
        let mut wait = Duration::from_secs(5);
        for (group, (k, v)) in heads {
            let Ok(pending) = serde_json::from_slice::<Pending>(&v) else {
                tracing::error!("an unreadable event queue entry was parked");
                let mut b = Batch::new();
                b.delete(Tree::EventQueue, k.clone());
                b.put(Tree::EventParked, k, v);
                storage.apply(&b)?;
                continue;
            };
            if pending.not_before > now {
                wait = wait.min(Duration::from_millis((pending.not_before - now) as u64));
                continue;
            }
            if !in_flight.lock().expect("lock").insert(group.clone()) {
                continue;
            }
            // The scan above may predate a delivery that finished since: it removed this
            // entry, then released the group. Deliver only what is still queued, as it is now
            // (otherwise the same event runs twice).
            let current = storage.get(Tree::EventQueue, &k);
            if !matches!(&current, Ok(Some(now_v)) if *now_v == v) {
                in_flight.lock().expect("lock").remove(&group);
                current?;
                wait = Duration::ZERO;
                continue;
            }
            let this = self.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                this.deliver(k, pending).await;
                in_flight.lock().expect("lock").remove(&group);
                this.inner.bus.wake.notify_one();
            });
        }
        Ok(wait)
    }

    /// Deliver one queued event to its subscriber, then remove it, or schedule a retry, or
    /// park it.
    async fn deliver(&self, k: Vec<u8>, mut pending: Pending) {
        let subscriber =
            String::from_utf8_lossy(&k[..k.iter().position(|b| *b == 0).unwrap_or(0)]).into_owned();
        let ev = &pending.event;
        let outcome = match self.enabled(&subscriber, &ev.site) {
            Err(_) if self.get(&subscriber).is_none() => {
                // Removed: nobody to deliver to.
                let _ = self.finish(&k, None).await;
                return;
            }
            Err(_) => Err(format!(
                "'{subscriber}' is not enabled at site '{}'",
                ev.site
            )),
            Ok(p) => {
                let Status::Ready { pre, .. } = &p.status else {
                    unreachable!("enabled plugins are ready");
                };
                let (ctx, person) = match &ev.who {
                    Who::Person {
                        person,
                        roles,
                        patient,
                        source,
                        via,
                    } => {
                        let mut ctx = Ctx::person(
                            &person.user,
                            roles.clone(),
                            Some(ev.site.clone()),
                            patient.clone(),
                            source.clone(),
                        );
                        ctx.via = via.clone();
                        (ctx, Some(Arc::new((**person).clone())))
                    }
                    Who::Unattended { via } => {
                        let mut ctx = Ctx::unattended(&ev.site, &format!("event {}", ev.topic));
                        ctx.via = via.clone();
                        (ctx, None)
                    }
                };
                let call = self.call_for(
                    p.clone(),
                    &ev.site,
                    ctx,
                    person,
                    0,
                    ev.depth.saturating_add(1),
                );
                let event = latest::Event {
                    id: ev.id.clone(),
                    topic: ev.topic.clone(),
                    payload: ev.payload.clone(),
                    site: ev.site.clone(),
                    source: ev.source.clone(),
                };
                match instance::run(self, call, pre, Work::Event(event)).await {
                    Ok(Done::Event(Ok(()))) => Ok(()),
                    Ok(Done::Event(Err(e))) => Err(format!("the handler refused it: {e}")),
                    Ok(_) => Err("unexpected answer".into()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match outcome {
            Ok(()) => {
                self.count(&subscriber, |s| s.delivered += 1);
                if let Err(e) = self.finish(&k, None).await {
                    tracing::error!(error = %e, "cannot remove a delivered event");
                }
            }
            Err(reason) => {
                pending.attempts += 1;
                pending.last_error = Some(reason.clone());
                let park = pending.attempts >= self.runtime_limits().event_attempts.max(1);
                let line = if park {
                    self.count(&subscriber, |s| s.parked += 1);
                    format!(
                        "event {} ({}) parked after {} attempts: {reason}",
                        pending.event.id, pending.event.topic, pending.attempts
                    )
                } else {
                    self.count(&subscriber, |s| s.retried += 1);
                    let base = self.runtime_limits().event_retry_ms.max(1) as i64;
                    let wait = base.saturating_mul(1 << (pending.attempts - 1).min(20));
                    pending.not_before = now_ms() + wait.min(MAX_RETRY_DELAY_MS);
                    format!(
                        "event {} ({}) failed (attempt {}), retried later: {reason}",
                        pending.event.id, pending.event.topic, pending.attempts
                    )
                };
                self.log_line(&subscriber, &pending.event.site, "warn", &line);
                let r = if park {
                    self.finish(&k, Some(pending)).await
                } else {
                    let mut b = Batch::new();
                    b.put(
                        Tree::EventQueue,
                        k.clone(),
                        serde_json::to_vec(&pending).expect("serialises"),
                    );
                    self.services().storage.commit(&b).await
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "cannot record a failed delivery");
                }
            }
        }
    }

    /// Remove a queue entry, parking it when `park` is given.
    async fn finish(&self, k: &[u8], park: Option<Pending>) -> Result<(), StorageError> {
        let mut b = Batch::new();
        b.delete(Tree::EventQueue, k.to_vec());
        if let Some(p) = park {
            b.put(
                Tree::EventParked,
                k.to_vec(),
                serde_json::to_vec(&p).expect("serialises"),
            );
        }
        self.services().storage.commit(&b).await
    }

    /// Events waiting for `id`, and those parked.
    pub fn event_queue(&self, id: &str) -> Result<(usize, Vec<Parked>), StorageError> {
        let storage = &self.services().storage;
        let prefix = key(&[id.as_bytes(), b""]);
        let waiting = storage
            .scan(Tree::EventQueue, &prefix, None, 100_000)?
            .len();
        let parked = storage
            .scan(Tree::EventParked, &prefix, None, 1000)?
            .into_iter()
            .filter_map(|(k, v)| {
                let p: Pending = serde_json::from_slice(&v).ok()?;
                use base64::Engine;
                Some(Parked {
                    key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&k),
                    id: p.event.id,
                    topic: p.event.topic,
                    site: p.event.site,
                    source: p.event.source,
                    published_at: p.event.published_at,
                    attempts: p.attempts,
                    last_error: p.last_error,
                })
            })
            .collect();
        Ok((waiting, parked))
    }

    /// Put plugin `id`'s parked events back in its queue (all of them, or the one `key`
    /// names), with fresh attempts. Audited.
    pub async fn retry_parked(
        &self,
        ctx: &Ctx,
        id: &str,
        only: Option<&str>,
    ) -> Result<usize, super::PluginError> {
        self.authorize(ctx, "plugin.events.retry", id).await?;
        self.require(id)?;
        let storage = &self.services().storage;
        let prefix = key(&[id.as_bytes(), b""]);
        let mut b = Batch::new();
        let mut n = 0;
        for (k, v) in storage.scan(Tree::EventParked, &prefix, None, 1000)? {
            use base64::Engine;
            let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&k);
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let Ok(mut p) = serde_json::from_slice::<Pending>(&v) else {
                continue;
            };
            p.attempts = 0;
            p.not_before = 0;
            b.delete(Tree::EventParked, k.clone());
            b.put(
                Tree::EventQueue,
                k,
                serde_json::to_vec(&p).expect("serialises"),
            );
            n += 1;
        }
        if n > 0 {
            let mut ev = ctx.event("plugin.events.retry", "success");
            ev.resource = Some(format!("Plugin/{id}"));
            ev.detail = Some(format!("{n} parked event(s) queued again"));
            self.services().audit.commit_with(&b, ev).await?;
            self.events_committed();
        }
        Ok(n)
    }
}
