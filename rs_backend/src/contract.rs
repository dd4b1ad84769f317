//! Names shared by this backend and the SDK's Python side: the environment of a task's
//! process (a Flyte 2 cluster's pod contract, plus this backend's extras), the program that
//! runs an attempt, and the header that tells clients what answered. Python reads them from
//! here (`flyte._core.CONTRACT`), so both sides always agree.

/// The console script of this SDK's wheel that runs one attempt of a task action: the first
/// container arg of every task it serializes. Attempts of it in the default environment are
/// forked from the warm fork server, when there is one.
pub const RUNTIME_PROGRAM: &str = "flyte-action";

// The pod contract: what a cluster sets on every task pod.
pub const EXECUTION_ID: &str = "FLYTE_INTERNAL_EXECUTION_ID";
pub const EXECUTION_PROJECT: &str = "FLYTE_INTERNAL_EXECUTION_PROJECT";
pub const EXECUTION_DOMAIN: &str = "FLYTE_INTERNAL_EXECUTION_DOMAIN";
/// 0-based.
pub const ATTEMPT_NUMBER: &str = "FLYTE_ATTEMPT_NUMBER";
pub const TASK_PROJECT: &str = "FLYTE_INTERNAL_TASK_PROJECT";
pub const TASK_DOMAIN: &str = "FLYTE_INTERNAL_TASK_DOMAIN";
pub const TASK_NAME: &str = "FLYTE_INTERNAL_TASK_NAME";
pub const TASK_VERSION: &str = "FLYTE_INTERNAL_TASK_VERSION";
pub const POD_NAME: &str = "_F_PN";
pub const ACTION_NAME: &str = "ACTION_NAME";
pub const RUN_NAME: &str = "RUN_NAME";
/// Where the run's outputs go (`<base>/<action>/<attempt>/`).
pub const RUN_BASE: &str = "_U_RUN_BASE";
pub const ORG_NAME: &str = "_U_ORG_NAME";
/// The endpoint a task's controller calls to start and watch its children.
pub const ENDPOINT: &str = "_U_EP_OVERRIDE";
pub const INSECURE: &str = "_U_INSECURE";
pub const USE_ACTIONS: &str = "_U_USE_ACTIONS";
/// Where mounted secrets are (a directory of files named by key).
pub const SECRETS_DIR: &str = "FLYTE_SECRETS_DEFAULT_DIR";

// Extras only this backend sets; a task may use them but must not need them.
/// The backend's data dir.
pub const EXTRA_DATA_DIR: &str = "_FLYTE_DATA_DIR";
/// The 1-based attempt number.
pub const EXTRA_ATTEMPT: &str = "_FLYTE_ATTEMPT";
/// The bearer token an action's process calls a backend that requires authentication with
/// (on a cluster, pods get their own credentials).
pub const EXTRA_ACTION_TOKEN: &str = "_FLYTE_ACTION_TOKEN";

/// A header on every RPC answer of this backend, naming what answered (a cluster sends none).
/// It runs tasks in environments on this machine, so clients need not build and push images
/// for it.
pub const BACKEND_KIND_HEADER: &str = "x-flyte-backend";
/// The value of [`BACKEND_KIND_HEADER`] this backend sends.
pub const EMBEDDED_BACKEND_KIND: &str = "embedded";

/// The task type the backend runs itself, with no process: a wait for the task's one input, a
/// duration (`flyte.extras.Sleep`).
pub const SLEEP_TASK_TYPE: &str = "core-sleep";

/// The task type of a raw container (`flyte.extras.ContainerTask`): the backend's own
/// runtime stages its inputs, runs its image, and collects its outputs (a cluster's data
/// sidecar does that there).
pub const RAW_CONTAINER_TASK_TYPE: &str = "raw-container";
/// The runtime's first argument when it runs a raw container rather than a Python task.
pub const RAW_CONTAINER_FLAG: &str = "--raw-container";

/// The runtime's arguments that name the code it runs (a code bundle's URI, a source root,
/// the code's version). A reusable worker imports one code version, so attempts with other
/// values run on other workers.
pub const CODE_BUNDLE_ARG: &str = "--bundle";
pub const CODE_ROOT_ARG: &str = "--root";
pub const CODE_VERSION_ARG: &str = "--version";

/// Every name above, by the name of its constant: what Python gets.
pub const NAMES: &[(&str, &str)] = &[
    ("RUNTIME_PROGRAM", RUNTIME_PROGRAM),
    ("EXECUTION_ID", EXECUTION_ID),
    ("EXECUTION_PROJECT", EXECUTION_PROJECT),
    ("EXECUTION_DOMAIN", EXECUTION_DOMAIN),
    ("ATTEMPT_NUMBER", ATTEMPT_NUMBER),
    ("TASK_PROJECT", TASK_PROJECT),
    ("TASK_DOMAIN", TASK_DOMAIN),
    ("TASK_NAME", TASK_NAME),
    ("TASK_VERSION", TASK_VERSION),
    ("POD_NAME", POD_NAME),
    ("ACTION_NAME", ACTION_NAME),
    ("RUN_NAME", RUN_NAME),
    ("RUN_BASE", RUN_BASE),
    ("ORG_NAME", ORG_NAME),
    ("ENDPOINT", ENDPOINT),
    ("INSECURE", INSECURE),
    ("USE_ACTIONS", USE_ACTIONS),
    ("SECRETS_DIR", SECRETS_DIR),
    ("EXTRA_DATA_DIR", EXTRA_DATA_DIR),
    ("EXTRA_ATTEMPT", EXTRA_ATTEMPT),
    ("EXTRA_ACTION_TOKEN", EXTRA_ACTION_TOKEN),
    ("BACKEND_KIND_HEADER", BACKEND_KIND_HEADER),
    ("EMBEDDED_BACKEND_KIND", EMBEDDED_BACKEND_KIND),
    ("SLEEP_TASK_TYPE", SLEEP_TASK_TYPE),
    ("RAW_CONTAINER_TASK_TYPE", RAW_CONTAINER_TASK_TYPE),
    ("RAW_CONTAINER_FLAG", RAW_CONTAINER_FLAG),
    ("CODE_BUNDLE_ARG", CODE_BUNDLE_ARG),
    ("CODE_ROOT_ARG", CODE_ROOT_ARG),
    ("CODE_VERSION_ARG", CODE_VERSION_ARG),
];
