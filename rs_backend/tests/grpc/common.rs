//! Test harness: a backend on 127.0.0.1:0 in a temp dir, real gRPC clients, a fake runtime.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flyte_backend::{start, BackendConfig, RunningBackend};
use flyteidl2::flyteidl::actions::actions_service_client::ActionsServiceClient;
use flyteidl2::flyteidl::actions::{action, Action, EnqueueRequest};
use flyteidl2::flyteidl::common::{ActionIdentifier, ActionPhase, RunIdentifier};
use flyteidl2::flyteidl::core::{
    literal, primitive, resources::ResourceEntry, resources::ResourceName, scalar,
    task_template::Target, Container, Identifier, KeyValuePair, Literal, Primitive, Resources,
    RetryStrategy, Scalar, TaskMetadata, TaskTemplate,
};
use flyteidl2::flyteidl::task::{Inputs, NamedLiteral, Outputs, TaskSpec};
use flyteidl2::flyteidl::workflow::run_logs_service_client::RunLogsServiceClient;
use flyteidl2::flyteidl::workflow::run_service_client::RunServiceClient;
use flyteidl2::flyteidl::workflow::{
    create_run_request, ActionDetails, CreateRunRequest, GetActionDetailsRequest, TaskAction,
};
use prost::Message;
use tonic::transport::Channel;

const FAKE_RUNTIME: &str = include_str!("fake_runtime.py");
const PRELOAD: &str = include_str!("preload.py");
/// The SDK's fork server, run from the source tree (it needs only the standard library when
/// it runs another program than the SDK's runtime): the tests speak the real protocol.
const FORK_SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../python/flyte/_runtime/_forkserver.py"
);
/// Upper bound for anything a test waits for; tests finish far sooner.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub ctl: PathBuf,
    script: PathBuf,
    /// Attempts are forked by the SDK's fork server instead of spawned.
    forked: bool,
    pub backend: Option<RunningBackend>,
    pub runs: RunServiceClient<Channel>,
    pub actions: ActionsServiceClient<Channel>,
    pub logs: RunLogsServiceClient<Channel>,
}

pub type Tweak = fn(&mut BackendConfig);

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: Tweak) -> Self {
        Self::start_mode(false, tweak).await
    }

    /// A backend whose attempts the SDK's fork server forks (the tweak sees `fork_server` set).
    pub async fn start_forked(tweak: Tweak) -> Self {
        Self::start_mode(true, tweak).await
    }

    async fn start_mode(forked: bool, tweak: Tweak) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ctl = dir.path().join("ctl");
        std::fs::create_dir_all(&ctl).expect("ctl dir");
        // The fake runtime is the default environment's `flyte-action` program, so it is
        // both spawned and (with a fork server) forked like the SDK's runtime.
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        let script = bin.join(flyte_backend::contract::RUNTIME_PROGRAM);
        std::fs::write(&script, format!("#!/usr/bin/env python3\n{FAKE_RUNTIME}"))
            .expect("write fake runtime");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("make the fake runtime executable");
        }
        std::fs::write(dir.path().join("preload.py"), PRELOAD).expect("write preload script");
        let backend = launch(dir.path(), &script, forked, tweak).await;
        let (runs, actions, logs) = clients(&backend).await;
        Self {
            dir,
            ctl,
            script,
            forked,
            backend: Some(backend),
            runs,
            actions,
            logs,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn endpoint(&self) -> String {
        self.backend.as_ref().expect("backend running").endpoint()
    }

    /// Starts a new backend on the same data dir (the old one must be stopped).
    pub async fn restart(&mut self, tweak: Tweak) {
        assert!(self.backend.is_none(), "stop the backend first");
        let backend = launch(self.dir.path(), &self.script, self.forked, tweak).await;
        let (runs, actions, logs) = clients(&backend).await;
        self.runs = runs;
        self.actions = actions;
        self.logs = logs;
        self.backend = Some(backend);
    }

    pub fn release(&self, name: &str) {
        std::fs::write(self.ctl.join(name), b"go").expect("write release file");
    }

    /// Waits for a control file the fake runtime writes and returns its content.
    pub async fn ctl_file(&self, name: &str) -> String {
        let path = self.ctl.join(name);
        eventually(&format!("control file {name}"), || {
            std::fs::read_to_string(&path).ok()
        })
        .await
    }

    pub async fn pid_of(&self, run: &str, action: &str, attempt: u32) -> i32 {
        self.ctl_file(&format!("pid.{run}.{action}.{attempt}"))
            .await
            .trim()
            .parse()
            .expect("pid file holds a pid")
    }

    pub async fn grandchild_of(&self, run: &str, action: &str) -> i32 {
        self.ctl_file(&format!("grandchild.{run}.{action}"))
            .await
            .trim()
            .parse()
            .expect("grandchild file holds a pid")
    }

    pub fn task(&self, mode: &str) -> Task {
        Task {
            args: vec![
                flyte_backend::contract::RUNTIME_PROGRAM.into(),
                "--mode".into(),
                mode.into(),
                "--out".into(),
                "{{.outputPrefix}}".into(),
                "--ctl".into(),
                self.ctl.display().to_string(),
            ],
            env: Vec::new(),
            retries: 0,
            timeout: None,
            memory: None,
        }
    }

    pub async fn create_run(&mut self, name: &str, task: &Task, inputs: Inputs) {
        self.runs
            .create_run(CreateRunRequest {
                id: Some(create_run_request::Id::RunId(run_id(name))),
                task: Some(create_run_request::Task::TaskSpec(task.spec())),
                input_wrapper: Some(create_run_request::InputWrapper::Inputs(inputs)),
                ..Default::default()
            })
            .await
            .expect("create run");
    }

    pub async fn enqueue_task(&mut self, run: &str, name: &str, parent: &str, task: &Task) {
        let input_uri = format!("file://{}/{name}-inputs.pb", self.dir.path().display());
        std::fs::write(
            input_uri.trim_start_matches("file://"),
            Inputs::default().encode_to_vec(),
        )
        .expect("write child inputs");
        self.actions
            .enqueue(EnqueueRequest {
                action: Some(Action {
                    action_id: Some(action_id(run, name)),
                    parent_action_name: Some(parent.into()),
                    input_uri,
                    spec: Some(action::Spec::Task(task.action())),
                    ..Default::default()
                }),
                run_spec: None,
            })
            .await
            .expect("enqueue");
    }

    pub async fn details(&mut self, run: &str, action: &str) -> ActionDetails {
        self.runs
            .get_action_details(GetActionDetailsRequest {
                action_id: Some(action_id(run, action)),
            })
            .await
            .expect("get action details")
            .into_inner()
            .details
            .expect("details")
    }

    /// Polls until the action's phase satisfies `done`.
    pub async fn wait_for(
        &mut self,
        run: &str,
        action: &str,
        what: &str,
        done: impl Fn(ActionPhase) -> bool,
    ) -> ActionDetails {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let details = self.details(run, action).await;
            if done(phase_of(&details)) {
                return details;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{run}/{action} never became {what}; last: {details:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_terminal(&mut self, run: &str, action: &str) -> ActionDetails {
        self.wait_for(run, action, "terminal", |p| {
            matches!(
                p,
                ActionPhase::Succeeded
                    | ActionPhase::Failed
                    | ActionPhase::Aborted
                    | ActionPhase::TimedOut
            )
        })
        .await
    }

    pub async fn wait_running(&mut self, run: &str, action: &str) -> ActionDetails {
        self.wait_for(run, action, "running", |p| p == ActionPhase::Running)
            .await
    }
}

async fn launch(root: &Path, script: &Path, forked: bool, tweak: Tweak) -> RunningBackend {
    let mut config = BackendConfig::new(
        root.join("data"),
        script.parent().expect("the script is in bin").to_path_buf(),
    );
    if forked {
        config.fork_server = Some(vec![
            "python3".into(),
            FORK_SERVER.into(),
            "--program".into(),
            script.display().to_string(),
            "--preload".into(),
            root.join("preload.py").display().to_string(),
        ]);
        // A forked child enters its view of the data dir through the SDK's extension, which
        // this bare python3 has not: these tests are about forking and supervising, and the
        // sandbox of forked attempts is tested with the SDK (tests/integration).
        config.sandbox = false;
    }
    config
        .extra_env
        .push(("EXTRA_FROM_CONFIG".into(), "yes".into()));
    tweak(&mut config);
    start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start backend")
}

async fn clients(
    backend: &RunningBackend,
) -> (
    RunServiceClient<Channel>,
    ActionsServiceClient<Channel>,
    RunLogsServiceClient<Channel>,
) {
    let url = format!("http://{}", backend.endpoint());
    let channel = Channel::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connect");
    (
        RunServiceClient::new(channel.clone()),
        ActionsServiceClient::new(channel.clone()),
        RunLogsServiceClient::new(channel),
    )
}

/// Polls `probe` until it yields a value.
pub async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A live process (zombies count as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
            !matches!(state.as_deref(), Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// The parent pid of a live process.
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    stat[close + 1..].split_whitespace().nth(1)?.parse().ok()
}

pub async fn wait_gone(pid: i32) {
    eventually(&format!("process {pid} to end"), || {
        (!alive(pid)).then_some(())
    })
    .await
}

pub fn run_id(name: &str) -> RunIdentifier {
    RunIdentifier {
        org: String::new(),
        project: "proj".into(),
        domain: "dev".into(),
        name: name.into(),
    }
}

pub fn action_id(run: &str, name: &str) -> ActionIdentifier {
    ActionIdentifier {
        run: Some(run_id(run)),
        name: name.into(),
    }
}

pub fn phase_of(details: &ActionDetails) -> ActionPhase {
    let raw = details.status.as_ref().map_or(0, |s| s.phase);
    ActionPhase::try_from(raw).unwrap_or(ActionPhase::Unspecified)
}

pub fn int_literal(name: &str, value: i64) -> NamedLiteral {
    NamedLiteral {
        name: name.into(),
        value: Some(Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Primitive(Primitive {
                    value: Some(primitive::Value::Integer(value)),
                })),
            }))),
            ..Default::default()
        }),
    }
}

pub fn outputs_hex(outputs: &Outputs) -> String {
    hex(&outputs.encode_to_vec())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A task for the fake runtime.
#[derive(Clone)]
pub struct Task {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub retries: u32,
    pub timeout: Option<Duration>,
    pub memory: Option<String>,
}

impl Task {
    pub fn arg(mut self, key: &str, value: &str) -> Self {
        self.args.push(key.into());
        self.args.push(value.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn memory(mut self, quantity: &str) -> Self {
        self.memory = Some(quantity.into());
        self
    }

    pub fn spec(&self) -> TaskSpec {
        let container = Container {
            image: "ignored:latest".into(),
            command: vec!["ignored".into()],
            args: self.args.clone(),
            env: self
                .env
                .iter()
                .map(|(k, v)| KeyValuePair {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            resources: self.memory.as_ref().map(|m| Resources {
                requests: vec![],
                limits: vec![ResourceEntry {
                    name: ResourceName::Memory as i32,
                    value: m.clone(),
                }],
            }),
            ..Default::default()
        };
        TaskSpec {
            task_template: Some(TaskTemplate {
                id: Some(Identifier {
                    project: "proj".into(),
                    domain: "dev".into(),
                    name: "tests.fake_task".into(),
                    version: "v1".into(),
                    ..Default::default()
                }),
                r#type: "python".into(),
                metadata: Some(TaskMetadata {
                    timeout: self.timeout.map(|t| flyteidl2::google::protobuf::Duration {
                        seconds: t.as_secs() as i64,
                        nanos: t.subsec_nanos() as i32,
                    }),
                    retries: Some(RetryStrategy {
                        retries: self.retries,
                        backoff: None,
                    }),
                    ..Default::default()
                }),
                target: Some(Target::Container(container)),
                ..Default::default()
            }),
            short_name: "fake_task".into(),
            ..Default::default()
        }
    }

    pub fn action(&self) -> TaskAction {
        TaskAction {
            spec: Some(self.spec()),
            ..Default::default()
        }
    }
}

/// The error info of a failed action's details.
pub fn error_of(
    details: &flyteidl2::flyteidl::workflow::ActionDetails,
) -> flyteidl2::flyteidl::workflow::ErrorInfo {
    match &details.result {
        Some(flyteidl2::flyteidl::workflow::action_details::Result::ErrorInfo(info)) => {
            info.clone()
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A user-kind ExecutionError, hex-encoded for the fake runtime's `error.pb`.
pub fn user_error_hex() -> String {
    use flyteidl2::flyteidl::core::{
        container_error, execution_error::ErrorKind, ContainerError, ErrorDocument,
    };
    hex(&ErrorDocument {
        error: Some(ContainerError {
            code: "ValueError".into(),
            message: "bad value".into(),
            kind: container_error::Kind::Recoverable as i32,
            origin: ErrorKind::User as i32,
        }),
    }
    .encode_to_vec())
}

/// A ListRequest filter.
pub fn list_filter(
    field: &str,
    function: flyteidl2::flyteidl::common::filter::Function,
    values: &[&str],
) -> flyteidl2::flyteidl::common::Filter {
    flyteidl2::flyteidl::common::Filter {
        function: function as i32,
        field: field.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

/// A ListRequest sort key.
pub fn list_sort(
    key: &str,
    direction: flyteidl2::flyteidl::common::sort::Direction,
) -> flyteidl2::flyteidl::common::Sort {
    flyteidl2::flyteidl::common::Sort {
        key: key.into(),
        direction: direction as i32,
    }
}

/// The present moment as the reference SDK sends times in filters:
/// `datetime.astimezone(timezone.utc).isoformat()`.
pub fn utc_now_iso() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// A listing request as the reference SDK's `Run.listall` / `Action.listall` builds it: 100 a
/// page, sorted by the deprecated `sort_by` (oldest first unless asked otherwise).
#[allow(deprecated)]
pub fn sdk_list_request(
    filters: Vec<flyteidl2::flyteidl::common::Filter>,
    sort: Option<flyteidl2::flyteidl::common::Sort>,
) -> flyteidl2::flyteidl::common::ListRequest {
    flyteidl2::flyteidl::common::ListRequest {
        limit: 100,
        sort_by: Some(sort.unwrap_or_else(|| {
            list_sort(
                "created_at",
                flyteidl2::flyteidl::common::sort::Direction::Ascending,
            )
        })),
        filters,
        ..Default::default()
    }
}
