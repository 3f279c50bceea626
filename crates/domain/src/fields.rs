//! Custom fields of a case type (DESIGN.md "Case type", API.md "Workflow document"):
//! `{"key", "label", "type": "string|number|date|boolean", "size": "S|M|L", "indexed",
//! "required"}`. Definitions are checked as a whole when a case type is saved; values are
//! checked on every case create and update, and a bad value answers 422 naming `fields.<key>`.
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The type of a custom field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Text of a bounded size.
    String,
    /// A JSON number.
    Number,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// `true` or `false`.
    Boolean,
}

/// The size class of a string field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StringSize {
    /// Up to 50 characters.
    S,
    /// Up to 255 characters.
    M,
    /// Up to 4000 characters.
    L,
}

impl StringSize {
    /// The most characters a value may have.
    pub fn max_chars(self) -> usize {
        match self {
            Self::S => 50,
            Self::M => 255,
            Self::L => 4000,
        }
    }
}

/// One field definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Stable key: lowercase letters, digits and `_`, starting with a letter, at most 63.
    pub key: String,
    /// Display label.
    pub label: String,
    /// Value type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Size class of a string field (default `M`); absent for other types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<StringSize>,
    /// Whether list filters on this field are served by an index.
    #[serde(default)]
    pub indexed: bool,
    /// Whether every case of the type must have a value.
    #[serde(default)]
    pub required: bool,
}

impl FieldDef {
    /// The size class that applies (string fields default to `M`).
    pub fn string_size(&self) -> StringSize {
        self.size.unwrap_or(StringSize::M)
    }
}

/// The most custom fields one case type may define.
pub const MAX_FIELDS: usize = 100;

/// A problem in a definition list: where and what (`invalid_workflow` lists these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON-pointer-like path (`fields[2].key`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// Every problem of a definition list (empty when it is acceptable).
pub fn check_definitions(defs: &[FieldDef]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut p = |path: String, message: &str| {
        problems.push(Problem {
            path,
            message: message.into(),
        })
    };
    if defs.len() > MAX_FIELDS {
        p("fields".into(), "at most 100 custom fields");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, d) in defs.iter().enumerate() {
        if !valid_key(&d.key) {
            p(
                format!("fields[{i}].key"),
                "must be 1-63 lowercase letters, digits or `_`, starting with a letter",
            );
        } else if !seen.insert(d.key.as_str()) {
            p(format!("fields[{i}].key"), "duplicate field key");
        }
        let label = d.label.trim();
        if label.is_empty() || label.chars().count() > 255 {
            p(format!("fields[{i}].label"), "must be 1-255 characters");
        }
        if d.size.is_some() && d.field_type != FieldType::String {
            p(
                format!("fields[{i}].size"),
                "only string fields have a size",
            );
        }
    }
    problems
}

/// Whether a create supplies every field or an update only the ones it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A new case: required fields must be present and not null.
    Create,
    /// A change: only the given fields are checked; `null` clears an optional field.
    Update,
}

fn field_error(key: &str, message: impl Into<String>) -> Error {
    Error::validation(format!("fields.{key}"), message)
}

/// One spelling per numeric value, so equality filters agree on both databases whether they
/// compare JSON text (SQLite, the index of custom fields) or JSON values (PostgreSQL `jsonb`):
/// a whole number within ±2^53 is stored as an integer (`5000.0` → `5000`), others as given.
pub fn canonical_number(n: &serde_json::Number) -> serde_json::Number {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer up to here is exact
    match n.as_f64() {
        Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() <= EXACT => {
            serde_json::Number::from(f as i64)
        }
        _ => n.clone(),
    }
}

/// Checks one value against its definition; returns it as stored.
fn check_value(d: &FieldDef, v: &Value) -> Result<Value> {
    match (d.field_type, v) {
        (_, Value::Null) if d.required => Err(field_error(&d.key, "is required")),
        (_, Value::Null) => Ok(Value::Null),
        (FieldType::String, Value::String(s)) => {
            let max = d.string_size().max_chars();
            if s.chars().count() > max {
                Err(field_error(
                    &d.key,
                    format!("must be at most {max} characters"),
                ))
            } else {
                Ok(v.clone())
            }
        }
        (FieldType::Number, Value::Number(n)) => Ok(Value::Number(canonical_number(n))),
        (FieldType::Boolean, Value::Bool(_)) => Ok(v.clone()),
        (FieldType::Date, Value::String(s)) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            match time::Date::parse(s, &format) {
                Ok(_) if s.len() == 10 => Ok(v.clone()),
                _ => Err(field_error(&d.key, "must be a date YYYY-MM-DD")),
            }
        }
        (t, _) => Err(field_error(
            &d.key,
            format!(
                "must be {}",
                match t {
                    FieldType::String => "a string",
                    FieldType::Number => "a number",
                    FieldType::Date => "a date YYYY-MM-DD",
                    FieldType::Boolean => "true or false",
                }
            ),
        )),
    }
}

/// Checks `values` against `defs` and returns them as stored. Unknown keys, wrong types,
/// oversized strings, impossible dates and (on create) missing required fields are refused
/// with 422 `validation_failed` naming `fields.<key>`; the first problem in key order wins.
pub fn check_values(
    defs: &[FieldDef],
    values: &Map<String, Value>,
    mode: Mode,
) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in values {
        let d = defs
            .iter()
            .find(|d| d.key == *k)
            .ok_or_else(|| field_error(k, "is not a field of this case type"))?;
        out.insert(k.clone(), check_value(d, v)?);
    }
    if mode == Mode::Create
        && let Some(d) = defs
            .iter()
            .find(|d| d.required && !values.contains_key(&d.key))
    {
        return Err(field_error(&d.key, "is required"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn defs() -> Vec<FieldDef> {
        serde_json::from_value(json!([
            {"key": "account_number", "label": "Account", "type": "string", "size": "S", "indexed": true, "required": true},
            {"key": "amount", "label": "Amount", "type": "number"},
            {"key": "first_seen", "label": "First seen", "type": "date"},
            {"key": "pep", "label": "PEP", "type": "boolean"},
            {"key": "summary", "label": "Summary", "type": "string", "size": "L"},
            {"key": "note", "label": "Note", "type": "string"}
        ]))
        .unwrap()
    }

    fn canon(text: &str) -> String {
        canonical_number(&serde_json::from_str(text).unwrap()).to_string()
    }

    #[test]
    fn numbers_have_one_spelling() {
        for (given, stored) in [
            ("5000", "5000"),
            ("5000.0", "5000"),
            ("5e3", "5000"),
            ("-0.0", "0"),
            ("12.5", "12.5"),
            ("9007199254740992.0", "9007199254740992"),
            ("18446744073709551615", "18446744073709551615"),
        ] {
            assert_eq!(canon(given), stored, "{given}");
        }
        // Beyond 2^53 floats keep serde_json's spelling, one per value.
        assert_eq!(canon("1e300"), canon("1.0e300"));
        let v = check_values(
            &defs(),
            &serde_json::from_value(json!({"account_number": "1", "amount": 250.0})).unwrap(),
            Mode::Create,
        )
        .unwrap();
        assert_eq!(v["amount"].to_string(), "250");
    }

    proptest! {
        /// Equal numbers get equal spellings, whichever way they were written.
        #[test]
        fn equal_numbers_are_spelled_alike(n in -(1i64 << 53)..(1i64 << 53)) {
            prop_assert_eq!(canon(&format!("{n}.0")), n.to_string());
            prop_assert_eq!(canon(&n.to_string()), n.to_string());
        }
    }

    fn values(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn param(r: Result<Map<String, Value>>) -> String {
        r.unwrap_err().param.unwrap()
    }

    #[test]
    fn good_values_pass_through() {
        let v = values(
            json!({"account_number": "DE0012", "amount": 12.5, "first_seen": "2024-02-29", "pep": false}),
        );
        assert_eq!(check_values(&defs(), &v, Mode::Create).unwrap(), v);
    }

    #[test]
    fn each_kind_of_bad_value_names_its_field() {
        let d = defs();
        let base = |extra: Value| {
            let mut m = values(json!({"account_number": "A1"}));
            m.extend(values(extra));
            m
        };
        for (extra, field) in [
            (json!({"colour": "red"}), "fields.colour"),
            (json!({"amount": "12"}), "fields.amount"),
            (json!({"pep": "yes"}), "fields.pep"),
            (json!({"first_seen": "2023-02-29"}), "fields.first_seen"),
            (json!({"first_seen": "2023-2-1"}), "fields.first_seen"),
            (json!({"first_seen": 20230201}), "fields.first_seen"),
            (json!({"note": "x".repeat(256)}), "fields.note"),
            (json!({"summary": ["a"]}), "fields.summary"),
        ] {
            assert_eq!(
                param(check_values(&d, &base(extra.clone()), Mode::Create)),
                field,
                "{extra}"
            );
        }
        assert_eq!(
            param(check_values(
                &d,
                &values(json!({"amount": 1})),
                Mode::Create
            )),
            "fields.account_number"
        );
        assert_eq!(
            param(check_values(
                &d,
                &values(json!({"account_number": null})),
                Mode::Update
            )),
            "fields.account_number"
        );
        // An update may leave required fields out and clear optional ones.
        assert!(check_values(&d, &values(json!({"amount": null})), Mode::Update).is_ok());
    }

    #[test]
    fn definitions_are_checked_as_a_whole() {
        let bad: Vec<FieldDef> = serde_json::from_value(json!([
            {"key": "Amount", "label": "A", "type": "number"},
            {"key": "x", "label": "", "type": "number", "size": "S"},
            {"key": "x", "label": "X", "type": "string"}
        ]))
        .unwrap();
        let paths: Vec<_> = check_definitions(&bad)
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            [
                "fields[0].key",
                "fields[1].label",
                "fields[1].size",
                "fields[2].key"
            ]
        );
        assert!(check_definitions(&defs()).is_empty());
        assert!(
            serde_json::from_value::<FieldDef>(json!({"key": "a", "label": "A", "type": "money"}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<FieldDef>(
                json!({"key": "a", "label": "A", "type": "string", "size": "XL"})
            )
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn string_sizes_are_enforced_in_characters(n in 0usize..300, wide in any::<bool>()) {
            let c = if wide { 'é' } else { 'a' };
            let v = values(json!({"account_number": "A", "note": c.to_string().repeat(n)}));
            let r = check_values(&defs(), &v, Mode::Create);
            prop_assert_eq!(r.is_ok(), n <= 255);
        }
    }
}
