//! A step's expectations matched against its answer (tables field by field, `len`, `any`,
//! `none`, `seq` on arrays, and the `@null`, `@any`, `@absent`, `@starts:`, `@ends:` markers),
//! `${name}` bindings replaced, values looked up by dotted paths, answers shown compactly in the
//! trace. Pure: the differential test checks a real daemon's answers with the same code.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ANSWER_TRACE_CHARS_MAX;
use crate::calls;

/// An expected value meaning "this field is null" (TOML has no null).
pub const EXPECT_NULL: &str = "@null";
/// An expected value meaning "this field is there, whatever its value".
pub const EXPECT_ANY: &str = "@any";
/// An expected value meaning "this field is not there".
pub const EXPECT_ABSENT: &str = "@absent";

/// An expected value `@starts:text` means "a string starting with `text`".
pub const EXPECT_STARTS: &str = "@starts:";

/// An expected value `@ends:text` means "a string ending with `text`".
pub const EXPECT_ENDS: &str = "@ends:";

/// A TOML value as JSON.
#[must_use]
pub fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// `value` with every `${name}` in `bindings` replaced (a string that is exactly `${name}`
/// takes the bound value as it is).
#[must_use]
pub fn replace(value: &Value, bindings: &BTreeMap<String, Value>) -> Value {
    match value {
        // Nothing to replace: the text as it is (most of a step's strings).
        Value::String(text) if !text.contains("${") => Value::String(text.clone()),
        Value::String(text) => {
            if let Some(name) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}'))
                && let Some(bound) = bindings.get(name)
            {
                return bound.clone();
            }
            let mut out = text.clone();
            for (name, bound) in bindings {
                let shown = match bound {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out = out.replace(&format!("${{{name}}}"), &shown);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| replace(v, bindings)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), replace(v, bindings)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The value at a dotted path (`id`, `tasks.0.id`, `merge.linesAdded`); in an array, a step
/// `field=value` takes the first item whose `field` is the string `value`
/// (`body.taskName=b-work.agentId`).
#[must_use]
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |value, key| match value {
        Value::Array(items) => match key.split_once('=') {
            Some((field, wanted)) => items
                .iter()
                .find(|item| item.get(field).and_then(Value::as_str) == Some(wanted)),
            None => items.get(key.parse::<usize>().ok()?),
        },
        Value::Object(map) => map.get(key),
        _ => None,
    })
}

/// Compact JSON for a trace line.
pub(crate) fn compact(value: &Value) -> String {
    let text = value.to_string();
    let chars = text.chars().count();
    if chars <= ANSWER_TRACE_CHARS_MAX {
        return text;
    }
    let cut: String = text.chars().take(ANSWER_TRACE_CHARS_MAX).collect();
    format!(
        "{cut}… ({} more characters)",
        chars - ANSWER_TRACE_CHARS_MAX
    )
}

pub(super) fn render(answer: &calls::Answer) -> String {
    match answer {
        Ok(value) => format!("ok {}", compact(value)),
        Err(error) => format!("error: {error}"),
    }
}

/// What is wrong with `answer` against `expect` (empty when it matches).
#[must_use]
pub fn expectations(expect: &Value, answer: &calls::Answer) -> Vec<String> {
    let mut problems = Vec::new();
    let wanted_error = expect.get("error");
    match (answer, wanted_error) {
        (Err(error), Some(Value::String(wanted))) => {
            if !error.contains(wanted.as_str()) {
                problems.push(format!(
                    "expected an error containing {wanted:?}\n  got the error: {error}"
                ));
            }
        }
        (Err(error), _) => problems.push(format!("expected success\n  got the error: {error}")),
        (Ok(value), Some(wanted)) => problems.push(format!(
            "expected an error containing {wanted}\n  got success: {}",
            compact(value)
        )),
        (Ok(value), None) => {
            compare("", expect, Some(value), &mut problems);
            if !problems.is_empty() {
                problems.push(format!("  the whole answer: {value}"));
            }
        }
    }
    problems
}

fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        Value::Object(map) => map.get(key),
        _ => None,
    }
}

/// Compares a wanted value with what the answer holds at `path` (tables are matched field by
/// field, so an expectation names only what it cares about; on an array, `len` is its length
/// and `any`, `none`, `seq` search it, see [`search`]).
fn compare(path: &str, wanted: &Value, got: Option<&Value>, problems: &mut Vec<String>) {
    match (wanted, got) {
        (Value::Object(fields), Some(got @ (Value::Object(_) | Value::Array(_)))) => {
            for (key, wanted) in fields {
                if let (true, Value::Array(items)) = (key == "len", got) {
                    if !same(wanted, &Value::from(items.len())) {
                        problems.push(format!(
                            "{path}.len: expected {wanted} items, got {}",
                            items.len()
                        ));
                    }
                    continue;
                }
                if let Value::Array(items) = got {
                    if let Some(problem) = search(key, wanted, items) {
                        problems.push(format!("{path}.{key}: {problem}"));
                        continue;
                    }
                    if ["any", "none", "seq"].contains(&key.as_str()) {
                        continue;
                    }
                }
                compare(&format!("{path}.{key}"), wanted, field(got, key), problems);
            }
        }
        (Value::String(w), got) if w == EXPECT_ABSENT => {
            if let Some(got) = got {
                problems.push(format!("{path}: expected nothing, got {}", compact(got)));
            }
        }
        (Value::String(w), Some(_)) if w == EXPECT_ANY => {}
        (Value::String(w), Some(got)) if w.starts_with(EXPECT_STARTS) => {
            let prefix = &w[EXPECT_STARTS.len()..];
            if !got.as_str().is_some_and(|g| g.starts_with(prefix)) {
                problems.push(format!(
                    "{path}: expected text starting with {prefix:?}, got {}",
                    compact(got)
                ));
            }
        }
        (Value::String(w), Some(got)) if w.starts_with(EXPECT_ENDS) => {
            let suffix = &w[EXPECT_ENDS.len()..];
            if !got.as_str().is_some_and(|g| g.ends_with(suffix)) {
                problems.push(format!(
                    "{path}: expected text ending with {suffix:?}, got {}",
                    compact(got)
                ));
            }
        }
        (Value::String(w), Some(got)) if w == EXPECT_NULL => {
            if !got.is_null() {
                problems.push(format!("{path}: expected null, got {}", compact(got)));
            }
        }
        (wanted, Some(got)) if same(wanted, got) => {}
        (wanted, Some(got)) => {
            problems.push(format!("{path}: expected {wanted}, got {}", compact(got)));
        }
        (wanted, None) => problems.push(format!("{path}: expected {wanted}, got nothing")),
    }
}

/// Whether `item` holds what `wanted` asks for (as [`compare`] matches it).
fn matches(wanted: &Value, item: &Value) -> bool {
    let mut problems = Vec::new();
    compare("", wanted, Some(item), &mut problems);
    problems.is_empty()
}

/// An array expectation that searches: `any` (some item matches), `none` (no item does), `seq`
/// (these match items in this order, others between them allowed). What is wrong, if anything;
/// `None` too for any other key.
fn search(key: &str, wanted: &Value, items: &[Value]) -> Option<String> {
    match key {
        "any" => (!items.iter().any(|item| matches(wanted, item)))
            .then(|| format!("expected an item holding {wanted}, none does")),
        "none" => items
            .iter()
            .position(|item| matches(wanted, item))
            .map(|at| format!("expected no item holding {wanted}, item {at} does")),
        "seq" => {
            let Value::Array(sequence) = wanted else {
                return Some(format!("seq must be an array, got {wanted}"));
            };
            let mut rest = items.iter().enumerate();
            for (k, wanted) in sequence.iter().enumerate() {
                if !rest.any(|(_, item)| matches(wanted, item)) {
                    return Some(format!(
                        "expected {wanted} (seq item {k}) after the ones before it, not found"
                    ));
                }
            }
            None
        }
        _ => None,
    }
}

fn same(wanted: &Value, got: &Value) -> bool {
    match (wanted, got) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        _ => wanted == got,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{expectations, lookup};

    #[test]
    fn expectations_name_only_the_fields_they_care_about() {
        let answer = Ok(json!({ "status": "idle", "id": "x", "exitCode": null }));
        assert!(expectations(&json!({ "status": "idle" }), &answer).is_empty());
        let problems = expectations(&json!({ "status": "running" }), &answer);
        assert!(
            problems[0].contains(".status: expected \"running\", got \"idle\""),
            "{problems:?}"
        );
        assert!(expectations(&json!({ "exitCode": "@null" }), &answer).is_empty());
        assert!(!expectations(&json!({ "status": "@null" }), &answer).is_empty());
        assert!(expectations(&json!({ "id": "@any", "gone": "@absent" }), &answer).is_empty());
        assert!(!expectations(&json!({ "id": "@absent" }), &answer).is_empty());
        assert!(!expectations(&json!({ "gone": "@any" }), &answer).is_empty());
        assert!(expectations(&json!({ "status": "@starts:id" }), &answer).is_empty());
        assert!(!expectations(&json!({ "status": "@starts:run" }), &answer).is_empty());
        assert!(expectations(&json!({ "status": "@ends:dle" }), &answer).is_empty());
        assert!(!expectations(&json!({ "status": "@ends:id" }), &answer).is_empty());
    }

    #[test]
    fn arrays_are_matched_by_index_and_length() {
        let answer = Ok(json!([{ "name": "a" }, { "name": "b" }]));
        assert!(expectations(&json!({ "len": 2, "1": { "name": "b" } }), &answer).is_empty());
        assert!(!expectations(&json!({ "len": 3 }), &answer).is_empty());
    }

    #[test]
    fn an_expected_error_is_matched_by_its_text() {
        let failed: Result<serde_json::Value, String> = Err("Task not found: x".into());
        assert!(expectations(&json!({ "error": "not found" }), &failed).is_empty());
        assert!(
            !expectations(&json!({}), &failed).is_empty(),
            "success was expected"
        );
        assert!(!expectations(&json!({ "error": "x" }), &Ok(json!({}))).is_empty());
    }

    #[test]
    fn arrays_are_searched_for_any_none_and_an_ordered_sequence() {
        let answer = Ok(json!({ "m": [{ "t": "a" }, { "t": "b", "x": 1 }, { "t": "c" }] }));
        let holds = |expect: serde_json::Value| expectations(&expect, &answer).is_empty();
        assert!(holds(json!({ "m": { "any": { "t": "b" } } })));
        assert!(!holds(json!({ "m": { "any": { "t": "d" } } })));
        assert!(holds(json!({ "m": { "none": { "t": "d" } } })));
        assert!(!holds(json!({ "m": { "none": { "x": 1 } } })));
        assert!(holds(
            json!({ "m": { "seq": [{ "t": "a" }, { "t": "c" }] } })
        ));
        assert!(!holds(
            json!({ "m": { "seq": [{ "t": "c" }, { "t": "a" }] } })
        ));
        assert!(!holds(
            json!({ "m": { "seq": [{ "t": "b" }, { "t": "b" }] } })
        ));
        assert!(holds(json!({ "m": { "seq": [], "len": 3 } })));
    }

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let value = json!({ "tasks": [{ "id": "t1" }] });
        assert_eq!(lookup(&value, "tasks.0.id"), Some(&json!("t1")));
        assert_eq!(lookup(&value, "tasks.1.id"), None);
        let value = json!({ "body": [{ "name": "a", "id": 1 }, { "name": "b", "id": 2 }] });
        assert_eq!(lookup(&value, "body.name=b.id"), Some(&json!(2)));
        assert_eq!(lookup(&value, "body.name=c.id"), None);
        assert_eq!(
            lookup(&value, "body.id=1.name"),
            None,
            "only strings are matched"
        );
    }
}
