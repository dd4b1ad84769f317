//! How an embedded backend is set up: where it keeps state and how it runs an action.

use std::path::PathBuf;

use crate::error::BackendError;

/// Settings of one embedded backend instance.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// All state lives here: `backend.db` (SQLite, WAL), `data/`, `logs/`, `work/`.
    pub data_dir: PathBuf,
    /// Program and leading arguments that run one action, e.g.
    /// `["/path/python", "-m", "flyte._runtime"]`. The task's container args are appended.
    pub runtime_command: Vec<String>,
    /// Most processes that may compute at once. Parents blocked on children do not count.
    pub max_parallel: usize,
    /// Relaunches after crashes (lost processes, signals, missing results), separate from the
    /// task's own retries.
    pub system_retries: u32,
    /// Extra environment for every action process, applied before the task's own env.
    pub extra_env: Vec<(String, String)>,
    /// Program and arguments of a fork server, e.g.
    /// `["/path/python", "-m", "flyte._runtime._forkserver"]`. None: every attempt is a fresh
    /// `runtime_command` process. Set: one warm server is started on the first launch (and
    /// again whenever it dies) and forks every attempt, which receives only the task's
    /// container args; see the executor's `forkserver` module for the protocol.
    pub fork_server: Option<Vec<String>>,
}

impl BackendConfig {
    pub const DEFAULT_MAX_PARALLEL: usize = 8;
    pub const DEFAULT_SYSTEM_RETRIES: u32 = 3;

    pub fn new(data_dir: PathBuf, runtime_command: Vec<String>) -> Self {
        Self {
            data_dir,
            runtime_command,
            max_parallel: Self::DEFAULT_MAX_PARALLEL,
            system_retries: Self::DEFAULT_SYSTEM_RETRIES,
            extra_env: Vec::new(),
            fork_server: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), BackendError> {
        match self.runtime_command.first() {
            None => {
                return Err(BackendError::InvalidConfig(
                    "runtime_command is empty: it must name the program that runs an action".into(),
                ))
            }
            Some(program) if program.is_empty() => {
                return Err(BackendError::InvalidConfig(
                    "runtime_command starts with an empty program name".into(),
                ))
            }
            Some(_) => {}
        }
        if let Some(command) = &self.fork_server {
            match command.first() {
                None => {
                    return Err(BackendError::InvalidConfig(
                        "fork_server is empty: leave it unset, or name the fork server program"
                            .into(),
                    ))
                }
                Some(program) if program.is_empty() => {
                    return Err(BackendError::InvalidConfig(
                        "fork_server starts with an empty program name".into(),
                    ))
                }
                Some(_) => {}
            }
            if command.iter().any(|arg| arg.contains('\0')) {
                return Err(BackendError::InvalidConfig(
                    "fork_server has an argument with a NUL byte".into(),
                ));
            }
        }
        if self.max_parallel == 0 {
            return Err(BackendError::InvalidConfig(
                "max_parallel must be at least 1".into(),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(BackendError::InvalidConfig("data_dir is empty".into()));
        }
        for (key, _) in &self.extra_env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(BackendError::InvalidConfig(format!(
                    "extra_env has an invalid variable name {key:?}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let config = BackendConfig::new("/tmp/x".into(), vec!["python3".into()]);
        assert_eq!(config.max_parallel, 8);
        assert_eq!(config.system_retries, 3);
        assert!(config.validate().is_ok());

        let empty = BackendConfig::new("/tmp/x".into(), vec![]);
        assert!(matches!(
            empty.validate(),
            Err(BackendError::InvalidConfig(_))
        ));

        let mut zero = BackendConfig::new("/tmp/x".into(), vec!["p".into()]);
        zero.max_parallel = 0;
        assert!(zero.validate().is_err());

        let mut bad_env = BackendConfig::new("/tmp/x".into(), vec!["p".into()]);
        bad_env.extra_env.push(("A=B".into(), "c".into()));
        assert!(bad_env.validate().is_err());

        let mut forked = BackendConfig::new("/tmp/x".into(), vec!["p".into()]);
        assert_eq!(forked.fork_server, None);
        forked.fork_server = Some(vec!["python3".into(), "-m".into(), "server".into()]);
        assert!(forked.validate().is_ok());
        forked.fork_server = Some(vec![]);
        assert!(forked.validate().is_err());
        forked.fork_server = Some(vec![String::new()]);
        assert!(forked.validate().is_err());
    }
}
