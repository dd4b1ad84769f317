//! The command line and environment of one attempt.
//!
//! The program is the configured runtime command; the task's `container.args` follow with
//! Flyte's `{{.name}}` placeholders filled in (matched case-insensitively, with optional spaces,
//! and `$` accepted for `.`, as Flyte's own executor does). Unknown placeholders stay verbatim.

use std::path::Path;
use std::process::Stdio;

use crate::layout::dir_uri;

/// Values the placeholders stand for.
pub struct Placeholders<'a> {
    pub input: &'a str,
    pub output_prefix: &'a str,
    pub raw_output_prefix: &'a str,
    pub checkpoint_prefix: &'a str,
    pub prev_checkpoint_prefix: &'a str,
    pub run_name: &'a str,
    pub action_name: &'a str,
    pub attempt: u32,
}

impl Placeholders<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        Some(match name.to_ascii_lowercase().as_str() {
            "input" => self.input.to_string(),
            "inputprefix" => input_prefix(self.input),
            "outputprefix" => self.output_prefix.to_string(),
            "rawoutputdataprefix" => self.raw_output_prefix.to_string(),
            "checkpointoutputprefix" => self.checkpoint_prefix.to_string(),
            "prevcheckpointprefix" => self.prev_checkpoint_prefix.to_string(),
            "runname" => self.run_name.to_string(),
            "actionname" => self.action_name.to_string(),
            "attempt" => self.attempt.to_string(),
            _ => return None,
        })
    }
}

/// The directory URI holding the input file.
fn input_prefix(input: &str) -> String {
    match input.rfind('/') {
        Some(i) => input[..=i].to_string(),
        None => String::new(),
    }
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
    pub runtime_command: &'a [String],
    pub args: Vec<String>,
    /// In increasing precedence: extra_env, the task's env, then the backend's own variables.
    pub env: Vec<(String, String)>,
    pub work_dir: &'a Path,
    pub log: std::fs::File,
}

impl Launch<'_> {
    pub fn command(self) -> std::io::Result<tokio::process::Command> {
        let (program, leading) = self.runtime_command.split_first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty runtime command")
        })?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(leading)
            .args(&self.args)
            .envs(self.env)
            .current_dir(self.work_dir)
            .stdin(Stdio::null())
            .stdout(self.log.try_clone()?)
            .stderr(self.log)
            // The process outlives a dropped handle on purpose: only the monitor decides when
            // it dies, and a crashed backend's processes are found again by pid on restart.
            .kill_on_drop(false);
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                // Its own process group, so the whole tree can be signalled as one.
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(command)
    }
}

/// `<output prefix>checkpoint/`: where an attempt may leave a checkpoint for the next one.
pub fn checkpoint_prefix(output_dir: &Path) -> String {
    dir_uri(&output_dir.join("checkpoint"))
}

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
        assert_eq!(substitute("{{.inputPrefix}}", &v), "file:///d/r/a1/");
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
