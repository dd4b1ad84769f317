//! Aborting actions: the action itself, its process tree, and every unfinished descendant.

use std::collections::HashSet;

use tonic::Status;

use super::submit::ROOT_ACTION;
use super::{internal, Engine};
use crate::clock::now_ms;
use crate::names::RunKey;
use crate::phase;
use crate::store::{ActionRecord, StoreError};

impl Engine {
    pub fn abort_action(&self, run: &RunKey, name: &str, reason: &str) -> Result<(), Status> {
        let record = self
            .store
            .action(run, name)
            .map_err(|e| internal("look up action", e))?
            .ok_or_else(|| {
                Status::not_found(format!("action {name:?} does not exist in run {run}"))
            })?;
        self.abort_record(&record, reason)
            .map_err(|e| internal("abort action", e))?;
        self.abort_descendants(run, name, reason)
            .map_err(|e| internal("abort descendant actions", e))
    }

    pub fn abort_run(&self, run: &RunKey, reason: &str) -> Result<(), Status> {
        self.require_run(run)?;
        self.abort_action(run, ROOT_ACTION, reason)
    }

    /// Marks one action ABORTED and kills its process group if it has one running.
    fn abort_record(&self, record: &ActionRecord, reason: &str) -> Result<(), StoreError> {
        if let Some(updated) = self.store.abort(record.seq, reason, now_ms())? {
            // Killed after the commit, so the monitor that sees the exit finds the action
            // already terminal and leaves it ABORTED.
            self.scheduler.abort_process(updated.seq);
            self.publish(updated);
        }
        Ok(())
    }

    /// Aborts every unfinished action below `name`. Used for explicit aborts and whenever an
    /// action ends, so no child outlives the parent that was waiting for it.
    pub fn abort_descendants(
        &self,
        run: &RunKey,
        name: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut pending = vec![name.to_string()];
        let mut seen = HashSet::new();
        while let Some(parent) = pending.pop() {
            if !seen.insert(parent.clone()) {
                continue;
            }
            for child in self.store.children(run, &parent)? {
                if !phase::is_terminal(child.phase) {
                    self.abort_record(&child, reason)?;
                }
                pending.push(child.name);
            }
        }
        Ok(())
    }
}
