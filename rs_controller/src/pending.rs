//! Actions waiting to be enqueued, their task specs shared.
//!
//! A parent fanning out N calls of one task submits N actions that each carry the same
//! `TaskSpec` (the task's template: interface, container, resources, a few kilobytes decoded
//! into dozens of allocations). Until a call's turn to be sent comes, it keeps its own
//! fields encoded (one allocation) and a reference to the one decoded copy of the spec; the
//! full request is put together when the call is about to go on the wire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use flyteidl2::flyteidl::actions::{action, Action, EnqueueRequest};
use flyteidl2::flyteidl::task::TaskSpec;
use prost::Message;

/// The decoded task specs of actions not yet sent, by their encoding.
#[derive(Default)]
pub struct SpecTable {
    specs: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    by_encoding: HashMap<Vec<u8>, Weak<TaskSpec>>,
    /// Entries at the last sweep of dead ones: sweeping again at twice that keeps the cost
    /// per insertion constant.
    swept_at: usize,
}

impl SpecTable {
    fn share(&self, spec: TaskSpec) -> Arc<TaskSpec> {
        let key = spec.encode_to_vec();
        let mut table = self.specs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = table.by_encoding.get(&key).and_then(Weak::upgrade) {
            return shared;
        }
        let shared = Arc::new(spec);
        table.by_encoding.insert(key, Arc::downgrade(&shared));
        if table.by_encoding.len() > 2 * table.swept_at.max(16) {
            table.by_encoding.retain(|_, spec| spec.strong_count() > 0);
            table.swept_at = table.by_encoding.len();
        }
        shared
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.specs.lock().unwrap().by_encoding.len()
    }
}

/// An action waiting for its turn to be enqueued.
pub struct Pending {
    /// The action without its task spec, encoded.
    action: Box<[u8]>,
    spec: Option<Arc<TaskSpec>>,
}

impl Pending {
    pub fn new(mut action: Box<Action>, table: &SpecTable) -> Pending {
        let spec = match &mut action.spec {
            Some(action::Spec::Task(task)) => task.spec.take().map(|spec| table.share(spec)),
            _ => None,
        };
        Pending {
            action: action.encode_to_vec().into_boxed_slice(),
            spec,
        }
    }

    /// The request that enqueues the action, whole again.
    pub fn request(&self) -> EnqueueRequest {
        // Encoded by `new` from a valid message: decoding it cannot fail.
        let mut action = Action::decode(&self.action[..]).unwrap_or_default();
        if let (Some(action::Spec::Task(task)), Some(spec)) = (&mut action.spec, &self.spec) {
            task.spec = Some((**spec).clone());
        }
        EnqueueRequest {
            action: Some(action),
            run_spec: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyteidl2::flyteidl::common::ActionIdentifier;
    use flyteidl2::flyteidl::workflow::TaskAction;

    fn task_action(name: &str, short_name: &str) -> Box<Action> {
        Box::new(Action {
            action_id: Some(ActionIdentifier {
                run: None,
                name: name.into(),
            }),
            spec: Some(action::Spec::Task(TaskAction {
                spec: Some(TaskSpec {
                    short_name: short_name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        })
    }

    #[test]
    fn siblings_share_one_spec_and_requests_are_whole() {
        let table = SpecTable::default();
        let a = Pending::new(task_action("a", "leaf"), &table);
        let b = Pending::new(task_action("b", "leaf"), &table);
        let c = Pending::new(task_action("c", "other"), &table);
        assert!(Arc::ptr_eq(
            a.spec.as_ref().unwrap(),
            b.spec.as_ref().unwrap()
        ));
        assert!(!Arc::ptr_eq(
            a.spec.as_ref().unwrap(),
            c.spec.as_ref().unwrap()
        ));
        assert_eq!(
            b.request().action.unwrap(),
            *task_action("b", "leaf"),
            "the request carries the spec again"
        );
    }

    #[test]
    fn specs_of_sent_actions_are_forgotten() {
        let table = SpecTable::default();
        for i in 0..100 {
            // Each dropped at once, as if sent: the table must not keep 100 specs.
            drop(Pending::new(task_action("a", &format!("t{i}")), &table));
        }
        assert!(table.len() <= 33, "{}", table.len());
    }

    #[test]
    fn actions_without_a_task_spec_pass_through() {
        let table = SpecTable::default();
        let trace = Box::new(Action {
            spec: Some(action::Spec::Trace(Default::default())),
            ..Default::default()
        });
        let pending = Pending::new(trace.clone(), &table);
        assert!(pending.spec.is_none());
        assert_eq!(pending.request().action.unwrap(), *trace);
    }
}
