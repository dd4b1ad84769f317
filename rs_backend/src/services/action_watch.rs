//! RunService.WatchActions: every action of a run, first as a snapshot, then as each one
//! changes, each with the count of its children per phase (what a terminal view or a UI needs
//! to draw a big fan-out without listing it again and again).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use flyteidl2::flyteidl::common::{filter::Function, Filter};
use flyteidl2::flyteidl::workflow::{EnrichedAction, WatchActionsResponse};
use tokio::sync::{broadcast::error::RecvError, watch};
use tonic::Status;

use super::streams::{self, deliver, stopping};
use crate::engine::{internal, Engine};
use crate::listing::{Listed, Query};
use crate::names::RunKey;
use crate::phase;
use crate::store::ActionRecord;
use crate::views;

type Tx = streams::Tx<WatchActionsResponse>;

/// Actions per message: a 100,000-action run's snapshot goes out in pieces a client can decode.
const ACTIONS_PER_MESSAGE: usize = 500;

/// Which actions a watcher asked for: the two filters the protocol defines for this call.
#[derive(Debug, Default)]
pub struct ActionFilter {
    /// Lower-cased substrings the name must all contain.
    name_contains: Vec<String>,
    /// Phases (enum numbers) of which the action must be in one, per PHASE filter.
    phase_in: Vec<Vec<i32>>,
}

impl ActionFilter {
    pub fn parse(filters: &[Filter]) -> Result<Self, Status> {
        let mut parsed = ActionFilter::default();
        for filter in filters {
            let field = filter.field.to_ascii_lowercase();
            let function = Function::try_from(filter.function).ok();
            match (field.as_str(), function) {
                ("name", Some(Function::ContainsCaseInsensitive)) => {
                    let [value] = filter.values.as_slice() else {
                        return Err(Status::invalid_argument(
                            "filter on NAME takes exactly one value",
                        ));
                    };
                    parsed.name_contains.push(value.to_lowercase());
                }
                ("phase", Some(Function::ValueIn)) => {
                    let phases = filter
                        .values
                        .iter()
                        .map(|v| {
                            v.trim().parse::<i32>().map_err(|_| {
                                Status::invalid_argument(format!(
                                    "filter on PHASE takes phase numbers, got {:?}",
                                    crate::validate::clip(v)
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    parsed.phase_in.push(phases);
                }
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "WatchActions filters on NAME (CONTAINS_CASE_INSENSITIVE) and PHASE \
                         (VALUE_IN) only; got field {:?} with function {}",
                        crate::validate::clip(&filter.field),
                        filter.function
                    )))
                }
            }
        }
        Ok(parsed)
    }

    pub fn matches(&self, action: &ActionRecord) -> bool {
        let name = action.name.to_lowercase();
        self.name_contains.iter().all(|part| name.contains(part))
            && self
                .phase_in
                .iter()
                .all(|phases| phases.contains(&(action.phase as i32)))
    }
}

/// What the stream knows of the run: each action's parent and phase, and from them the count
/// of children per phase of every parent. Kept from the snapshot and every change after it.
#[derive(Default)]
struct RunTally {
    actions: HashMap<String, (Option<String>, i32)>,
    children: HashMap<String, HashMap<i32, i32>>,
    /// Actions sent as meeting the filter (a later change that leaves it is sent once more).
    shown: HashMap<String, u64>,
}

impl RunTally {
    /// Records the action's state; returns the parent whose counts changed, if any.
    fn record(&mut self, action: &ActionRecord) -> Option<String> {
        let phase = action.phase as i32;
        let before = self
            .actions
            .insert(action.name.clone(), (action.parent.clone(), phase));
        let parent = action.parent.clone()?;
        let counts = self.children.entry(parent.clone()).or_default();
        match before {
            Some((_, old)) if old == phase => return None,
            Some((_, old)) => {
                if let Some(n) = counts.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&old);
                    }
                }
            }
            None => {}
        }
        *counts.entry(phase).or_default() += 1;
        Some(parent)
    }

    fn enriched(&self, action: &ActionRecord, meets_filter: bool) -> EnrichedAction {
        EnrichedAction {
            action: Some(views::action_summary(action)),
            meets_filter,
            children_phase_counts: self.children.get(&action.name).cloned().unwrap_or_default(),
        }
    }

    /// The message for a changed action, if the watcher should hear of it.
    fn change(&mut self, action: &ActionRecord, filter: &ActionFilter) -> Option<EnrichedAction> {
        let meets = filter.matches(action);
        let sent = self.shown.get(&action.name).copied();
        if sent.is_some_and(|version| version >= action.version) {
            return None;
        }
        if meets {
            self.shown.insert(action.name.clone(), action.version);
            Some(self.enriched(action, true))
        } else if sent.is_some() {
            self.shown.remove(&action.name);
            Some(self.enriched(action, false))
        } else {
            None
        }
    }
}

async fn send_batches(
    tx: &Tx,
    actions: Vec<EnrichedAction>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut actions = actions.into_iter().peekable();
    while actions.peek().is_some() {
        let enriched_actions: Vec<_> = actions.by_ref().take(ACTIONS_PER_MESSAGE).collect();
        if !deliver(tx, Ok(WatchActionsResponse { enriched_actions }), stop).await {
            return false;
        }
    }
    true
}

/// Every action of the run as stored now; None (after telling the client) if it can't be read.
async fn snapshot(
    engine: &Engine,
    run: &RunKey,
    tx: &Tx,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<ActionRecord>> {
    let everything = Query::parse(Listed::Actions, None, "").expect("an empty listing parses");
    match engine.store.list_actions(run, &everything) {
        Ok(actions) => Some(actions),
        Err(err) => {
            deliver(tx, Err(internal("list the run's actions", err)), stop).await;
            None
        }
    }
}

/// Sends a snapshot: every matching action, with the counts of the whole run.
async fn send_snapshot(
    engine: &Engine,
    run: &RunKey,
    filter: &ActionFilter,
    tally: &mut RunTally,
    tx: &Tx,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let Some(actions) = snapshot(engine, run, tx, stop).await else {
        return false;
    };
    *tally = RunTally::default();
    for action in &actions {
        tally.record(action);
    }
    let mut out = Vec::new();
    for action in &actions {
        if let Some(message) = tally.change(action, filter) {
            out.push(message);
        }
    }
    send_batches(tx, out, stop).await
}

fn root_done(tally: &RunTally) -> bool {
    tally
        .actions
        .get(crate::engine::ROOT_ACTION)
        .and_then(|(_, phase)| flyteidl2::flyteidl::common::ActionPhase::try_from(*phase).ok())
        .is_some_and(phase::is_terminal)
}

/// WatchActions: the run's actions now and as they change; ends once the run has ended and
/// everything up to its end has been sent.
pub async fn run_actions(engine: Arc<Engine>, run: RunKey, filter: ActionFilter, tx: Tx) {
    // Subscribed before the snapshot is read, so no change falls between the two.
    let mut events = engine.subscribe();
    let mut stop = engine.stop_signal();
    let mut tally = RunTally::default();
    if !send_snapshot(&engine, &run, &filter, &mut tally, &tx, &mut stop).await {
        return;
    }
    loop {
        if root_done(&tally) {
            return;
        }
        let first = tokio::select! {
            _ = tx.closed() => return,
            _ = stopping(&mut stop) => return,
            event = events.recv() => event,
        };
        // Everything already waiting goes out in one message: a fan-out's burst of changes
        // costs the client one decode, not one per action.
        let mut changed: Vec<Arc<ActionRecord>> = Vec::new();
        let mut lagged = false;
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                Ok(record) if record.run == run => changed.push(record),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => lagged = true,
                Err(RecvError::Closed) => return,
            }
            if changed.len() < ACTIONS_PER_MESSAGE {
                next = events.try_recv().ok().map(Ok);
            }
        }
        if lagged {
            tracing::debug!("an action watcher fell behind; sending a fresh snapshot");
            if !send_snapshot(&engine, &run, &filter, &mut tally, &tx, &mut stop).await {
                return;
            }
            continue;
        }
        // The whole batch is counted first, so every message carries the counts after it.
        let parents: BTreeSet<String> = changed.iter().filter_map(|r| tally.record(r)).collect();
        let mut out: Vec<EnrichedAction> = changed
            .iter()
            .filter_map(|r| tally.change(r, &filter))
            .collect();
        // A parent whose counts changed goes out again (if shown) with the new counts.
        let in_batch: HashSet<&str> = changed.iter().map(|r| r.name.as_str()).collect();
        for parent in parents {
            if in_batch.contains(parent.as_str()) || !tally.shown.contains_key(&parent) {
                continue;
            }
            if let Ok(Some(record)) = engine.store.action(&run, &parent) {
                out.push(tally.enriched(&record, true));
            }
        }
        if !out.is_empty() && !send_batches(&tx, out, &mut stop).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(field: &str, function: Function, values: &[&str]) -> Filter {
        Filter {
            function: function as i32,
            field: field.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn filters_are_the_two_the_protocol_defines() {
        let parsed = ActionFilter::parse(&[
            filter("NAME", Function::ContainsCaseInsensitive, &["AbC"]),
            filter("PHASE", Function::ValueIn, &["4", "5"]),
        ])
        .unwrap();
        assert_eq!(parsed.name_contains, vec!["abc".to_string()]);
        assert_eq!(parsed.phase_in, vec![vec![4, 5]]);
        let wrong = ActionFilter::parse(&[filter("task_name", Function::Equal, &["x"])]);
        assert_eq!(wrong.unwrap_err().code(), tonic::Code::InvalidArgument);
        let bad_phase = ActionFilter::parse(&[filter("PHASE", Function::ValueIn, &["running"])]);
        assert_eq!(bad_phase.unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
