//! The backend's own log: what it handled (crashes, lost processes, failed writes, undelivered
//! notifications, recoveries) as lines in `<data dir>/logs/backend.<date>.log`, a file a day,
//! the last week kept. `FLYTE_BACKEND_LOG` sets the level (error, warn, info, debug, trace;
//! default info).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::filter::LevelFilter;

/// The variable that sets how much the backend logs.
pub const LOG_LEVEL_ENV: &str = "FLYTE_BACKEND_LOG";

/// Days of logs kept.
const DAYS_KEPT: usize = 7;

/// Where the backend's log files go under its data dir.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// Sends this process's tracing events to the data dir's log, unless the process already has
/// a subscriber (a program that embeds the backend and logs its own way) — then nothing
/// changes. Returns whether the log is the data dir's.
pub fn init(data_dir: &Path) -> Result<bool, String> {
    let level = match std::env::var(LOG_LEVEL_ENV) {
        Ok(text) => LevelFilter::from_str(text.trim()).map_err(|_| {
            format!(
                "{LOG_LEVEL_ENV}={text:?} is not a level: use error, warn, info, debug or trace"
            )
        })?,
        Err(_) => LevelFilter::INFO,
    };
    // The log is as private as the rest of the data dir, from its first line.
    crate::server::make_private(data_dir).map_err(|e| e.to_string())?;
    let files = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("backend")
        .filename_suffix("log")
        .max_log_files(DAYS_KEPT)
        .build(log_dir(data_dir))
        .map_err(|e| {
            format!(
                "open the backend's log in {}: {e}",
                log_dir(data_dir).display()
            )
        })?;
    let subscriber = tracing_subscriber::fmt()
        .with_writer(files)
        .with_ansi(false)
        .with_max_level(level)
        .finish();
    Ok(tracing::subscriber::set_global_default(subscriber).is_ok())
}
