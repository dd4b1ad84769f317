"""Names Rust and Python share, defined once in Rust (`flyte_backend::contract`): the
environment of a task's process (a cluster's pod contract, plus the embedded backend's
extras), the runtime program, the backend-kind header; and the rule for run names."""

from __future__ import annotations

from typing import Final

from flyte._core import CONTRACT, check_run_name, sleep_seconds

RUNTIME_PROGRAM: Final[str] = CONTRACT["RUNTIME_PROGRAM"]
SLEEP_TASK_TYPE: Final[str] = CONTRACT["SLEEP_TASK_TYPE"]
RAW_CONTAINER_TASK_TYPE: Final[str] = CONTRACT["RAW_CONTAINER_TASK_TYPE"]
RAW_CONTAINER_FLAG: Final[str] = CONTRACT["RAW_CONTAINER_FLAG"]
CODE_BUNDLE_ARG: Final[str] = CONTRACT["CODE_BUNDLE_ARG"]
CODE_ROOT_ARG: Final[str] = CONTRACT["CODE_ROOT_ARG"]
CODE_VERSION_ARG: Final[str] = CONTRACT["CODE_VERSION_ARG"]
EXECUTION_ID: Final[str] = CONTRACT["EXECUTION_ID"]
EXECUTION_PROJECT: Final[str] = CONTRACT["EXECUTION_PROJECT"]
EXECUTION_DOMAIN: Final[str] = CONTRACT["EXECUTION_DOMAIN"]
ATTEMPT_NUMBER: Final[str] = CONTRACT["ATTEMPT_NUMBER"]
TASK_PROJECT: Final[str] = CONTRACT["TASK_PROJECT"]
TASK_DOMAIN: Final[str] = CONTRACT["TASK_DOMAIN"]
TASK_NAME: Final[str] = CONTRACT["TASK_NAME"]
TASK_VERSION: Final[str] = CONTRACT["TASK_VERSION"]
POD_NAME: Final[str] = CONTRACT["POD_NAME"]
ACTION_NAME: Final[str] = CONTRACT["ACTION_NAME"]
RUN_NAME: Final[str] = CONTRACT["RUN_NAME"]
RUN_BASE: Final[str] = CONTRACT["RUN_BASE"]
ORG_NAME: Final[str] = CONTRACT["ORG_NAME"]
ENDPOINT: Final[str] = CONTRACT["ENDPOINT"]
INSECURE: Final[str] = CONTRACT["INSECURE"]
USE_ACTIONS: Final[str] = CONTRACT["USE_ACTIONS"]
SECRETS_DIR: Final[str] = CONTRACT["SECRETS_DIR"]
EXTRA_DATA_DIR: Final[str] = CONTRACT["EXTRA_DATA_DIR"]
EXTRA_ATTEMPT: Final[str] = CONTRACT["EXTRA_ATTEMPT"]
EXTRA_ACTION_TOKEN: Final[str] = CONTRACT["EXTRA_ACTION_TOKEN"]
BACKEND_KIND_HEADER: Final[str] = CONTRACT["BACKEND_KIND_HEADER"]
EMBEDDED_BACKEND_KIND: Final[str] = CONTRACT["EMBEDDED_BACKEND_KIND"]

__all__ = [
    "ACTION_NAME",
    "ATTEMPT_NUMBER",
    "BACKEND_KIND_HEADER",
    "CODE_BUNDLE_ARG",
    "CODE_ROOT_ARG",
    "CODE_VERSION_ARG",
    "EMBEDDED_BACKEND_KIND",
    "ENDPOINT",
    "EXECUTION_DOMAIN",
    "EXECUTION_ID",
    "EXECUTION_PROJECT",
    "EXTRA_ACTION_TOKEN",
    "EXTRA_ATTEMPT",
    "EXTRA_DATA_DIR",
    "INSECURE",
    "ORG_NAME",
    "POD_NAME",
    "RAW_CONTAINER_FLAG",
    "RAW_CONTAINER_TASK_TYPE",
    "RUNTIME_PROGRAM",
    "RUN_BASE",
    "RUN_NAME",
    "SECRETS_DIR",
    "SLEEP_TASK_TYPE",
    "TASK_DOMAIN",
    "TASK_NAME",
    "TASK_PROJECT",
    "TASK_VERSION",
    "USE_ACTIONS",
    "check_run_name",
    "sleep_seconds",
]
