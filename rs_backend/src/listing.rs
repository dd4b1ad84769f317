//! The filters, sort order and page position of a `common.ListRequest`, for ListRuns and
//! ListActions.
//!
//! What the actions table holds is filtered and ordered by SQL, so the database does the
//! narrowing. Two things it cannot do are checked on each row as it is read: labels, which
//! live inside the run's serialized RunSpec, and case-insensitive matching, since SQLite folds
//! ASCII letters only. Page tokens are positions in the sort order (the sort values of the
//! last row returned), not offsets, so rows created while a client pages do not shift the
//! pages it has yet to read.

use std::cmp::Ordering;
use std::collections::HashMap;

use base64::Engine as _;
use flyteidl2::flyteidl::common::{filter::Function, sort::Direction, Filter, ListRequest, Sort};
use flyteidl2::flyteidl::task::RunSpec;
use prost::Message;
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::phase;
use crate::store::{ActionRecord, RunRecord};

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// What a listing lists; their fields differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listed {
    Runs,
    Actions,
}

impl Listed {
    fn noun(self) -> &'static str {
        match self {
            Listed::Runs => "runs",
            Listed::Actions => "actions",
        }
    }

    fn fields(self) -> &'static str {
        match self {
            Listed::Runs => {
                "name, phase, task_name, task_version, created_at, updated_at, created_by and \
                 labels.<key>"
            }
            Listed::Actions => {
                "name, phase, task_name, task_version, parent_name, action_type, created_at and \
                 updated_at"
            }
        }
    }

    /// A run is listed through its root action, whose `run` column is the run's name.
    fn name_column(self) -> &'static str {
        match self {
            Listed::Runs => "a.run",
            Listed::Actions => "a.name",
        }
    }

    fn name_of(self, action: &ActionRecord) -> &str {
        match self {
            Listed::Runs => &action.run.name,
            Listed::Actions => &action.name,
        }
    }
}

/// When an action last changed: traces report their own (client-side) times, which may lie
/// before the action was recorded, hence the largest of the three rather than the last set.
const UPDATED_MS_SQL: &str = "MAX(a.created_ms, COALESCE(a.started_ms, a.created_ms), \
     COALESCE(a.ended_ms, a.created_ms))";

fn updated_ms(action: &ActionRecord) -> i64 {
    let created = action.created_ms;
    created
        .max(action.started_ms.unwrap_or(created))
        .max(action.ended_ms.unwrap_or(created))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    Name,
    Phase,
    TaskName,
    TaskVersion,
    ParentName,
    ActionType,
    CreatedAt,
    UpdatedAt,
    CreatedBy,
    Label(String),
}

fn field_of(listed: Listed, name: &str) -> Result<Field, Status> {
    Ok(match name {
        "name" => Field::Name,
        "phase" => Field::Phase,
        "task_name" => Field::TaskName,
        "task_version" => Field::TaskVersion,
        "created_at" => Field::CreatedAt,
        "updated_at" => Field::UpdatedAt,
        "parent_name" if listed == Listed::Actions => Field::ParentName,
        "action_type" if listed == Listed::Actions => Field::ActionType,
        "created_by" if listed == Listed::Runs => Field::CreatedBy,
        _ => match name.strip_prefix("labels.") {
            Some(key) if listed == Listed::Runs && !key.is_empty() => Field::Label(key.into()),
            _ => {
                return Err(invalid(format!(
                    "{} cannot be filtered by {name:?}; they can be filtered by {}",
                    listed.noun(),
                    listed.fields()
                )))
            }
        },
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// Whether a value that compares to the filter's value as `ordering` passes.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
        }
    }
}

/// What a filter asks of a field's value.
#[derive(Clone, Debug, PartialEq)]
enum Test<T> {
    Compare(Op, T),
    In(Vec<T>),
    NotIn(Vec<T>),
    /// A substring; `folded` ignores case, and then the needle is kept lowercase.
    Contains {
        needle: String,
        folded: bool,
    },
    /// Whether the field is there at all, which only a label may not be.
    Present(bool),
}

impl<T> Test<T> {
    fn try_map<U>(self, mut f: impl FnMut(T) -> Result<U, Status>) -> Result<Test<U>, Status> {
        let mut all = |values: Vec<T>| {
            values
                .into_iter()
                .map(&mut f)
                .collect::<Result<Vec<U>, Status>>()
        };
        Ok(match self {
            Test::Compare(op, value) => Test::Compare(op, f(value)?),
            Test::In(values) => Test::In(all(values)?),
            Test::NotIn(values) => Test::NotIn(all(values)?),
            Test::Contains { needle, folded } => Test::Contains { needle, folded },
            Test::Present(present) => Test::Present(present),
        })
    }
}

impl Test<String> {
    /// Whether a text field passes; `None` is a label the run does not have, which passes
    /// only NOT_EXISTS (as a missing value never equals nor differs from anything in SQL).
    fn holds(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return *self == Test::Present(false);
        };
        match self {
            Test::Compare(op, wanted) => op.holds(value.cmp(wanted.as_str())),
            Test::In(wanted) => wanted.iter().any(|w| w == value),
            Test::NotIn(wanted) => wanted.iter().all(|w| w != value),
            Test::Contains {
                needle,
                folded: false,
            } => value.contains(needle.as_str()),
            Test::Contains {
                needle,
                folded: true,
            } => value.to_lowercase().contains(needle.as_str()),
            Test::Present(present) => *present,
        }
    }
}

/// A filter's function and values, checked for how many values the function takes.
fn test_of(filter: &Filter, values: &[String]) -> Result<(Function, Test<String>), Status> {
    let field = &filter.field;
    let function = Function::try_from(filter.function).map_err(|_| {
        invalid(format!(
            "filter on {field:?}: {} is not a filter function",
            filter.function
        ))
    })?;
    let name = function.as_str_name();
    let one = || match values {
        [value] => Ok(value.clone()),
        _ => Err(invalid(format!(
            "filter on {field:?}: {name} takes exactly one value, got {}",
            values.len()
        ))),
    };
    let some = || {
        if values.is_empty() {
            Err(invalid(format!(
                "filter on {field:?}: {name} takes at least one value, got none"
            )))
        } else {
            Ok(values.to_vec())
        }
    };
    let test = match function {
        Function::Equal => Test::Compare(Op::Eq, one()?),
        Function::NotEqual => Test::Compare(Op::Ne, one()?),
        Function::GreaterThan => Test::Compare(Op::Gt, one()?),
        Function::GreaterThanOrEqual => Test::Compare(Op::Ge, one()?),
        Function::LessThan => Test::Compare(Op::Lt, one()?),
        Function::LessThanOrEqual => Test::Compare(Op::Le, one()?),
        Function::ValueIn => Test::In(some()?),
        Function::ValueNotIn => Test::NotIn(some()?),
        Function::Contains => Test::Contains {
            needle: one()?,
            folded: false,
        },
        Function::ContainsCaseInsensitive => Test::Contains {
            needle: one()?.to_lowercase(),
            folded: true,
        },
        Function::Exists | Function::NotExists => {
            if !values.is_empty() {
                return Err(invalid(format!(
                    "filter on {field:?}: {name} takes no values, got {}",
                    values.len()
                )));
            }
            Test::Present(function == Function::Exists)
        }
        Function::EndsWith | Function::NotEndsWith => {
            return Err(invalid(format!(
                "filter on {field:?}: {name} is not supported by the embedded backend"
            )))
        }
    };
    Ok((function, test))
}

fn not_for(field: &str, function: Function, what: &str, instead: &str) -> Status {
    invalid(format!(
        "filter on {field:?}: {} does not apply to {what}; use {instead}",
        function.as_str_name()
    ))
}

const PHASE_FUNCTIONS: &str = "EQUAL, NOT_EQUAL, VALUE_IN, VALUE_NOT_IN or a comparison";
const TIME_FUNCTIONS: &str = "EQUAL, NOT_EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, \
     LESS_THAN or LESS_THAN_OR_EQUAL";
const TEXT_FUNCTIONS: &str = "EQUAL, NOT_EQUAL, VALUE_IN, VALUE_NOT_IN, CONTAINS, \
     CONTAINS_CASE_INSENSITIVE or a comparison";

/// The reference SDK builds a one-phase filter with `values=phases[0]`, a string where
/// protobuf wants a list, and Python splits it into characters: RECOVERED ("10") arrives as
/// ["1", "0"]. Several single digits mean nothing else to EQUAL, so they are joined back.
fn phase_values(filter: &Filter) -> Vec<String> {
    let split_number = filter.function == Function::Equal as i32
        && filter.values.len() > 1
        && filter
            .values
            .iter()
            .all(|v| v.len() == 1 && v.as_bytes()[0].is_ascii_digit());
    if split_number {
        vec![filter.values.concat()]
    } else {
        filter.values.clone()
    }
}

/// A phase by its `common.ActionPhase` number or name (with or without `ACTION_PHASE_`).
fn phase_value(field: &str, value: &str) -> Result<Value, Status> {
    let phase = match value.parse::<i32>() {
        Ok(number) => phase::from_wire(number),
        Err(_) => phase::parse_phase(&value.to_ascii_uppercase())
            .filter(|p| phase::from_wire(*p as i32).is_some()),
    };
    phase.map(|p| Value::Integer(p as i64)).ok_or_else(|| {
        invalid(format!(
            "filter on {field:?}: {value:?} is not an action phase (a common.ActionPhase number \
             or name, such as 5 or SUCCEEDED)"
        ))
    })
}

/// An action type by its `workflow.ActionType` number or name (with or without `ACTION_TYPE_`,
/// any case). The store keeps an action's kind as that number.
fn action_type_value(field: &str, value: &str) -> Result<Value, Status> {
    use flyteidl2::flyteidl::workflow::ActionType;

    let upper = value.to_ascii_uppercase();
    let kind = match value.parse::<i32>() {
        Ok(number) => ActionType::try_from(number).ok(),
        Err(_) => ActionType::from_str_name(&upper)
            .or_else(|| ActionType::from_str_name(&format!("ACTION_TYPE_{upper}"))),
    };
    kind.filter(|k| *k != ActionType::Unspecified)
        .map(|k| Value::Integer(k as i64))
        .ok_or_else(|| {
            invalid(format!(
                "filter on {field:?}: {value:?} is not an action type (a workflow.ActionType \
                 number or name, such as 3 or CONDITION)"
            ))
        })
}

/// A time as whole milliseconds since the epoch, rounded down, and whether that is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Millis {
    floor: i64,
    exact: bool,
}

/// RFC 3339, as Python's `isoformat()` writes an aware datetime. A time without an offset is
/// refused: the zone it was meant in would be a guess.
fn time_value(field: &str, value: &str) -> Result<Millis, Status> {
    let time = chrono::DateTime::parse_from_rfc3339(value).map_err(|e| {
        invalid(format!(
            "filter on {field:?}: {value:?} is not an RFC 3339 time with an offset, such as \
             2026-01-02T03:04:05.123456+00:00 ({e})"
        ))
    })?;
    Ok(Millis {
        // timestamp_millis rounds towards negative infinity, like the stored times' precision.
        floor: time.timestamp_millis(),
        exact: time.timestamp_subsec_nanos() % 1_000_000 == 0,
    })
}

/// `expr op time` for an integer millisecond `expr`, exact even for a time between two
/// milliseconds; None: every row passes.
fn time_condition(expr: &str, op: Op, time: Millis) -> Option<(String, Vec<Value>)> {
    let ceil = time.floor + i64::from(!time.exact);
    let (sql, bound) = match op {
        Op::Gt | Op::Le => (op.sql(), time.floor),
        Op::Ge | Op::Lt => (op.sql(), ceil),
        Op::Eq | Op::Ne if time.exact => (op.sql(), time.floor),
        // No whole millisecond equals a time between two.
        Op::Eq => return Some(("0".into(), Vec::new())),
        Op::Ne => return None,
    };
    Some((format!("{expr} {sql} ?"), vec![Value::Integer(bound)]))
}

/// A condition checked in Rust on each row SQL selects.
#[derive(Clone, Debug)]
struct Check {
    field: Field,
    test: Test<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    CreatedAt,
    UpdatedAt,
    Name,
    Phase,
    /// Insertion order: breaks ties, so that a position in the order is a single row.
    Seq,
}

impl Key {
    fn parse(key: &str) -> Option<Self> {
        match key {
            "created_at" => Some(Key::CreatedAt),
            "updated_at" => Some(Key::UpdatedAt),
            "name" => Some(Key::Name),
            "phase" => Some(Key::Phase),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Key::CreatedAt => "created_at",
            Key::UpdatedAt => "updated_at",
            Key::Name => "name",
            Key::Phase => "phase",
            Key::Seq => "seq",
        }
    }

    fn sql(self, listed: Listed) -> &'static str {
        match self {
            Key::CreatedAt => "a.created_ms",
            Key::UpdatedAt => UPDATED_MS_SQL,
            Key::Name => listed.name_column(),
            Key::Phase => "a.phase",
            Key::Seq => "a.seq",
        }
    }

    fn value(self, listed: Listed, action: &ActionRecord) -> Value {
        match self {
            Key::CreatedAt => Value::Integer(action.created_ms),
            Key::UpdatedAt => Value::Integer(updated_ms(action)),
            Key::Name => Value::Text(listed.name_of(action).to_string()),
            Key::Phase => Value::Integer(action.phase as i64),
            Key::Seq => Value::Integer(action.seq),
        }
    }
}

/// A page token: the sort order it belongs to and the sort values of the last row served.
#[derive(Serialize, Deserialize)]
struct Position {
    order: String,
    after: Vec<serde_json::Value>,
}

const TOKEN: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A checked ListRuns or ListActions request: what to select, in which order, from where.
#[derive(Debug)]
pub struct Query {
    listed: Listed,
    /// SQL conditions on the action columns (table alias `a`), all of which must hold.
    conditions: Vec<String>,
    params: Vec<Value>,
    checks: Vec<Check>,
    /// Sort keys, most significant first, ascending or not; the last is always `Seq`.
    order: Vec<(Key, bool)>,
    limit: Option<u32>,
    /// A filter no row passes (runs created by someone else): nothing needs reading.
    matches_nothing: bool,
}

impl Query {
    /// `subject` is who this backend says its user is: every run here is that user's.
    pub fn parse(
        listed: Listed,
        request: Option<&ListRequest>,
        subject: &str,
    ) -> Result<Self, Status> {
        let default = ListRequest::default();
        let request = request.unwrap_or(&default);
        let mut query = Query {
            listed,
            conditions: Vec::new(),
            params: Vec::new(),
            checks: Vec::new(),
            order: Vec::new(),
            limit: (request.limit > 0).then_some(request.limit),
            matches_nothing: false,
        };
        if !request.raw_filters.is_empty() {
            return Err(invalid(
                "request.raw_filters is not supported by the embedded backend; send filters",
            ));
        }
        for filter in &request.filters {
            query.add_filter(filter, subject)?;
        }
        query.order = order_of(listed, request)?;
        if !request.token.is_empty() {
            query.start_after(&request.token)?;
        }
        Ok(query)
    }

    fn add_filter(&mut self, filter: &Filter, subject: &str) -> Result<(), Status> {
        let name = filter.field.as_str();
        let field = field_of(self.listed, name)?;
        match &field {
            Field::Phase => {
                let (function, test) = test_of(filter, &phase_values(filter))?;
                if matches!(test, Test::Contains { .. } | Test::Present(_)) {
                    return Err(not_for(name, function, "phases", PHASE_FUNCTIONS));
                }
                let test = test.try_map(|v| phase_value(name, &v))?;
                self.add_sql("a.phase", test);
            }
            Field::ActionType => {
                let (function, test) = test_of(filter, &phase_values(filter))?;
                if matches!(test, Test::Contains { .. } | Test::Present(_)) {
                    return Err(not_for(name, function, "action types", PHASE_FUNCTIONS));
                }
                let test = test.try_map(|v| action_type_value(name, &v))?;
                self.add_sql("a.kind", test);
            }
            Field::CreatedAt | Field::UpdatedAt => {
                let expr = if field == Field::CreatedAt {
                    "a.created_ms"
                } else {
                    UPDATED_MS_SQL
                };
                match test_of(filter, &filter.values)? {
                    (_, Test::Compare(op, value)) => {
                        let time = time_value(name, &value)?;
                        if let Some((sql, params)) = time_condition(expr, op, time) {
                            self.conditions.push(sql);
                            self.params.extend(params);
                        }
                    }
                    (function, _) => return Err(not_for(name, function, "times", TIME_FUNCTIONS)),
                }
            }
            Field::CreatedBy => match test_of(filter, &filter.values)? {
                (function, Test::Present(_)) => {
                    return Err(not_for(name, function, "created_by", TEXT_FUNCTIONS))
                }
                // Runs carry no creator here: all of them are the backend's one user's.
                (_, test) => self.matches_nothing |= !test.holds(Some(subject)),
            },
            Field::Label(_) => {
                let (_, test) = test_of(filter, &filter.values)?;
                self.checks.push(Check { field, test });
            }
            Field::Name | Field::TaskName | Field::TaskVersion | Field::ParentName => {
                let expr = match field {
                    Field::Name => self.listed.name_column(),
                    Field::TaskName => "a.task_name",
                    Field::TaskVersion => "a.task_version",
                    _ => "COALESCE(a.parent, '')",
                };
                match test_of(filter, &filter.values)? {
                    (function, Test::Present(_)) => {
                        return Err(not_for(
                            name,
                            function,
                            &format!("{name} (only to labels.<key>)"),
                            TEXT_FUNCTIONS,
                        ))
                    }
                    (_, test @ Test::Contains { folded: true, .. }) => {
                        self.checks.push(Check { field, test })
                    }
                    (_, test) => self.add_sql(expr, test.try_map(|v| Ok(Value::Text(v)))?),
                }
            }
        }
        Ok(())
    }

    fn add_sql(&mut self, expr: &str, test: Test<Value>) {
        let list = |n: usize| vec!["?"; n].join(", ");
        let sql = match test {
            Test::Compare(op, value) => {
                self.params.push(value);
                format!("{expr} {} ?", op.sql())
            }
            Test::In(values) => {
                let sql = format!("{expr} IN ({})", list(values.len()));
                self.params.extend(values);
                sql
            }
            Test::NotIn(values) => {
                let sql = format!("{expr} NOT IN ({})", list(values.len()));
                self.params.extend(values);
                sql
            }
            // instr compares characters exactly; LIKE would fold ASCII case and read % and _.
            Test::Contains { needle, .. } => {
                self.params.push(Value::Text(needle));
                format!("instr({expr}, ?) > 0")
            }
            Test::Present(true) => return,
            Test::Present(false) => "0".into(),
        };
        self.conditions.push(sql);
    }

    /// Continues after the row a token names: rows that sort after it, key by key.
    fn start_after(&mut self, token: &str) -> Result<(), Status> {
        let foreign = || {
            invalid(format!(
                "request.token {token:?} is not a page token issued by this backend"
            ))
        };
        let position: Position = TOKEN
            .decode(token)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(foreign)?;
        let order = self.order_name();
        if position.order != order {
            return Err(invalid(format!(
                "request.token belongs to a listing sorted by {}, not by {order}; list again \
                 from the first page",
                position.order
            )));
        }
        if position.after.len() != self.order.len() {
            return Err(foreign());
        }
        let mut values = Vec::new();
        for ((key, _), value) in self.order.iter().zip(position.after) {
            values.push(match (key, value) {
                (Key::Name, serde_json::Value::String(s)) => Value::Text(s),
                (Key::Name, _) => return Err(foreign()),
                (_, value) => Value::Integer(value.as_i64().ok_or_else(foreign)?),
            });
        }
        // (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ..., with < for descending keys.
        let mut alternatives = Vec::new();
        for (i, (key, ascending)) in self.order.iter().enumerate() {
            let mut terms: Vec<String> = self.order[..i]
                .iter()
                .map(|(earlier, _)| format!("{} = ?", earlier.sql(self.listed)))
                .collect();
            terms.push(format!(
                "{} {} ?",
                key.sql(self.listed),
                if *ascending { ">" } else { "<" }
            ));
            alternatives.push(format!("({})", terms.join(" AND ")));
            self.params.extend(values[..=i].iter().cloned());
        }
        self.conditions
            .push(format!("({})", alternatives.join(" OR ")));
        Ok(())
    }

    fn order_name(&self) -> String {
        self.order
            .iter()
            .map(|(key, ascending)| {
                format!("{} {}", key.name(), if *ascending { "asc" } else { "desc" })
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The SQL conditions (over the action columns, alias `a`) rows must meet, each to be
    /// joined with AND; their parameters are [`Query::params`], in this order.
    pub fn conditions(&self) -> &[String] {
        &self.conditions
    }

    pub fn params(&self) -> &[Value] {
        &self.params
    }

    pub fn order_by(&self) -> String {
        self.order
            .iter()
            .map(|(key, ascending)| {
                format!(
                    "{} {}",
                    key.sql(self.listed),
                    if *ascending { "ASC" } else { "DESC" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The SQL LIMIT (-1: none): only when no row is left to Rust to check can SQL count.
    pub fn sql_limit(&self) -> i64 {
        match (self.checks.is_empty(), self.limit) {
            (true, Some(limit)) => i64::from(limit),
            _ => -1,
        }
    }

    /// How many rows a page holds at most; None: all of them.
    pub fn limit(&self) -> Option<usize> {
        self.limit.map(|l| l as usize)
    }

    pub fn matches_nothing(&self) -> bool {
        self.matches_nothing
    }

    /// Whether a row SQL selected passes the checks SQL could not do; `run` is the run of a
    /// listed run (actions have none).
    pub fn keeps(&self, run: Option<&RunRecord>, action: &ActionRecord) -> bool {
        if self.checks.is_empty() {
            return true;
        }
        let labels = if self
            .checks
            .iter()
            .any(|c| matches!(c.field, Field::Label(_)))
        {
            labels_of(run)
        } else {
            HashMap::new()
        };
        self.checks.iter().all(|check| {
            let value = match &check.field {
                Field::Label(key) => labels.get(key).map(String::as_str),
                Field::Name => Some(self.listed.name_of(action)),
                Field::TaskName => Some(action.task_name.as_str()),
                Field::TaskVersion => Some(action.task_version.as_str()),
                Field::ParentName => Some(action.parent.as_deref().unwrap_or("")),
                // Only text fields are checked here.
                _ => None,
            };
            check.test.holds(value)
        })
    }

    /// The token of the page after one that served `served` rows ending with `last`: none
    /// after a short page.
    pub fn next_token(&self, served: usize, last: Option<&ActionRecord>) -> String {
        let (Some(limit), Some(last)) = (self.limit(), last) else {
            return String::new();
        };
        if served < limit {
            return String::new();
        }
        let after = self
            .order
            .iter()
            .map(|(key, _)| match key.value(self.listed, last) {
                Value::Text(s) => serde_json::Value::String(s),
                Value::Integer(n) => serde_json::Value::from(n),
                _ => serde_json::Value::Null,
            })
            .collect();
        let position = Position {
            order: self.order_name(),
            after,
        };
        TOKEN.encode(serde_json::to_vec(&position).unwrap_or_default())
    }
}

/// A run's labels (`RunSpec.labels`); a run spec that does not decode has none.
pub(crate) fn labels_of(run: Option<&RunRecord>) -> HashMap<String, String> {
    run.and_then(|r| r.run_spec.as_deref())
        .and_then(|bytes| RunSpec::decode(bytes).ok())
        .and_then(|spec| spec.labels)
        .map(|labels| labels.values)
        .unwrap_or_default()
}

/// The sort keys of a request, most significant first, ending with insertion order. Without
/// any, runs come newest first and actions in the order they were created.
fn order_of(listed: Listed, request: &ListRequest) -> Result<Vec<(Key, bool)>, Status> {
    // The reference SDK still sends only the deprecated single sort_by; a client sending both
    // means sort_by_fields, the field that replaced it.
    #[allow(deprecated)]
    let sorts: &[Sort] = if request.sort_by_fields.is_empty() {
        request.sort_by.as_slice()
    } else {
        &request.sort_by_fields
    };
    let mut order = Vec::new();
    for sort in sorts {
        let key = Key::parse(&sort.key).ok_or_else(|| {
            invalid(format!(
                "{} cannot be sorted by {:?}; they can be sorted by created_at, updated_at, \
                 name and phase",
                listed.noun(),
                sort.key
            ))
        })?;
        let ascending = match Direction::try_from(sort.direction) {
            Ok(Direction::Ascending) => true,
            Ok(Direction::Descending) => false,
            Err(_) => {
                return Err(invalid(format!(
                    "sort by {:?}: direction {} is neither ASCENDING nor DESCENDING",
                    sort.key, sort.direction
                )))
            }
        };
        order.push((key, ascending));
    }
    let ties = order
        .last()
        .map_or(listed == Listed::Actions, |(_, ascending)| *ascending);
    order.push((Key::Seq, ties));
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RunKey;
    use crate::store::ActionKind;
    use flyteidl2::flyteidl::common::ActionPhase;
    use flyteidl2::flyteidl::task::Labels;
    use tonic::Code;

    const SUBJECT: &str = "1000";

    fn filter(field: &str, function: Function, values: &[&str]) -> Filter {
        Filter {
            function: function as i32,
            field: field.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn request(filters: Vec<Filter>) -> ListRequest {
        ListRequest {
            filters,
            ..Default::default()
        }
    }

    fn parse(listed: Listed, request: &ListRequest) -> Result<Query, Status> {
        Query::parse(listed, Some(request), SUBJECT)
    }

    fn rejected(listed: Listed, filters: Vec<Filter>) -> String {
        let status = parse(listed, &request(filters)).expect_err("must be rejected");
        assert_eq!(status.code(), Code::InvalidArgument);
        status.message().to_string()
    }

    fn action(name: &str) -> ActionRecord {
        ActionRecord {
            seq: 7,
            run: RunKey {
                org: String::new(),
                project: "p".into(),
                domain: "d".into(),
                name: "run-1".into(),
            },
            name: name.into(),
            parent: Some("a0".into()),
            group: String::new(),
            kind: ActionKind::Task,
            spec: Vec::new(),
            task_name: "pkg.Train".into(),
            task_version: "v1".into(),
            input_uri: String::new(),
            run_output_base: String::new(),
            phase: ActionPhase::Running,
            attempts: 1,
            system_retries: 0,
            restarts: 0,
            error: None,
            output_uri: None,
            abort_reason: None,
            created_ms: 1_000,
            started_ms: Some(3_000),
            ended_ms: None,
            process: None,
            version: 1,
            cache_hit: false,
            value: None,
        }
    }

    fn run_with_labels(labels: &[(&str, &str)]) -> RunRecord {
        let spec = RunSpec {
            labels: Some(Labels {
                values: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
            ..Default::default()
        };
        RunRecord {
            run_spec: Some(spec.encode_to_vec()),
            created_ms: 1_000,
            trigger: None,
        }
    }

    #[test]
    fn phases_by_number_or_name() {
        let query = parse(
            Listed::Runs,
            &request(vec![filter(
                "phase",
                Function::ValueIn,
                &["4", "SUCCEEDED", "ACTION_PHASE_FAILED", "aborted"],
            )]),
        )
        .unwrap();
        assert_eq!(query.conditions(), ["a.phase IN (?, ?, ?, ?)"]);
        assert_eq!(
            query.params(),
            [4, 5, 6, 7].map(Value::Integer).as_slice(),
            "RUNNING, SUCCEEDED, FAILED, ABORTED"
        );
        for bad in ["0", "99", "UNSPECIFIED", "DONE", ""] {
            let message = rejected(Listed::Runs, vec![filter("phase", Function::Equal, &[bad])]);
            assert!(message.contains("not an action phase"), "{bad}: {message}");
        }
    }

    #[test]
    fn a_phase_split_into_digits_is_joined_back() {
        let query = parse(
            Listed::Actions,
            &request(vec![filter("phase", Function::Equal, &["1", "0"])]),
        )
        .unwrap();
        assert_eq!(
            query.params(),
            [Value::Integer(ActionPhase::Recovered as i64)]
        );
        // Anything else with several values stays wrong.
        let message = rejected(
            Listed::Actions,
            vec![filter("phase", Function::Equal, &["4", "SUCCEEDED"])],
        );
        assert!(message.contains("exactly one value"), "{message}");
    }

    #[test]
    fn times_compare_exactly_at_millisecond_precision() {
        let at = |v: &str| time_value("created_at", v).unwrap();
        assert_eq!(
            at("1970-01-01T00:00:01+00:00"),
            Millis {
                floor: 1000,
                exact: true
            }
        );
        assert_eq!(
            at("1970-01-01T00:00:01.000500+00:00"),
            Millis {
                floor: 1000,
                exact: false
            }
        );
        assert_eq!(at("1970-01-01T02:00:01.25+02:00").floor, 1250);
        assert_eq!(at("1970-01-01T00:00:01Z").floor, 1000);
        assert_eq!(at("1969-12-31T23:59:59.9995+00:00").floor, -1);

        let between = at("1970-01-01T00:00:01.000500+00:00");
        let bound = |op| time_condition("t", op, between);
        let one = |sql: &str, v: i64| Some((sql.to_string(), vec![Value::Integer(v)]));
        // 1000 < 1000.5 < 1001
        assert_eq!(bound(Op::Gt), one("t > ?", 1000));
        assert_eq!(bound(Op::Ge), one("t >= ?", 1001));
        assert_eq!(bound(Op::Lt), one("t < ?", 1001));
        assert_eq!(bound(Op::Le), one("t <= ?", 1000));
        assert_eq!(bound(Op::Eq), Some(("0".to_string(), Vec::new())));
        assert_eq!(bound(Op::Ne), None);
        let exact = at("1970-01-01T00:00:01+00:00");
        assert_eq!(time_condition("t", Op::Ge, exact), one("t >= ?", 1000));
        assert_eq!(time_condition("t", Op::Lt, exact), one("t < ?", 1000));
        assert_eq!(time_condition("t", Op::Eq, exact), one("t = ?", 1000));

        for bad in [
            "2026-01-02T03:04:05",
            "2026-01-02",
            "yesterday",
            "1700000000",
        ] {
            let message = rejected(
                Listed::Runs,
                vec![filter("updated_at", Function::LessThan, &[bad])],
            );
            assert!(message.contains("RFC 3339"), "{bad}: {message}");
        }
        let message = rejected(
            Listed::Runs,
            vec![filter(
                "created_at",
                Function::ValueIn,
                &["2026-01-02T03:04:05+00:00"],
            )],
        );
        assert!(
            message.contains("VALUE_IN does not apply to times"),
            "{message}"
        );
    }

    #[test]
    fn text_fields_go_to_sql_except_case_insensitive_matching() {
        let query = parse(
            Listed::Actions,
            &request(vec![
                filter("parent_name", Function::Equal, &["a0"]),
                filter("name", Function::Contains, &["c"]),
                filter("task_name", Function::ValueNotIn, &["x", "y"]),
                filter("task_version", Function::GreaterThanOrEqual, &["v1"]),
                filter("task_name", Function::ContainsCaseInsensitive, &["TRAIN"]),
            ]),
        )
        .unwrap();
        assert_eq!(
            query.conditions(),
            [
                "COALESCE(a.parent, '') = ?",
                "instr(a.name, ?) > 0",
                "a.task_name NOT IN (?, ?)",
                "a.task_version >= ?",
            ]
        );
        assert_eq!(query.checks.len(), 1);
        assert!(query.keeps(None, &action("c1")));
        let mut other = action("c1");
        other.task_name = "pkg.Predict".into();
        assert!(!query.keeps(None, &other));
        // A run's name is its root action's run column.
        let runs = parse(
            Listed::Runs,
            &request(vec![filter("name", Function::Equal, &["run-1"])]),
        )
        .unwrap();
        assert_eq!(runs.conditions(), ["a.run = ?"]);
    }

    #[test]
    fn labels_are_checked_on_the_run_spec() {
        let run = run_with_labels(&[("team", "ml"), ("tier", "Gold")]);
        let root = action("a0");
        let keeps = |filters: Vec<Filter>| {
            parse(Listed::Runs, &request(filters))
                .unwrap()
                .keeps(Some(&run), &root)
        };
        assert!(keeps(vec![filter("labels.team", Function::Equal, &["ml"])]));
        assert!(!keeps(vec![filter(
            "labels.team",
            Function::Equal,
            &["ops"]
        )]));
        assert!(keeps(vec![filter("labels.team", Function::Exists, &[])]));
        assert!(!keeps(vec![filter("labels.owner", Function::Exists, &[])]));
        assert!(keeps(vec![filter(
            "labels.owner",
            Function::NotExists,
            &[]
        )]));
        assert!(!keeps(vec![filter(
            "labels.team",
            Function::NotExists,
            &[]
        )]));
        assert!(keeps(vec![filter(
            "labels.tier",
            Function::ContainsCaseInsensitive,
            &["GOL"]
        )]));
        assert!(!keeps(vec![filter(
            "labels.tier",
            Function::Contains,
            &["gol"]
        )]));
        assert!(keeps(vec![filter(
            "labels.team",
            Function::ValueIn,
            &["ops", "ml"]
        )]));
        // A label the run lacks neither equals nor differs from a value.
        assert!(!keeps(vec![filter(
            "labels.owner",
            Function::NotEqual,
            &["x"]
        )]));
        assert!(!keeps(vec![
            filter("labels.team", Function::Equal, &["ml"]),
            filter("labels.tier", Function::Equal, &["gold"]),
        ]));
        let bare = RunRecord {
            run_spec: None,
            ..run.clone()
        };
        let exists = parse(
            Listed::Runs,
            &request(vec![filter("labels.team", Function::Exists, &[])]),
        )
        .unwrap();
        assert!(!exists.keeps(Some(&bare), &root));
        // Label checks are left to Rust, so SQL must not cut the page short.
        assert_eq!(exists.sql_limit(), -1);
    }

    #[test]
    fn created_by_is_the_backend_user() {
        let by = |function, values: &[&str]| {
            parse(
                Listed::Runs,
                &request(vec![filter("created_by", function, values)]),
            )
            .unwrap()
            .matches_nothing()
        };
        assert!(!by(Function::Equal, &[SUBJECT]));
        assert!(by(Function::Equal, &["someone-else"]));
        assert!(!by(Function::NotEqual, &["someone-else"]));
        assert!(!by(Function::ValueIn, &["x", SUBJECT]));
        let message = rejected(
            Listed::Actions,
            vec![filter("created_by", Function::Equal, &[SUBJECT])],
        );
        assert!(message.contains("actions cannot be filtered by \"created_by\""));
    }

    #[test]
    fn unsupported_filters_are_named() {
        let cases = [
            (
                Listed::Runs,
                filter("owner", Function::Equal, &["x"]),
                "\"owner\"",
            ),
            (
                Listed::Runs,
                filter("parent_name", Function::Equal, &["a0"]),
                "parent_name",
            ),
            (
                Listed::Actions,
                filter("labels.k", Function::Exists, &[]),
                "labels.k",
            ),
            (
                Listed::Runs,
                filter("labels.", Function::Exists, &[]),
                "labels.",
            ),
            (
                Listed::Runs,
                filter("name", Function::EndsWith, &["x"]),
                "ENDS_WITH",
            ),
            (
                Listed::Runs,
                filter("name", Function::Exists, &[]),
                "labels.<key>",
            ),
            (
                Listed::Runs,
                filter("phase", Function::Contains, &["4"]),
                "phases",
            ),
            (
                Listed::Runs,
                filter("name", Function::Equal, &[]),
                "exactly one value",
            ),
            (
                Listed::Runs,
                filter("name", Function::Equal, &["a", "b"]),
                "exactly one",
            ),
            (
                Listed::Runs,
                filter("name", Function::ValueIn, &[]),
                "at least one value",
            ),
            (
                Listed::Runs,
                filter("labels.k", Function::Exists, &["v"]),
                "takes no values",
            ),
        ];
        for (listed, filter, expected) in cases {
            let field = filter.field.clone();
            let message = rejected(listed, vec![filter]);
            assert!(message.contains(expected), "{field}: {message}");
            assert!(
                message.contains(&format!("{field:?}")),
                "{field}: {message}"
            );
        }
        let unknown = Filter {
            function: 42,
            field: "name".into(),
            values: vec!["x".into()],
        };
        assert!(rejected(Listed::Runs, vec![unknown]).contains("42 is not a filter function"));
        let raw = ListRequest {
            raw_filters: vec!["eq(phase,4)".into()],
            ..Default::default()
        };
        assert!(parse(Listed::Runs, &raw)
            .unwrap_err()
            .message()
            .contains("raw_filters"));
    }

    #[allow(deprecated)]
    #[test]
    fn sort_orders() {
        let sorted = |sort_by: Option<Sort>, fields: Vec<Sort>| ListRequest {
            sort_by,
            sort_by_fields: fields,
            ..Default::default()
        };
        let by = |key: &str, direction: Direction| Sort {
            key: key.into(),
            direction: direction as i32,
        };
        let order = |listed, request: &ListRequest| parse(listed, request).unwrap().order_by();
        assert_eq!(order(Listed::Runs, &sorted(None, vec![])), "a.seq DESC");
        assert_eq!(order(Listed::Actions, &sorted(None, vec![])), "a.seq ASC");
        assert_eq!(
            order(
                Listed::Runs,
                &sorted(Some(by("created_at", Direction::Ascending)), vec![])
            ),
            "a.created_ms ASC, a.seq ASC"
        );
        // sort_by_fields replaces the deprecated sort_by.
        assert_eq!(
            order(
                Listed::Actions,
                &sorted(
                    Some(by("created_at", Direction::Ascending)),
                    vec![
                        by("phase", Direction::Ascending),
                        by("name", Direction::Descending)
                    ]
                )
            ),
            "a.phase ASC, a.name DESC, a.seq DESC"
        );
        assert!(order(
            Listed::Runs,
            &sorted(None, vec![by("updated_at", Direction::Descending)])
        )
        .starts_with("MAX("));
        let unknown = parse(
            Listed::Runs,
            &sorted(Some(by("duration", Direction::Ascending)), vec![]),
        )
        .unwrap_err();
        assert_eq!(unknown.code(), Code::InvalidArgument);
        assert!(unknown.message().contains("\"duration\""));
        let bad_direction = Sort {
            key: "name".into(),
            direction: 7,
        };
        assert!(parse(Listed::Runs, &sorted(Some(bad_direction), vec![]))
            .unwrap_err()
            .message()
            .contains("direction 7"));
    }

    #[test]
    fn tokens_resume_after_the_last_row() {
        let first = ListRequest {
            limit: 2,
            sort_by_fields: vec![Sort {
                key: "name".into(),
                direction: Direction::Descending as i32,
            }],
            ..Default::default()
        };
        let query = parse(Listed::Actions, &first).unwrap();
        assert_eq!(query.sql_limit(), 2);
        assert_eq!(query.next_token(1, Some(&action("c1"))), "", "short page");
        let token = query.next_token(2, Some(&action("c1")));
        assert!(!token.is_empty());
        let next = parse(
            Listed::Actions,
            &ListRequest {
                token: token.clone(),
                ..first.clone()
            },
        )
        .unwrap();
        assert_eq!(
            next.conditions(),
            ["((a.name < ?) OR (a.name = ? AND a.seq < ?))"]
        );
        assert_eq!(
            next.params(),
            [
                Value::Text("c1".into()),
                Value::Text("c1".into()),
                Value::Integer(7)
            ]
        );
        // A token only fits the order it was issued for.
        let resorted = parse(
            Listed::Actions,
            &ListRequest {
                token,
                sort_by_fields: Vec::new(),
                ..first.clone()
            },
        )
        .unwrap_err();
        assert!(resorted.message().contains("sorted by name desc"));
        for garbage in ["17", "not-a-token", "e30"] {
            let status = parse(
                Listed::Actions,
                &ListRequest {
                    token: garbage.into(),
                    ..first.clone()
                },
            )
            .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status
                    .message()
                    .contains("not a page token issued by this backend"),
                "{garbage}: {}",
                status.message()
            );
        }
        let unlimited = parse(Listed::Runs, &ListRequest::default()).unwrap();
        assert_eq!(unlimited.sql_limit(), -1);
        assert_eq!(unlimited.next_token(1000, Some(&action("a0"))), "");
    }

    #[test]
    fn updated_at_is_the_latest_time_recorded() {
        let mut record = action("c1");
        assert_eq!(updated_ms(&record), 3_000);
        record.ended_ms = Some(5_000);
        assert_eq!(updated_ms(&record), 5_000);
        // A trace may report times from before it was recorded.
        record.started_ms = Some(10);
        record.ended_ms = Some(20);
        assert_eq!(updated_ms(&record), 1_000);
    }
}
