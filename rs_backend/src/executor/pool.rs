//! Pools of reusable workers: the task environments a `ReusePolicy` keeps warm.
//!
//! A pool is identified by what shapes its workers: the environment's name and version, the
//! project and domain (and the run, for `scope="run"`), and the process environment its
//! attempts share. It has up to `max_replicas` workers, each running up to `concurrency`
//! attempts at once. Workers start on demand (and `min_replicas` at once), one idle longer
//! than `scaledown_ttl` above the minimum stops, and the whole pool stops once it was idle
//! for `idle_ttl`. A worker that dies is replaced by the next attempt that needs one; the
//! attempts it ran are concluded by their supervisors (see `pooled`).
//!
//! An attempt whose pool is full waits in the pool's own queue, not the scheduler's, so a
//! full pool never holds up other actions; when a slot frees, the first one waiting goes to
//! the front of the scheduler's queue. A running attempt that waits for children of its own
//! does not hold its slot (as a waiting parent holds no process slot): a pool whose
//! attempts all wait for children they started in the same pool would never finish. Which
//! attempts wait is looked up while tending a full pool (a few times a second), not on
//! every reservation.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::spec::Reuse;
use super::worker::{Gone, Launch, Worker};
use crate::layout::Layout;
use crate::names::RunKey;

/// How often idle workers are looked at when nothing else happens.
const TEND_EVERY: Duration = Duration::from_millis(250);

/// What identifies and shapes one pool.
pub struct PoolSpec {
    pub reuse: Reuse,
    /// The process environment every worker of the pool starts with (what its attempts share).
    pub env: Vec<(String, String)>,
    /// The declared secrets' variables, after `env` (not part of the key: a new value of a
    /// secret reaches workers started after it changed, as on a cluster).
    pub secret_env: Vec<(String, String)>,
    pub memory_limit: Option<u64>,
    /// Whatever else makes workers different (image, project, domain, run).
    pub identity: Vec<String>,
}

impl PoolSpec {
    /// A digest of everything that shapes a worker: two specs with the same key can share
    /// workers.
    pub fn key(&self) -> String {
        let mut hash = Sha256::new();
        let mut part = |text: &str| {
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
        };
        let r = &self.reuse;
        part(&r.name);
        part(&r.version);
        part(&format!(
            "{} {} {} {:?} {:?} {}",
            r.min_replicas, r.max_replicas, r.concurrency, r.idle_ttl, r.scaledown_ttl, r.per_run
        ));
        part(&format!("{:?}", self.memory_limit));
        for id in &self.identity {
            part(id);
        }
        for (k, v) in &self.env {
            part(k);
            part(v);
        }
        let digest = hash.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// A directory-safe name for the pool: its environment's name and its key.
    pub fn label(&self, key: &str) -> String {
        let name: String = self
            .reuse
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        format!("{}-{key}", if name.is_empty() { "env" } else { &name })
    }
}

/// A slot on a worker, held by one running attempt.
pub struct Lease {
    pub key: String,
    pub worker: Arc<Worker>,
    pub seq: i64,
}

pub enum Reserved {
    Leased(Lease),
    /// Every worker is busy and no more may start: the action waits in the pool's queue.
    Full,
    /// No worker could be started.
    Failed(String),
}

struct Slot {
    worker: Arc<Worker>,
    /// Attempts running on it: seq -> (run, action).
    running: HashMap<i64, (RunKey, String)>,
    /// How many of them waited for children when last looked at.
    parked: usize,
    idle_since: Instant,
    /// Takes no more attempts; killed once its last attempt ended (its code got stuck).
    retiring: bool,
}

struct Pool {
    label: String,
    spec: PoolSpec,
    slots: Vec<Slot>,
    waiting: VecDeque<i64>,
    /// When the last attempt of the pool ended (None while any runs).
    idle_since: Option<Instant>,
}

impl Pool {
    fn running(&self) -> usize {
        self.slots.iter().map(|s| s.running.len()).sum()
    }
}

pub struct Pools {
    command: Option<Vec<String>>,
    hider: Option<Arc<crate::sandbox::Hider>>,
    layout: Layout,
    state: Mutex<HashMap<String, Pool>>,
    next_worker: AtomicU64,
    changed: Notify,
}

/// How many workers and attempts a pool has, for tests.
#[cfg(test)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub workers: usize,
    pub running: usize,
    pub waiting: usize,
}

impl Pools {
    pub fn new(
        command: Option<Vec<String>>,
        layout: Layout,
        hider: Option<Arc<crate::sandbox::Hider>>,
    ) -> Self {
        Self {
            command,
            hider,
            layout,
            state: Mutex::new(HashMap::new()),
            next_worker: AtomicU64::new(1),
            changed: Notify::new(),
        }
    }

    /// Whether reusable workers can be started at all (a worker program is configured).
    pub fn enabled(&self) -> bool {
        self.command.is_some()
    }

    fn state(&self) -> MutexGuard<'_, HashMap<String, Pool>> {
        // Updates keep the maps consistent between statements: a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the pool's shared files (delivered secrets) go.
    pub fn pool_dir(&self, label: &str) -> std::path::PathBuf {
        self.layout.worker_dir(label, 0)
    }

    /// A slot for attempt `seq` of `action` on a worker of the pool `spec` describes.
    pub fn reserve(&self, spec: PoolSpec, seq: i64, action: (&RunKey, &str)) -> Reserved {
        let key = spec.key();
        let mut pools = self.state();
        let pool = pools.entry(key.clone()).or_insert_with(|| Pool {
            label: spec.label(&key),
            spec,
            slots: Vec::new(),
            waiting: VecDeque::new(),
            idle_since: None,
        });
        pool.slots.retain(|s| !s.worker.is_gone());
        let concurrency = pool.spec.reuse.concurrency as usize;
        let max = pool.spec.reuse.max_replicas as usize;
        // Least loaded first; a worker still warming up only when no ready one has room.
        let pick = |slots: &[Slot]| {
            slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.retiring && s.running.len() < concurrency)
                .min_by_key(|(_, s)| (!s.worker.is_ready(), s.running.len()))
                .map(|(i, _)| i)
        };
        let mut chosen = pick(&pool.slots);
        let busy = chosen.is_none_or(|i| !pool.slots[i].running.is_empty());
        if busy && pool.slots.len() < max {
            // More work than idle workers: grow. The attempt takes the new worker only if
            // no started one has room (a new one takes a moment to warm up).
            match self.start_worker(pool) {
                Ok(()) => {
                    if chosen.is_none() {
                        chosen = Some(pool.slots.len() - 1);
                    }
                }
                Err(err) if chosen.is_none() => return Reserved::Failed(err),
                Err(err) => tracing::warn!(%err, "could not start another reusable worker"),
            }
        }
        if chosen.is_none() {
            // Full, unless some of its attempts only wait for their children.
            chosen = pool
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.retiring)
                .map(|(i, s)| (i, s.running.len().saturating_sub(s.parked)))
                .filter(|(_, computing)| *computing < concurrency)
                .min_by_key(|(_, computing)| *computing)
                .map(|(i, _)| i);
        }
        let Some(index) = chosen else {
            if !pool.waiting.contains(&seq) {
                pool.waiting.push_back(seq);
            }
            return Reserved::Full;
        };
        let slot = &mut pool.slots[index];
        slot.running
            .insert(seq, (action.0.clone(), action.1.to_string()));
        pool.idle_since = None;
        Reserved::Leased(Lease {
            key,
            worker: slot.worker.clone(),
            seq,
        })
    }

    fn start_worker(&self, pool: &mut Pool) -> Result<(), String> {
        let command = self
            .command
            .as_ref()
            .ok_or_else(|| "no reusable worker program is configured".to_string())?;
        let number = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let name = format!("worker {number} of pool {}", pool.label);
        let env: Vec<(String, String)> = pool
            .spec
            .env
            .iter()
            .chain(&pool.spec.secret_env)
            .cloned()
            .collect();
        let worker = Worker::start(
            name,
            &Launch {
                command,
                env: &env,
                dir: &self.layout.worker_dir(&pool.label, number),
                log: &self.layout.worker_log_path(&pool.label, number),
                memory_limit: pool.spec.memory_limit,
                hider: self.hider.clone(),
                data_dir: Some(self.layout.root()),
            },
        )?;
        pool.slots.push(Slot {
            worker,
            running: HashMap::new(),
            parked: 0,
            idle_since: Instant::now(),
            retiring: false,
        });
        self.changed.notify_one();
        Ok(())
    }

    /// The attempt holding `lease` ended. `stuck`: its code still runs on the worker, which
    /// therefore takes no more work and is killed once its other attempts ended. Returns an
    /// action waiting for this pool, to be queued first.
    pub fn release(&self, lease: &Lease, stuck: bool) -> Option<i64> {
        let mut pools = self.state();
        let pool = pools.get_mut(&lease.key)?;
        if let Some(slot) = pool
            .slots
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.worker, &lease.worker))
        {
            slot.running.remove(&lease.seq);
            if stuck {
                slot.retiring = true;
            }
            if slot.running.is_empty() {
                slot.idle_since = Instant::now();
                if slot.retiring {
                    slot.worker.kill(Gone {
                        reason: format!(
                            "the {} was stopped: a cancelled attempt's code could not be stopped",
                            slot.worker.name
                        ),
                        out_of_memory: None,
                    });
                }
            }
        }
        if pool.running() == 0 {
            pool.idle_since = Some(Instant::now());
        }
        self.changed.notify_one();
        pool.waiting.pop_front()
    }

    /// Stops what outlived its TTL and starts what `min_replicas` asks for. Returns actions
    /// waiting for pools that have room again (a worker died or stopped, or attempts turned
    /// out to wait for their children), to be queued.
    fn tend(&self, waits_for_children: &dyn Fn(&RunKey, &str) -> bool) -> Vec<i64> {
        let now = Instant::now();
        let mut requeue = Vec::new();
        let mut pools = self.state();
        pools.retain(|_, pool| {
            pool.slots.retain(|s| !s.worker.is_gone());
            let reuse = pool.spec.reuse.clone();
            if let (Some(idle_since), Some(ttl)) = (pool.idle_since, reuse.idle_ttl) {
                if pool.waiting.is_empty() && now.duration_since(idle_since) >= ttl {
                    for slot in &pool.slots {
                        tracing::info!(worker = %slot.worker.name, "stopping an idle pool");
                        slot.worker.close();
                    }
                    return false;
                }
            }
            if let Some(ttl) = reuse.scaledown_ttl {
                let min = reuse.min_replicas as usize;
                let mut extra = pool.slots.len().saturating_sub(min);
                pool.slots.retain(|s| {
                    let stop = extra > 0
                        && s.running.is_empty()
                        && now.duration_since(s.idle_since) >= ttl;
                    if stop {
                        extra -= 1;
                        s.worker.close();
                    }
                    !stop
                });
            }
            while pool.slots.len() < reuse.min_replicas as usize {
                if let Err(err) = self.start_worker(pool) {
                    tracing::warn!(%err, "could not start a reusable worker");
                    break;
                }
            }
            if !pool.waiting.is_empty() {
                let concurrency = reuse.concurrency as usize;
                for slot in &mut pool.slots {
                    slot.parked = slot
                        .running
                        .values()
                        .filter(|(run, name)| waits_for_children(run, name))
                        .count();
                }
                // Room may have opened (a dead worker to replace, parked attempts): let the
                // first waiter try again.
                let room = pool.slots.len() < reuse.max_replicas as usize
                    || pool.slots.iter().any(|s| {
                        !s.retiring && s.running.len().saturating_sub(s.parked) < concurrency
                    });
                if room {
                    requeue.extend(pool.waiting.pop_front());
                }
            }
            true
        });
        requeue
    }

    /// Runs `tend` whenever something changed or time passed, until `stop` turns true.
    /// `waits_for_children` tells whether a running attempt waits for children.
    pub async fn keep(
        &self,
        enqueue: impl Fn(i64),
        waits_for_children: impl Fn(&RunKey, &str) -> bool,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            for seq in self.tend(&waits_for_children) {
                enqueue(seq);
            }
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(TEND_EVERY) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Stops every worker: closing their stdin (they finish what they run and exit, as after
    /// a crash of the backend), or killing them.
    pub fn stop_all(&self, kill: bool) {
        let pools = std::mem::take(&mut *self.state());
        for pool in pools.into_values() {
            for slot in pool.slots {
                if kill {
                    slot.worker.kill(Gone {
                        reason: format!("the {} was stopped with the backend", slot.worker.name),
                        out_of_memory: None,
                    });
                } else {
                    slot.worker.close();
                }
            }
        }
    }

    /// Workers, running and waiting attempts of every pool, by environment name.
    #[cfg(test)]
    pub fn stats(&self) -> HashMap<String, PoolStats> {
        let mut out: HashMap<String, PoolStats> = HashMap::new();
        for pool in self.state().values() {
            let stats = out.entry(pool.spec.reuse.name.clone()).or_default();
            stats.workers += pool.slots.iter().filter(|s| !s.worker.is_gone()).count();
            stats.running += pool.running();
            stats.waiting += pool.waiting.len();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in worker: ready at once, answers nothing, exits at EOF.
    fn pools(dir: &std::path::Path) -> Pools {
        let script = "echo '{\"ready\": true}'; exec cat >/dev/null";
        Pools::new(
            Some(vec!["sh".into(), "-c".into(), script.into()]),
            Layout::new(dir.to_path_buf()),
            None,
        )
    }

    fn spec(max_replicas: u32, concurrency: u32, idle_ttl: Option<Duration>) -> PoolSpec {
        PoolSpec {
            reuse: Reuse {
                name: "env one".into(),
                version: "v".into(),
                min_replicas: 0,
                max_replicas,
                concurrency,
                idle_ttl,
                scaledown_ttl: None,
                per_run: false,
            },
            env: vec![],
            secret_env: vec![],
            memory_limit: None,
            identity: vec![],
        }
    }

    fn run() -> RunKey {
        RunKey {
            org: String::new(),
            project: "p".into(),
            domain: "d".into(),
            name: "r".into(),
        }
    }

    fn lease(reserved: Reserved) -> Lease {
        match reserved {
            Reserved::Leased(lease) => lease,
            Reserved::Full => panic!("full"),
            Reserved::Failed(err) => panic!("{err}"),
        }
    }

    #[tokio::test]
    async fn a_full_pool_queues_and_hands_freed_slots_to_the_first_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let pools = pools(dir.path());
        let run = run();
        let first = lease(pools.reserve(spec(2, 1, None), 1, (&run, "a")));
        let second = lease(pools.reserve(spec(2, 1, None), 2, (&run, "b")));
        assert!(
            !Arc::ptr_eq(&first.worker, &second.worker),
            "a second replica started"
        );
        assert!(matches!(
            pools.reserve(spec(2, 1, None), 3, (&run, "c")),
            Reserved::Full
        ));
        assert!(matches!(
            pools.reserve(spec(2, 1, None), 4, (&run, "d")),
            Reserved::Full
        ));
        let stats = pools.stats()["env one"].clone();
        assert_eq!((stats.workers, stats.running, stats.waiting), (2, 2, 2));
        assert_eq!(pools.release(&first, false), Some(3));
        let third = lease(pools.reserve(spec(2, 1, None), 3, (&run, "c")));
        assert!(
            Arc::ptr_eq(&first.worker, &third.worker),
            "the freed worker is reused"
        );
        // A parent waiting for its children does not hold its slot, once that is known.
        assert!(pools.tend(&|_, _| false).is_empty(), "still full");
        assert_eq!(pools.tend(&|_, name| name == "b"), vec![4]);
        let fourth = lease(pools.reserve(spec(2, 1, None), 4, (&run, "d")));
        assert!(Arc::ptr_eq(&second.worker, &fourth.worker));
        pools.stop_all(true);
    }

    #[tokio::test]
    async fn a_stuck_attempt_retires_its_worker() {
        let dir = tempfile::tempdir().unwrap();
        let pools = pools(dir.path());
        let run = run();
        let stuck = lease(pools.reserve(spec(1, 2, None), 1, (&run, "a")));
        assert_eq!(pools.release(&stuck, true), None);
        let worker = stuck.worker.clone();
        for _ in 0..200 {
            if worker.is_gone() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(worker.is_gone());
        let next = lease(pools.reserve(spec(1, 2, None), 2, (&run, "b")));
        assert!(!Arc::ptr_eq(&worker, &next.worker));
        pools.stop_all(true);
    }

    #[tokio::test]
    async fn an_idle_pool_stops_after_its_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let pools = pools(dir.path());
        let run = run();
        let ttl = Some(Duration::from_millis(50));
        let only = lease(pools.reserve(spec(1, 1, ttl), 1, (&run, "a")));
        assert_eq!(pools.release(&only, false), None);
        assert!(pools.tend(&|_, _| false).is_empty());
        assert_eq!(
            pools.stats()["env one"].workers,
            1,
            "not idle long enough yet"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        pools.tend(&|_, _| false);
        assert!(pools.stats().is_empty());
        for _ in 0..200 {
            if only.worker.is_gone() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(only.worker.is_gone(), "a closed worker exits");
    }

    #[test]
    fn keys_tell_apart_what_shapes_a_worker() {
        let a = spec(2, 1, None);
        let mut b = spec(2, 1, None);
        assert_eq!(a.key(), b.key());
        b.env.push(("K".into(), "V".into()));
        assert_ne!(a.key(), b.key());
        let mut c = spec(2, 1, None);
        c.secret_env.push(("S".into(), "secret".into()));
        assert_eq!(
            a.key(),
            c.key(),
            "a secret's new value does not make a new pool"
        );
        assert_eq!(a.label("0123"), "env_one-0123");
    }
}
