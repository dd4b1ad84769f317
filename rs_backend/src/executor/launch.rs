//! Starting one attempt of a queued task action.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::core::execution_error::ErrorKind;
use flyteidl2::flyteidl::task::RunSpec;
use prost::Message;
use tokio::sync::watch;

use super::command::{checkpoint_prefix, substitute, Launch, Placeholders};
use super::monitor::{supervise, Job};
use super::outcome::{error, Verdict};
use super::spec::ExecSpec;
use super::{conclude_attempt, Control, Running};
use crate::clock::now_ms;
use crate::engine::Engine;
use crate::layout::{attempt_prefix, raw_data_prefix};
use crate::procfs::{self, ProcessRef};
use crate::store::{ActionKind, ActionRecord};
use crate::views;

pub enum Launched {
    Started(Running),
    /// Nothing to do: the action is gone, no longer queued, or not a task.
    Skipped,
    /// The attempt could not start; this is the action after recording that.
    Failed(Box<ActionRecord>),
}

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
        return Launched::Skipped;
    }
    let Some(attempt) = record.attempts.checked_add(1) else {
        return Launched::Skipped;
    };
    let log_path = engine.layout.log_path(&record.run, &record.name, attempt);
    let record =
        match engine
            .store
            .start_attempt(seq, attempt, &log_path.to_string_lossy(), now_ms())
        {
            Ok(Some(record)) => record,
            Ok(None) => return Launched::Skipped,
            Err(err) => {
                tracing::error!(%err, action = %record.name, "could not start an attempt");
                return Launched::Skipped;
            }
        };
    engine.publish(record.clone());

    let (job, child) = match spawn(engine, &record, attempt, &log_path) {
        Ok(started) => started,
        Err((verdict, retries)) => {
            return match conclude_attempt(engine, &record, attempt, verdict, retries) {
                Some(updated) => Launched::Failed(Box::new(updated)),
                None => Launched::Skipped,
            }
        }
    };
    let (control, control_rx) = watch::channel(Control::Run);
    let pgid = job.pgid;
    let task = tokio::spawn(supervise(engine.clone(), job, child, control_rx));
    Launched::Started(Running {
        run: record.run.clone(),
        name: record.name.clone(),
        pgid,
        control,
        task: Some(task),
    })
}

/// The `RunSpec.envs` of the action's run.
fn run_env(engine: &Engine, record: &ActionRecord) -> Vec<(String, String)> {
    let spec = match engine.store.run(&record.run) {
        Ok(Some(run)) => run.run_spec,
        Ok(None) => None,
        Err(err) => {
            tracing::warn!(%err, run = %record.run, "could not read the run spec");
            None
        }
    };
    spec.and_then(|bytes| RunSpec::decode(bytes.as_slice()).ok())
        .and_then(|spec| spec.envs)
        .map(|envs| {
            envs.values
                .into_iter()
                .map(|kv| (kv.key, kv.value))
                .collect()
        })
        .unwrap_or_default()
}

fn invalid(message: String) -> (Verdict, u32) {
    (
        Verdict::Invalid {
            error: error("InvalidTaskSpec", ErrorKind::System, message),
        },
        0,
    )
}

fn launch_failed(message: String, retries: u32) -> (Verdict, u32) {
    (
        Verdict::SystemFailure {
            error: error("LaunchFailed", ErrorKind::System, message),
        },
        retries,
    )
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

/// Prepares the attempt's directories and starts its process. On failure, returns how to
/// conclude the attempt and the task's retry budget.
fn spawn(
    engine: &Engine,
    record: &ActionRecord,
    attempt: u32,
    log_path: &Path,
) -> Result<(Job, tokio::process::Child), (Verdict, u32)> {
    let task = views::task_action(record)
        .ok_or_else(|| invalid("the stored task spec of this action cannot be decoded".into()))?;
    let spec = ExecSpec::from_task(&task).map_err(invalid)?;
    let retries = spec.retries;
    let base = &record.run_output_base;
    let (output_dir, output_uri) = attempt_prefix(base, &record.name, attempt).map_err(invalid)?;
    let raw_prefix = raw_data_prefix(base, &record.name, attempt).map_err(invalid)?;
    let previous_checkpoint = match attempt.checked_sub(1).filter(|a| *a > 0) {
        Some(previous) => attempt_prefix(base, &record.name, previous)
            .map(|(dir, _)| checkpoint_prefix(&dir))
            .unwrap_or_default(),
        None => String::new(),
    };
    let work_dir = engine.layout.work_dir(&record.run, &record.name, attempt);

    fs::create_dir_all(&output_dir).map_err(|e| {
        launch_failed(
            format!(
                "could not create the output prefix {}: {e}",
                output_dir.display()
            ),
            retries,
        )
    })?;
    fresh_dir(&work_dir).map_err(|e| {
        launch_failed(
            format!("could not create the work dir {}: {e}", work_dir.display()),
            retries,
        )
    })?;
    let log = create_log(log_path).map_err(|e| {
        launch_failed(
            format!("could not create the log file {}: {e}", log_path.display()),
            retries,
        )
    })?;

    let checkpoint = checkpoint_prefix(&output_dir);
    let placeholders = Placeholders {
        input: &record.input_uri,
        output_prefix: &output_uri,
        raw_output_prefix: &raw_prefix,
        checkpoint_prefix: &checkpoint,
        prev_checkpoint_prefix: &previous_checkpoint,
        run_name: &record.run.name,
        action_name: &record.name,
        attempt,
    };
    let args = spec
        .args
        .iter()
        .map(|arg| substitute(arg, &placeholders))
        .collect();
    // Increasing precedence: backend config, the task's env, the run's env (set at execution
    // time, so it overrides what the task was registered with), then the backend's variables.
    let mut env = engine.config.extra_env.clone();
    env.extend(spec.env.iter().cloned());
    env.extend(run_env(engine, record));
    let data_dir = engine.layout.root().display().to_string();
    for (key, value) in [
        ("_FLYTE_ENDPOINT", engine.endpoint.as_str()),
        ("_FLYTE_INSECURE", "1"),
        ("_FLYTE_ORG", record.run.org.as_str()),
        ("_FLYTE_PROJECT", record.run.project.as_str()),
        ("_FLYTE_DOMAIN", record.run.domain.as_str()),
        ("_FLYTE_RUN", record.run.name.as_str()),
        ("_FLYTE_ACTION", record.name.as_str()),
        ("_FLYTE_ATTEMPT", attempt.to_string().as_str()),
        ("_FLYTE_RUN_OUTPUT_BASE", record.run_output_base.as_str()),
        ("_FLYTE_DATA_DIR", data_dir.as_str()),
        ("_FLYTE_INPUT_URI", record.input_uri.as_str()),
        ("_FLYTE_OUTPUT_PREFIX", output_uri.as_str()),
        ("_FLYTE_RAW_DATA_PREFIX", raw_prefix.as_str()),
        ("PYTHONUNBUFFERED", "1"),
    ] {
        env.push((key.to_string(), value.to_string()));
    }

    let program = engine
        .config
        .runtime_command
        .first()
        .cloned()
        .unwrap_or_default();
    let launch = Launch {
        runtime_command: &engine.config.runtime_command,
        args,
        env,
        work_dir: &work_dir,
        log,
    };
    let mut command = launch.command().map_err(|e| {
        launch_failed(
            format!("could not prepare the runtime command: {e}"),
            retries,
        )
    })?;
    let child = command.spawn().map_err(|e| {
        launch_failed(
            format!("could not start the runtime command {program:?}: {e}"),
            retries,
        )
    })?;
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return Err(launch_failed(
            "the runtime process ended before its pid could be read".into(),
            retries,
        ));
    };
    let process = ProcessRef {
        pid,
        start_ticks: procfs::start_ticks(pid).unwrap_or_default(),
    };
    if let Err(err) = engine.store.set_process(record.seq, attempt, process) {
        // The attempt still runs; only recovery after a crash loses the ability to find it.
        tracing::error!(%err, action = %record.name, "could not record the attempt's process");
    }
    let job = Job {
        record: record.clone(),
        attempt,
        pgid: pid,
        timeout: spec.timeout,
        memory_limit: spec.memory_limit,
        retries,
        output_dir,
        output_uri,
    };
    Ok((job, child))
}
