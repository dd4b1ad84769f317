//! Starting one attempt of a queued task action.

use crate::attempt_token::AttemptClaim;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::core::execution_error::ErrorKind;
use flyteidl2::flyteidl::task::RunSpec;
use prost::Message;
use tokio::sync::watch;

use super::child::{ChildProc, ForkedChild};
use super::command::{
    checkpoint_prefix, resolve_program, substitute, Launch, Placeholders, NO_PREVIOUS_CHECKPOINT,
};
use super::forkserver::LaunchRequest;
use super::monitor::{conclude, supervise, Job};
use super::outcome::{error, ExitCause, Verdict};
use super::pool::{Lease, PoolSpec, Reserved};
use super::spec::ExecSpec;
use super::{conclude_attempt, Control, Running};
use crate::clock::now_ms;
use crate::contract;
use crate::contract::RUNTIME_PROGRAM;
use crate::engine::Engine;
use crate::layout::{attempt_prefix, raw_data_prefix, run_raw_data_prefix};
use crate::policy::TaskPolicy;
use crate::procfs::{self, ProcessRef};
use crate::sandbox::{Opening, View};
use crate::secrets;
use crate::store::{ActionKind, ActionRecord};
use crate::views;

pub enum Launched {
    Started(Running),
    /// Nothing to do: the action is gone, no longer queued, or not a task.
    Skipped,
    /// The attempt could not start: the action as recorded, and how long a retry waits (its backoff).
    Failed(Box<ActionRecord>, Duration),
}

/// How long an action whose attempt could not be recorded as started waits before it is
/// tried again.
const START_RETRY: Duration = Duration::from_secs(1);

pub fn launch(engine: &Arc<Engine>, seq: i64) -> Launched {
    let record = match engine.store.action_by_seq(seq) {
        Ok(Some(record)) => record,
        Ok(None) => return Launched::Skipped,
        Err(err) => {
            tracing::error!(%err, seq, "could not read a queued action");
            return Launched::Skipped;
        }
    };
    if record.phase != ActionPhase::Queued || record.kind != ActionKind::Task {
        // A serialized cache key may have passed to it while it was ending: pass it on.
        if let Some((next, ())) = engine.cache_gate.release(seq as u64) {
            engine.scheduler.enqueue_soon(next as i64);
        }
        return Launched::Skipped;
    }
    let decoded = decode(engine, &record);
    if let Ok(decoded) = &decoded {
        if !engine.cache_turn(&record, &decoded.task) {
            return Launched::Skipped;
        }
    }
    let Some(attempt) = record.attempts.checked_add(1) else {
        return Launched::Skipped;
    };
    let mut lease = None;
    let mut pool_failure = None;
    if let Ok(decoded) = &decoded {
        let spec = match pool_spec(engine, &record, decoded, attempt) {
            Ok(spec) => spec,
            Err(failure) => {
                pool_failure = Some(failure);
                None
            }
        };
        if let Some(spec) = spec {
            match engine.pools.reserve(spec, seq, (&record.run, &record.name)) {
                Reserved::Leased(leased) => lease = Some(leased),
                // It waits in its pool's queue until a worker has room.
                Reserved::Full => return Launched::Skipped,
                Reserved::Failed(message) => {
                    let policy = decoded.spec.policy.clone();
                    pool_failure = Some((launch_failed(message), policy));
                }
            }
        }
    }
    // Gives the slot back if the attempt does not get to run on it.
    let unlease = |lease: Option<Lease>| {
        if let Some(lease) = lease {
            if let Some(next) = engine.pools.release(&lease, false) {
                engine.scheduler.enqueue_soon(next);
            }
        }
    };
    let log_path = engine.layout.log_path(&record.run, &record.name, attempt);
    let record = match engine.store.start_attempt_in(
        seq,
        attempt,
        &log_path.to_string_lossy(),
        now_ms(),
        lease.as_ref().map(|lease| lease.worker.process),
    ) {
        Ok(Some(record)) => record,
        Ok(None) => {
            unlease(lease);
            return Launched::Skipped;
        }
        Err(err) => {
            unlease(lease);
            // E.g. a full disk: the action stays queued and is tried again in a while.
            tracing::error!(%err, action = %record.name, "could not start an attempt; trying again later");
            super::enqueue_later(engine, seq, START_RETRY);
            return Launched::Skipped;
        }
    };
    engine.publish(record.clone());
    if super::sleep::is_sleep(&record) {
        // Nothing runs: the backend waits, without taking a slot.
        unlease(lease);
        super::sleep::start(engine, &record, attempt);
        return Launched::Skipped;
    }
    if let Some((verdict, policy)) = pool_failure {
        return failed(engine, &record, attempt, verdict, &policy);
    }

    let prepared = match decoded.and_then(|decoded| {
        prepare(
            engine,
            &record,
            attempt,
            &log_path,
            decoded,
            lease.is_some(),
        )
    }) {
        Ok(prepared) => prepared,
        Err((verdict, policy)) => {
            unlease(lease);
            return failed(engine, &record, attempt, verdict, &policy);
        }
    };
    if let Some(lease) = lease {
        return run_pooled(engine, &record, attempt, prepared, lease);
    }
    let (control, control_rx) = watch::channel(Control::Run);
    let (pgid, task) = if engine.forks.is_some() && prepared.forkable {
        // The server answers asynchronously; until it did, the slot is taken but no group
        // is known (an abort meanwhile reaches the task through `control`).
        let task = tokio::spawn(fork_and_supervise(engine.clone(), prepared, control_rx));
        (0, task)
    } else {
        let policy = prepared.job.policy.clone();
        let (job, child) = match spawn(engine, prepared) {
            Ok(started) => started,
            Err(verdict) => return failed(engine, &record, attempt, verdict, &policy),
        };
        let pgid = job.pgid;
        let task = tokio::spawn(supervise(
            engine.clone(),
            job,
            ChildProc::Spawned(child),
            control_rx,
        ));
        (pgid, task)
    };
    Launched::Started(Running {
        run: record.run.clone(),
        name: record.name.clone(),
        pgid,
        pooled: false,
        control,
        task: Some(task),
    })
}

/// Sends the attempt to the worker its lease is on, and supervises it there.
fn run_pooled(
    engine: &Arc<Engine>,
    record: &ActionRecord,
    attempt: u32,
    prepared: Prepared,
    lease: Lease,
) -> Launched {
    let Prepared {
        job,
        args,
        env,
        log_path,
        log,
        openings,
        ..
    } = prepared;
    debug_assert!(log.is_none(), "a worker creates its attempts' logs");
    let sent = lease
        .worker
        .open(&openings)
        .and_then(|()| lease.worker.run(&args, &own_env(env), &log_path));
    let (id, end) = match sent {
        Ok(sent) => sent,
        Err(message) => {
            let policy = job.policy.clone();
            if let Some(next) = engine.pools.release(&lease, false) {
                engine.scheduler.enqueue_soon(next);
            }
            return failed(engine, record, attempt, launch_failed(message), &policy);
        }
    };
    // The worker's process was recorded with the attempt's start: a restarted backend finds
    // the worker by it (and stops it, to run the attempt again).
    let (control, control_rx) = watch::channel(Control::Run);
    let task = tokio::spawn(super::pooled::supervise(
        engine.clone(),
        job,
        lease,
        id,
        end,
        control_rx,
    ));
    Launched::Started(Running {
        run: record.run.clone(),
        name: record.name.clone(),
        pgid: 0,
        pooled: true,
        control,
        task: Some(task),
    })
}

/// What of an attempt's environment a worker gets with the attempt.
fn own_env(env: Vec<(String, String)>) -> Vec<(String, String)> {
    env.into_iter()
        .filter(|(key, _)| PER_ATTEMPT_ENV.contains(&key.as_str()))
        .collect()
}

/// The variables of an attempt's environment that differ between attempts of one task
/// environment: a reusable worker gets them with each attempt, the rest once, at its start.
const PER_ATTEMPT_ENV: [&str; 12] = [
    contract::EXECUTION_ID,
    contract::ATTEMPT_NUMBER,
    contract::TASK_PROJECT,
    contract::TASK_DOMAIN,
    contract::TASK_NAME,
    contract::TASK_VERSION,
    contract::POD_NAME,
    contract::ACTION_NAME,
    contract::RUN_NAME,
    contract::RUN_BASE,
    contract::EXTRA_ATTEMPT,
    contract::EXTRA_ACTION_TOKEN,
];

/// The action's task, decoded and checked, with its run's settings.
struct Decoded {
    task: flyteidl2::flyteidl::workflow::TaskAction,
    spec: ExecSpec,
    settings: RunSettings,
}

fn decode(engine: &Engine, record: &ActionRecord) -> Result<Decoded, (Verdict, TaskPolicy)> {
    let task = views::task_action(record)
        .ok_or_else(|| invalid("the stored task spec of this action cannot be decoded".into()))?;
    let spec = ExecSpec::from_task(&task).map_err(invalid)?;
    let settings = run_settings(engine, record);
    Ok(Decoded {
        task,
        spec,
        settings,
    })
}

/// The pool of reusable workers the attempt runs on, if its task has a reuse policy and its
/// program is this SDK's runtime in the default environment (a worker is that runtime kept
/// warm; another image's program runs one process per attempt).
fn pool_spec(
    engine: &Engine,
    record: &ActionRecord,
    decoded: &Decoded,
    attempt: u32,
) -> Result<Option<PoolSpec>, (Verdict, TaskPolicy)> {
    let Some(reuse) = decoded.spec.reuse.clone() else {
        return Ok(None);
    };
    if !engine.pools.enabled()
        || decoded.spec.args.first().map(String::as_str) != Some(RUNTIME_PROGRAM)
        || engine.config.bin_dir_for(&decoded.spec.image) != engine.config.bin_dir
    {
        return Ok(None);
    }
    let env = contract_env(
        engine,
        record,
        &decoded.task,
        ContractEnv {
            task_env: &decoded.spec.env,
            run_env: decoded.settings.env.clone(),
            attempt,
            bin_dir: &engine.config.bin_dir,
        },
    );
    let shared: Vec<(String, String)> = env
        .into_iter()
        .filter(|(key, _)| !PER_ATTEMPT_ENV.contains(&key.as_str()))
        .collect();
    let run = &record.run;
    let mut identity = vec![
        decoded.spec.image.clone(),
        run.project.clone(),
        run.domain.clone(),
        format!("{:?}", declared_secrets(&decoded.task)),
    ];
    if reuse.per_run {
        identity.push(run.name.clone());
    }
    let code_args = [
        contract::CODE_BUNDLE_ARG,
        contract::CODE_ROOT_ARG,
        contract::CODE_VERSION_ARG,
    ];
    for pair in decoded.spec.args.windows(2) {
        if code_args.contains(&pair[0].as_str()) {
            identity.push(format!("{}={}", pair[0], pair[1]));
        }
    }
    let mut spec = PoolSpec {
        reuse,
        env: shared,
        secret_env: Vec::new(),
        memory_limit: decoded.spec.memory_limit,
        identity,
    };
    let declared = declared_secrets(&decoded.task);
    if !declared.is_empty() {
        // Delivered where the pool's workers find them; a worker reads them when it starts,
        // as a replica of a cluster's pool does.
        let dir = engine.pools.pool_dir(&spec.label(&spec.key()));
        let delivered = secrets::deliver(
            &engine.store,
            &engine.sealer,
            &run.project,
            &run.domain,
            &declared,
            &dir,
        )
        .map_err(|message| {
            (
                Verdict::Invalid {
                    error: error("BadRequest", ErrorKind::User, message),
                },
                TaskPolicy::default(),
            )
        })?;
        spec.secret_env = delivered.env;
    }
    Ok(Some(spec))
}

fn declared_secrets(
    task: &flyteidl2::flyteidl::workflow::TaskAction,
) -> Vec<flyteidl2::flyteidl::core::Secret> {
    task.spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.security_context.as_ref())
        .map(|c| c.secrets.clone())
        .unwrap_or_default()
}

/// Ends the attempt after `attempts` of a queued action that waited longer than its task's
/// `max_queued` without starting: a timed-out attempt, retried within the task's retries.
pub fn time_out_queued(engine: &Arc<Engine>, seq: i64, attempts: u32) {
    let Ok(Some(record)) = engine.store.action_by_seq(seq) else {
        return;
    };
    if record.phase != ActionPhase::Queued || record.attempts != attempts {
        return;
    }
    let policy = views::task_action(&record)
        .and_then(|task| ExecSpec::from_task(&task).ok())
        .map(|spec| spec.policy)
        .unwrap_or_default();
    let Some(limit) = policy.max_queued else {
        return;
    };
    engine.scheduler.unqueue(seq);
    let attempt = attempts + 1;
    let record = match engine.store.start_attempt(seq, attempt, "", now_ms()) {
        Ok(Some(record)) => record,
        Ok(None) => return,
        Err(err) => {
            tracing::error!(%err, action = %record.name, "could not time out a queued attempt");
            return;
        }
    };
    // Whoever held the serialized cache key it may have been waiting for keeps it.
    let verdict = Verdict::UserFailure {
        error: error(
            "QueueTimeout",
            ErrorKind::User,
            format!(
                "the attempt waited longer than the task's max_queued_time of {:.3}s to start",
                limit.as_secs_f64()
            ),
        ),
        phase: ActionPhase::TimedOut,
        retryable: true,
    };
    if let Some(concluded) = conclude_attempt(engine, &record, attempt, verdict, &policy) {
        super::follow_up(engine, &concluded);
    }
}

fn failed(
    engine: &Arc<Engine>,
    record: &ActionRecord,
    attempt: u32,
    verdict: Verdict,
    policy: &TaskPolicy,
) -> Launched {
    match conclude_attempt(engine, record, attempt, verdict, policy) {
        // A failure to launch is never the task's own, so no backoff applies to its retry.
        Some(concluded) => Launched::Failed(Box::new(concluded.record), concluded.retry_delay),
        None => Launched::Skipped,
    }
}

/// The `RunSpec.envs` of the action's run.
/// What the run's spec says about its actions' processes: extra environment variables and,
/// when the run chose one, where raw data goes.
#[derive(Default)]
struct RunSettings {
    env: Vec<(String, String)>,
    raw_data_prefix: Option<String>,
    /// When the run started (its spec's `run_start_time`, else its creation), in ms.
    start_ms: i64,
}

fn run_settings(engine: &Engine, record: &ActionRecord) -> RunSettings {
    let (spec, created_ms) = match engine.store.run(&record.run) {
        Ok(Some(run)) => (run.run_spec, run.created_ms),
        Ok(None) => (None, 0),
        Err(err) => {
            tracing::warn!(%err, run = %record.run, "could not read the run spec");
            (None, 0)
        }
    };
    let Some(spec) = spec.and_then(|bytes| RunSpec::decode(bytes.as_slice()).ok()) else {
        return RunSettings {
            start_ms: created_ms,
            ..Default::default()
        };
    };
    // A run started for another time (a trigger's firing, a backfill) says so in its spec.
    let start_ms = spec
        .run_start_time
        .as_ref()
        .map(|ts| ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000)
        .unwrap_or(created_ms);
    RunSettings {
        start_ms,
        env: crate::run_env::open(&engine.sealer, &record.run, &spec),
        raw_data_prefix: spec
            .raw_data_storage
            .map(|raw| raw.raw_data_prefix)
            .filter(|prefix| !prefix.is_empty()),
    }
}

fn invalid(message: String) -> (Verdict, TaskPolicy) {
    (
        Verdict::Invalid {
            error: error("InvalidTaskSpec", ErrorKind::System, message),
        },
        TaskPolicy::default(),
    )
}

fn launch_failed(message: String) -> Verdict {
    Verdict::SystemFailure {
        error: error("LaunchFailed", ErrorKind::System, message),
    }
}

fn fresh_dir(path: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    fs::create_dir_all(path)
}

fn create_log(path: &Path) -> std::io::Result<fs::File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::File::create(path)
}

/// An attempt ready to start: directories made, log created, command line and environment
/// worked out.
struct Prepared {
    /// `pgid` is still 0.
    job: Job,
    program: PathBuf,
    /// Whether the program is this SDK's runtime in the default environment, which the fork
    /// server can run in-process.
    forkable: bool,
    /// Whether its process gets the backend's private files hidden (see `crate::sandbox`).
    sandboxed: bool,
    /// The container args after the program.
    args: Vec<String>,
    env: Vec<(String, String)>,
    work_dir: PathBuf,
    log_path: PathBuf,
    /// Created here for a process of its own (its stdout and stderr); None on a worker.
    log: Option<fs::File>,
    /// What its process may reach of the data dir, when it is sandboxed and of its own.
    openings: Vec<Opening>,
}

/// Prepares the attempt's directories, log, arguments and environment. On failure, returns
/// how to conclude the attempt and the task's retry budget.
fn prepare(
    engine: &Engine,
    record: &ActionRecord,
    attempt: u32,
    log_path: &Path,
    decoded: Decoded,
    pooled: bool,
) -> Result<Prepared, (Verdict, TaskPolicy)> {
    let Decoded {
        task,
        spec,
        settings,
    } = decoded;
    let policy = &spec.policy;
    let base = &record.run_output_base;
    let (output_dir, output_uri) = attempt_prefix(base, &record.name, attempt).map_err(invalid)?;
    let raw_prefix = match &settings.raw_data_prefix {
        Some(prefix) => run_raw_data_prefix(prefix, &record.run.name, &record.name, attempt),
        None => raw_data_prefix(base, &record.name, attempt).map_err(invalid)?,
    };
    let previous_checkpoint = match attempt.checked_sub(1).filter(|a| *a > 0) {
        Some(previous) => attempt_prefix(base, &record.name, previous)
            .map(|(dir, _)| checkpoint_prefix(&dir))
            .unwrap_or_default(),
        None => NO_PREVIOUS_CHECKPOINT.to_string(),
    };
    let bin_dir = engine.config.bin_dir_for(&spec.image).to_path_buf();
    let (program_name, rest) = spec
        .args
        .split_first()
        .ok_or_else(|| invalid("task_template.container.args is empty".into()))?;
    let program = resolve_program(&bin_dir, program_name).map_err(invalid)?;
    // A raw container's image runs under a container runtime, which needs the real user
    // namespace (and sees only what it mounts): no fork server, no hidden files.
    let runs_a_container = rest.first().map(String::as_str) == Some(contract::RAW_CONTAINER_FLAG);
    let forkable =
        program_name == RUNTIME_PROGRAM && bin_dir == engine.config.bin_dir && !runs_a_container;
    let work_dir = engine.layout.work_dir(&record.run, &record.name, attempt);

    fs::create_dir_all(&output_dir).map_err(|e| {
        (
            launch_failed(format!(
                "could not create the output prefix {}: {e}",
                output_dir.display()
            )),
            policy.clone(),
        )
    })?;
    // An attempt on a reusable worker works in the worker's directory.
    let fresh = if pooled { Ok(()) } else { fresh_dir(&work_dir) };
    fresh.map_err(|e| {
        (
            launch_failed(format!(
                "could not create the work dir {}: {e}",
                work_dir.display()
            )),
            policy.clone(),
        )
    })?;
    // A reusable worker creates an attempt's log when the attempt first writes to it: most
    // attempts print nothing, and a missing log reads as an empty one.
    let log = if pooled {
        None
    } else {
        Some(create_log(log_path).map_err(|e| {
            (
                launch_failed(format!(
                    "could not create the log file {}: {e}",
                    log_path.display()
                )),
                policy.clone(),
            )
        })?)
    };

    let checkpoint = checkpoint_prefix(&output_dir);
    let run_start_time = rfc3339(settings.start_ms);
    let placeholders = Placeholders {
        input: &record.input_uri,
        output_prefix: &output_uri,
        raw_output_prefix: &raw_prefix,
        checkpoint_prefix: &checkpoint,
        prev_checkpoint_prefix: &previous_checkpoint,
        run_name: &record.run.name,
        action_name: &record.name,
        attempt,
        run_start_time: &run_start_time,
    };
    let args: Vec<String> = rest
        .iter()
        .map(|arg| substitute(arg, &placeholders))
        .collect();
    let env = contract_env(
        engine,
        record,
        &task,
        ContractEnv {
            task_env: &spec.env,
            run_env: settings.env,
            attempt,
            bin_dir: &bin_dir,
        },
    );
    let mut env = env;
    let declared = declared_secrets(&task);
    if !declared.is_empty() && !pooled {
        // A declared secret that does not exist fails the action before its code runs.
        let delivered = secrets::deliver(
            &engine.store,
            &engine.sealer,
            &record.run.project,
            &record.run.domain,
            &declared,
            &work_dir,
        )
        .map_err(|message| {
            (
                Verdict::Invalid {
                    error: error("BadRequest", ErrorKind::User, message),
                },
                TaskPolicy::default(),
            )
        })?;
        env.extend(delivered.env);
    }
    let sandboxed = !runs_a_container;
    let openings = if !sandboxed {
        Vec::new()
    } else if pooled {
        // The worker writes the attempt's log itself, in its view of the data dir.
        let logs = engine.layout.run_log_dir(&record.run);
        let _ = log_path.parent().map(fs::create_dir_all);
        let mut openings = attempt_openings(engine, record, &work_dir, &args);
        openings.push(Opening {
            path: logs,
            writable: true,
        });
        openings
    } else {
        attempt_openings(engine, record, &work_dir, &args)
    };
    let job = Job {
        record: record.clone(),
        attempt,
        pgid: 0,
        limit: policy.attempt_limit(record.created_ms, now_ms()),
        memory_limit: spec.memory_limit,
        policy: policy.clone(),
        output_dir,
        output_uri,
    };
    Ok(Prepared {
        job,
        program,
        forkable,
        sandboxed,
        openings,
        args,
        env,
        work_dir,
        log_path: log_path.to_path_buf(),
        log,
    })
}

/// What of the data dir an attempt's own process may reach: its run's directory and its work
/// dir (writable; an output prefix its parent placed elsewhere in the data dir is not), and
/// read-only what its arguments and inputs name
/// elsewhere in the data dir (an uploaded code bundle or input file) and the files its run's
/// cache hits name (see [`crate::data_refs::bring_outputs`]).
fn attempt_openings(
    engine: &Engine,
    record: &ActionRecord,
    work_dir: &Path,
    args: &[String],
) -> Vec<Opening> {
    let writable = |path: PathBuf| Opening {
        path,
        writable: true,
    };
    let mut openings = vec![
        writable(engine.layout.run_base_dir(&record.run)),
        writable(work_dir.to_path_buf()),
    ];
    // There before the attempt starts: a cache hit of one of its children fills it later.
    let refs = engine.layout.run_refs_dir(&record.run);
    if fs::create_dir_all(&refs).is_ok() {
        openings.push(Opening {
            path: refs,
            writable: false,
        });
    }
    // Only what values may name: a task naming the database or a key (or a link to one) in
    // its child's inputs or arguments gets nothing.
    let shareable = engine.layout.shareable();
    let mut named = crate::data_refs::paths_under(&shareable, args.iter().map(String::as_str));
    let inputs = crate::layout::uri_to_path(&super::command::input_file(&record.input_uri))
        .ok()
        .and_then(|path| fs::read(path).ok())
        .and_then(|bytes| flyteidl2::flyteidl::task::Inputs::decode(bytes.as_slice()).ok());
    if let Some(inputs) = inputs {
        let literals = inputs.literals.iter().filter_map(|l| l.value.as_ref());
        named.extend(crate::data_refs::literal_paths(&shareable, literals));
    }
    openings.extend(named.into_iter().map(|path| Opening {
        path,
        writable: false,
    }));
    openings
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// What varies per attempt in the environment.
struct ContractEnv<'a> {
    task_env: &'a [(String, String)],
    run_env: Vec<(String, String)>,
    attempt: u32,
    bin_dir: &'a Path,
}

/// The environment of an attempt, as a cluster gives a task pod. In increasing precedence:
/// the backend's extra variables, the task's env, the run's env (set at execution time, so it
/// overrides what the task was registered with), then what the cluster itself sets.
fn contract_env(
    engine: &Engine,
    record: &ActionRecord,
    task: &flyteidl2::flyteidl::workflow::TaskAction,
    per: ContractEnv<'_>,
) -> Vec<(String, String)> {
    let mut env = engine.config.extra_env.clone();
    env.extend(crate::policy::task_environment(per.task_env, &per.run_env));
    let (task_project, task_domain, task_name, task_version) = task
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.id.as_ref())
        .map(|t| {
            (
                t.project.clone(),
                t.domain.clone(),
                t.name.clone(),
                t.version.clone(),
            )
        })
        .unwrap_or_default();
    let run = &record.run;
    // The org of identifiers is dropped (see names::RunKey); tasks still need one to name
    // their children, and a cluster's executor passes "local".
    let org = if run.org.is_empty() {
        "local"
    } else {
        run.org.as_str()
    };
    let mut path = per.bin_dir.display().to_string();
    if let Some(inherited) = std::env::var_os("PATH") {
        path.push(':');
        path.push_str(&inherited.to_string_lossy());
    }
    let pod_name = format!(
        "{}-{}-{}",
        run.name,
        record.name,
        per.attempt.saturating_sub(1)
    );
    let contract: [(&str, String); 21] = [
        (contract::EXECUTION_ID, run.name.clone()),
        (contract::EXECUTION_PROJECT, run.project.clone()),
        (contract::EXECUTION_DOMAIN, run.domain.clone()),
        (
            contract::ATTEMPT_NUMBER,
            per.attempt.saturating_sub(1).to_string(),
        ),
        (contract::TASK_PROJECT, task_project),
        (contract::TASK_DOMAIN, task_domain),
        (contract::TASK_NAME, task_name),
        (contract::TASK_VERSION, task_version),
        (contract::POD_NAME, pod_name),
        (contract::ACTION_NAME, record.name.clone()),
        (contract::RUN_NAME, run.name.clone()),
        (contract::RUN_BASE, record.run_output_base.clone()),
        (contract::ORG_NAME, org.to_string()),
        (contract::ENDPOINT, engine.endpoint.clone()),
        (contract::INSECURE, engine.config.tls.is_none().to_string()),
        (contract::USE_ACTIONS, "1".into()),
        // Local storage stands in for an object store, where writing a key needs no
        // directory; fsspec's local files need this to behave the same.
        ("FSSPEC_FILE", r#"{"auto_mkdir": true}"#.into()),
        ("PATH", path),
        ("PYTHONUNBUFFERED", "1".into()),
        // Extras only the embedded backend sets; a task must not need them.
        (
            contract::EXTRA_DATA_DIR,
            engine.layout.root().display().to_string(),
        ),
        (contract::EXTRA_ATTEMPT, per.attempt.to_string()),
    ];
    for (key, value) in contract {
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value));
    }
    env.retain(|(k, _)| k != contract::EXTRA_ACTION_TOKEN);
    env.push((
        contract::EXTRA_ACTION_TOKEN.to_string(),
        engine.attempt_keys.issue(AttemptClaim {
            seq: record.seq,
            attempt: per.attempt,
        }),
    ));
    env
}

/// Remembers the attempt's process, so a restarted backend can find it again.
fn record_process(engine: &Engine, job: &Job, process: ProcessRef) {
    if let Err(err) = engine
        .store
        .set_process(job.record.seq, job.attempt, process)
    {
        // The attempt still runs; only recovery after a crash loses the ability to find it.
        tracing::error!(%err, action = %job.record.name, "could not record the attempt's process");
    }
}

/// Starts the attempt as a new process running the container's program.
fn spawn(engine: &Engine, prepared: Prepared) -> Result<(Job, tokio::process::Child), Verdict> {
    let Prepared {
        mut job,
        program,
        args,
        env,
        work_dir,
        log,
        sandboxed,
        openings,
        ..
    } = prepared;
    let log = log.ok_or_else(|| launch_failed("the attempt's log file was not created".into()))?;
    let launch = Launch {
        program: &program,
        args: &args,
        env,
        work_dir: &work_dir,
        log,
        view: engine
            .hider
            .as_ref()
            .filter(|_| sandboxed)
            .map(|_| View::new(engine.layout.root(), &openings, Some(&work_dir))),
        hider: engine.hider.clone().filter(|_| sandboxed),
    };
    let mut command = launch
        .command()
        .map_err(|e| launch_failed(format!("could not prepare {}: {e}", program.display())))?;
    let child = command
        .spawn()
        .map_err(|e| launch_failed(format!("could not start {}: {e}", program.display())))?;
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return Err(launch_failed(
            "the runtime process ended before its pid could be read".into(),
        ));
    };
    let process = ProcessRef {
        pid,
        start_ticks: procfs::start_ticks(pid).unwrap_or_default(),
    };
    record_process(engine, &job, process);
    job.pgid = pid;
    Ok((job, child))
}

/// How long a forked child may take to become its own process group leader.
const SETSID_LIMIT: Duration = Duration::from_secs(2);

/// Has the fork server fork the attempt, then supervises it like a spawned one.
async fn fork_and_supervise(
    engine: Arc<Engine>,
    prepared: Prepared,
    control: watch::Receiver<Control>,
) {
    let Prepared {
        mut job,
        args,
        env,
        work_dir,
        log_path,
        log,
        sandboxed,
        openings,
        ..
    } = prepared;
    // The child appends to the log itself; it was only created (empty) here.
    drop(log);
    let started = match engine.forks.as_ref() {
        Some(forks) => {
            let request = LaunchRequest {
                args: &args,
                env: &env,
                cwd: &work_dir,
                log: &log_path,
                view: engine
                    .hider
                    .as_ref()
                    .filter(|_| sandboxed)
                    .map(|_| (engine.layout.root(), openings.as_slice())),
            };
            match forks.launch(&request).await {
                Ok(forked) => own_group(forked.pid)
                    .await
                    .map(|start_ticks| (forked, start_ticks)),
                Err(message) => Err(message),
            }
        }
        None => Err("no fork server is configured".to_string()),
    };
    let (forked, start_ticks) = match started {
        Ok(started) => started,
        Err(message) => {
            let cause = match *control.borrow() {
                // The backend is going down as if it crashed: leave the action as it is.
                Control::Abandon => return,
                Control::Abort => ExitCause::Aborted,
                Control::Shutdown => ExitCause::Shutdown,
                Control::Run => ExitCause::LaunchFailed(message),
            };
            conclude(&engine, &job, cause);
            return;
        }
    };
    let process = ProcessRef {
        pid: forked.pid,
        start_ticks,
    };
    record_process(&engine, &job, process);
    if let Some(forks) = engine.forks.as_ref() {
        forks.release(&forked).await;
    }
    job.pgid = forked.pid;
    engine.scheduler.set_pgid(job.record.seq, forked.pid);
    let child = ChildProc::Forked(ForkedChild::new(process, forked.exit));
    // An abort or shutdown that came while forking is still unseen in `control`, so the
    // monitor acts on it at once.
    supervise(engine, job, child, control).await;
}

/// Waits until a forked child leads its own process group (the server's child calls setsid()
/// first thing), so that killing the group reaches it. Returns its start time (0 if it is
/// already gone; its exit report will tell how it ended).
async fn own_group(pid: i32) -> Result<u64, String> {
    let deadline = tokio::time::Instant::now() + SETSID_LIMIT;
    loop {
        match procfs::group_of(pid) {
            None => return Ok(0),
            Some((pgrp, start_ticks)) if pgrp == pid => return Ok(start_ticks),
            Some(_) if tokio::time::Instant::now() >= deadline => {
                procfs::kill_process(pid);
                return Err(format!(
                    "the fork server's child {pid} did not start its own session (setsid) \
                     within {}s, so it could not be supervised; it was killed",
                    SETSID_LIMIT.as_secs()
                ));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}
