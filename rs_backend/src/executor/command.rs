//! The command line and environment of one attempt.
//!
//! The task's `container.args` are run as given, as a cluster runs a pod's container: `args[0]`
//! is the program, found in the bin directory that stands in for the task's image (then on
//! PATH). Flyte's `{{.name}}` placeholders are filled in (matched case-insensitively, with
//! optional spaces, and `$` accepted for `.`, as Flyte's own executor does). Unknown
//! placeholders stay verbatim.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use crate::layout::dir_uri;

/// Values the placeholders stand for.
pub struct Placeholders<'a> {
    /// The action's input reference: the inputs file, or (offloaded inputs) the directory
    /// holding `inputs.pb`.
    pub input: &'a str,
    pub output_prefix: &'a str,
    pub raw_output_prefix: &'a str,
    pub checkpoint_prefix: &'a str,
    pub prev_checkpoint_prefix: &'a str,
    pub run_name: &'a str,
    pub action_name: &'a str,
    pub attempt: u32,
    /// RFC 3339, UTC.
    pub run_start_time: &'a str,
}

impl Placeholders<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        Some(match name.to_ascii_lowercase().as_str() {
            "input" => input_file(self.input),
            "inputprefix" => input_prefix(self.input),
            "outputprefix" => self.output_prefix.to_string(),
            "rawoutputdataprefix" => self.raw_output_prefix.to_string(),
            "checkpointoutputprefix" => self.checkpoint_prefix.to_string(),
            "prevcheckpointprefix" => self.prev_checkpoint_prefix.to_string(),
            "runname" => self.run_name.to_string(),
            "actionname" => self.action_name.to_string(),
            "attempt" => self.attempt.to_string(),
            "runstarttime" => self.run_start_time.to_string(),
            _ => return None,
        })
    }
}

const INPUTS_FILE: &str = "inputs.pb";

fn names_a_file(input: &str) -> bool {
    input
        .rsplit('/')
        .next()
        .is_some_and(|last| last.ends_with(".pb"))
}

/// The inputs file: the reference itself, or `inputs.pb` in the directory it names.
pub fn input_file(input: &str) -> String {
    if input.is_empty() || names_a_file(input) {
        input.to_string()
    } else {
        crate::layout::join_uri(input, INPUTS_FILE)
    }
}

/// The directory holding the inputs file, without a trailing '/'.
fn input_prefix(input: &str) -> String {
    if names_a_file(input) {
        match input.rfind('/') {
            Some(i) => input[..i].to_string(),
            None => String::new(),
        }
    } else {
        input.trim_end_matches('/').to_string()
    }
}

/// Where the program of an image's container lives: `bin_dir/program`, else PATH. A program
/// given as a path is used as it is.
pub fn resolve_program(bin_dir: &Path, program: &str) -> Result<PathBuf, String> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let candidate = bin_dir.join(program);
    if is_executable(&candidate) {
        return Ok(candidate);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(program);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "the task's program {program:?} (container.args[0]) is neither in {} nor on PATH; \
         map the task's image to an environment that has it (flyte start local --image \
         NAME=DIR)",
        bin_dir.display()
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Replaces every known `{{.name}}` in `arg`.
pub fn substitute(arg: &str, values: &Placeholders<'_>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = after_open[..close].trim();
        let replacement = inner
            .strip_prefix(['.', '$'])
            .and_then(|name| values.lookup(name.trim()));
        match replacement {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after_open[close + 2..];
    }
    out.push_str(rest);
    out
}

/// Everything needed to start one attempt's process.
pub struct Launch<'a> {
    pub program: &'a Path,
    /// The container args after the program.
    pub args: &'a [String],
    /// In increasing precedence: extra_env, the task's env, then the backend's own variables.
    pub env: Vec<(String, String)>,
    pub work_dir: &'a Path,
    pub log: std::fs::File,
    pub hider: Option<Arc<crate::sandbox::Hider>>,
    /// What the process sees of the data dir, with a `hider` (see [`crate::sandbox::View`]).
    pub view: Option<crate::sandbox::View>,
}

impl Launch<'_> {
    pub fn command(self) -> std::io::Result<tokio::process::Command> {
        let mut command = tokio::process::Command::new(self.program);
        command
            .args(self.args)
            .envs(self.env)
            .current_dir(self.work_dir)
            .stdin(Stdio::null())
            .stdout(self.log.try_clone()?)
            .stderr(self.log)
            // The process outlives a dropped handle on purpose: only the monitor decides when
            // it dies, and a crashed backend's processes are found again by pid on restart.
            .kill_on_drop(false);
        // Its own process group, so the whole tree can be signalled as one.
        own_session(&mut command, self.hider, self.view);
        Ok(command)
    }
}

/// Starts the command's process in a session (and process group) of its own: killing the group
/// reaches everything it started, and a Ctrl-C at the backend's terminal does not reach it.
/// With a `hider`, the backend's private files are hidden from the process and everything it
/// starts, and with a `view` too everything of the data dir but the view's openings (see
/// [`crate::sandbox`]).
pub fn own_session(
    command: &mut tokio::process::Command,
    hider: Option<Arc<crate::sandbox::Hider>>,
    mut view: Option<crate::sandbox::View>,
) {
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent; Hider::apply
    // only makes system calls on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(hider) = &hider {
                hider.apply(view.as_mut())?;
            }
            Ok(())
        });
    }
}

/// `<output prefix>_flytecheckpoints/`: where an attempt may leave a checkpoint for the next.
pub fn checkpoint_prefix(output_dir: &Path) -> String {
    dir_uri(&output_dir.join("_flytecheckpoints"))
}

/// What `{{.prevCheckpointPrefix}}` is on a first attempt: a cluster passes two quote marks.
pub const NO_PREVIOUS_CHECKPOINT: &str = "\"\"";

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Placeholders<'static> {
        Placeholders {
            input: "file:///d/r/a1/inputs.pb",
            output_prefix: "file:///d/r/a1/2/",
            raw_output_prefix: "file:///d/r/raw/a1/2/",
            checkpoint_prefix: "file:///d/r/a1/2/checkpoint/",
            prev_checkpoint_prefix: "file:///d/r/a1/1/checkpoint/",
            run_name: "r",
            action_name: "a1",
            attempt: 2,
            run_start_time: "2026-01-02T03:04:05Z",
        }
    }

    #[test]
    fn substitutes_known_placeholders() {
        let v = values();
        assert_eq!(substitute("{{.input}}", &v), "file:///d/r/a1/inputs.pb");
        assert_eq!(
            substitute("--out={{ .outputPrefix }}x", &v),
            "--out=file:///d/r/a1/2/x"
        );
        assert_eq!(
            substitute("{{$RawOutputDataPrefix}}", &v),
            "file:///d/r/raw/a1/2/"
        );
        assert_eq!(
            substitute("{{.runName}}/{{.actionName}}/{{.attempt}}", &v),
            "r/a1/2"
        );
        assert_eq!(substitute("{{.inputPrefix}}", &v), "file:///d/r/a1");
        assert_eq!(substitute("{{.runStartTime}}", &v), "2026-01-02T03:04:05Z");
        let offloaded = Placeholders {
            input: "file:///u/offloaded-inputs/h/",
            ..values()
        };
        assert_eq!(
            substitute("{{.input}}", &offloaded),
            "file:///u/offloaded-inputs/h/inputs.pb"
        );
        assert_eq!(
            substitute("{{.inputPrefix}}", &offloaded),
            "file:///u/offloaded-inputs/h"
        );
        assert_eq!(
            substitute("{{.checkpointOutputPrefix}}|{{.prevCheckpointPrefix}}", &v),
            "file:///d/r/a1/2/checkpoint/|file:///d/r/a1/1/checkpoint/"
        );
    }

    #[test]
    fn leaves_everything_else_alone() {
        let v = values();
        for text in [
            "plain",
            "{{.unknown}}",
            "{{ input }}",
            "{{.input",
            "}}{{",
            "a{{b}}c",
        ] {
            assert_eq!(substitute(text, &v), text);
        }
        assert_eq!(
            substitute("{{.input}} {{", &v),
            "file:///d/r/a1/inputs.pb {{"
        );
    }
}

#[cfg(test)]
mod program_tests {
    use super::*;

    #[test]
    fn programs_come_from_the_image_environment_first() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("a0");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(resolve_program(dir.path(), "a0").unwrap(), program);
        // Not in the environment: PATH.
        assert!(resolve_program(dir.path(), "sh").unwrap().ends_with("sh"));
        let missing = resolve_program(dir.path(), "no-such-program-x").unwrap_err();
        assert!(missing.contains("no-such-program-x") && missing.contains("--image"));
        assert_eq!(
            resolve_program(dir.path(), "/bin/true").unwrap(),
            PathBuf::from("/bin/true")
        );
    }
}
