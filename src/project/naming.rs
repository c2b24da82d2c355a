//! Name overrides and adoption: `name` (and `adopt`) on `[functions.NAME]`,
//! `[state_machines.NAME]` and `[roles.ROLE]`, `id` (and `adopt`) on
//! `[api]`, with a stage's overrides over them. A name override makes
//! stepgate manage that physical name instead of `{stack}-{stage}-...`;
//! `adopt = true` lets deploy take an untagged resource of that name.
//! Pure: read from the file's declarations, checked before any AWS call.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use anyhow::{bail, Result};
use toml::Spanned;

use super::file::{RawDeclarations, RawRole};
use crate::names::Overrides;

/// Which of the named resources deploy may take untagged without
/// `--adopt`: keys are the names within the project.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adoption {
    pub functions: BTreeSet<String>,
    pub machines: BTreeSet<String>,
    pub roles: BTreeSet<String>,
    pub api: bool,
}

/// The overrides and adoption flags of `raw` for `stage`, each checked
/// against what AWS accepts as that kind's name.
pub fn resolve(
    raw: &RawDeclarations,
    stage: &str,
    at: &dyn Fn(Range<usize>) -> String,
) -> Result<(Overrides, Adoption)> {
    let mut overrides = Overrides::default();
    let mut adoption = Adoption::default();
    let over = raw.stages.get(stage);
    let functions = merged(&raw.functions, over.map(|s| &s.functions), |f| {
        (f.name.clone(), f.adopt.clone())
    });
    for (key, (name, adopt)) in functions {
        let table = format!("[functions.{key}]");
        if let Some(name) = named(&table, name, adopt.as_ref(), at, &FUNCTION)? {
            overrides.functions.insert(key.clone(), name);
            if is_set(&adopt) {
                adoption.functions.insert(key);
            }
        }
    }
    let machines = merged(&raw.state_machines, over.map(|s| &s.state_machines), |m| {
        (m.name.clone(), m.adopt.clone())
    });
    for (key, (name, adopt)) in machines {
        let table = format!("[state_machines.{key}]");
        if let Some(name) = named(&table, name, adopt.as_ref(), at, &MACHINE)? {
            overrides.machines.insert(key.clone(), name);
            if is_set(&adopt) {
                adoption.machines.insert(key);
            }
        }
    }
    let roles = merged(&raw.roles, over.map(|s| &s.roles), |r: &RawRole| {
        (r.name.clone(), r.adopt.clone())
    });
    for (key, (name, adopt)) in roles {
        let table = format!("[roles.{key}]");
        match named(&table, name, adopt.as_ref(), at, &ROLE)? {
            Some(name) => {
                overrides.roles.insert(key.clone(), name);
                if is_set(&adopt) {
                    adoption.roles.insert(key);
                }
            }
            None => bail!("{table}: give the role's name in AWS, such as name = \"Custom-AWSStepFunctionServiceRole\"; the table has nothing else to set"),
        }
    }
    if let Some(id) = &raw.api.id {
        let ok = !id.get_ref().is_empty()
            && id.get_ref().len() <= 32
            && id.get_ref().chars().all(|c| c.is_ascii_alphanumeric());
        if !ok {
            bail!(
                "{}: [api] id = {:?} is not a REST API id; use the id API Gateway gave it (10 letters and digits, as in https://ID.execute-api.REGION.amazonaws.com/)",
                at(id.span()),
                id.get_ref()
            );
        }
        overrides.api_id = Some(id.get_ref().clone());
        adoption.api = is_set(&raw.api.adopt);
    } else if let Some(adopt) = raw.api.adopt.as_ref().filter(|a| *a.get_ref()) {
        bail!(
            "{}: [api] adopt = true takes an existing REST API, and [api] names none; add id = \"API_ID\"",
            at(adopt.span())
        );
    }
    check_unique("function", &overrides.functions)?;
    check_unique("state machine", &overrides.machines)?;
    check_unique("role", &overrides.roles)?;
    Ok((overrides, adoption))
}

/// What AWS accepts as a kind's name.
struct Rule {
    what: &'static str,
    longest: usize,
    extra: &'static str,
}

const FUNCTION: Rule = Rule {
    what: "Lambda function",
    longest: 64,
    extra: "-_",
};
const MACHINE: Rule = Rule {
    what: "state machine",
    longest: 80,
    extra: "-_",
};
const ROLE: Rule = Rule {
    what: "IAM role",
    longest: 64,
    extra: "+=,.@-_",
};

fn is_set(flag: &Option<Spanned<bool>>) -> bool {
    flag.as_ref().is_some_and(|f| *f.get_ref())
}

/// The table's `name`, checked; `adopt = true` without one is refused.
fn named(
    table: &str,
    name: Option<Spanned<String>>,
    adopt: Option<&Spanned<bool>>,
    at: &dyn Fn(Range<usize>) -> String,
    rule: &Rule,
) -> Result<Option<String>> {
    let Some(name) = name else {
        if let Some(adopt) = adopt.filter(|a| *a.get_ref()) {
            bail!(
                "{}: {table} adopt = true takes an existing resource by its name, and the table gives none; add name = \"NAME\"",
                at(adopt.span())
            );
        }
        return Ok(None);
    };
    let text = name.get_ref();
    let ok = !text.is_empty()
        && text.len() <= rule.longest
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || rule.extra.contains(c));
    if !ok {
        bail!(
            "{}: {table} name = {text:?} is not a valid {} name; use 1 to {} letters, digits and {}",
            at(name.span()),
            rule.what,
            rule.longest,
            rule.extra.chars().map(String::from).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(Some(text.clone()))
}

/// A table's `name` and `adopt`, as written.
type Named = (Option<Spanned<String>>, Option<Spanned<bool>>);

/// Each table's (name, adopt), a stage's keys over the project's.
fn merged<T>(
    base: &BTreeMap<String, T>,
    stage: Option<&BTreeMap<String, T>>,
    pick: impl Fn(&T) -> Named,
) -> BTreeMap<String, Named> {
    let mut out: BTreeMap<String, Named> = base.iter().map(|(k, v)| (k.clone(), pick(v))).collect();
    for (key, value) in stage.into_iter().flatten() {
        let (name, adopt) = pick(value);
        let entry = out.entry(key.clone()).or_default();
        if name.is_some() {
            entry.0 = name;
        }
        if adopt.is_some() {
            entry.1 = adopt;
        }
    }
    out
}

/// Two declarations may not name one resource.
fn check_unique(what: &str, names: &BTreeMap<String, String>) -> Result<()> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, name) in names {
        if let Some(other) = seen.insert(name, key) {
            bail!("{what}s {other} and {key} are both named {name:?}; two declarations cannot manage one resource, so give one another name");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_text(text: &str, stage: &str) -> Result<(Overrides, Adoption)> {
        let raw: RawDeclarations = toml::from_str(text).unwrap();
        resolve(&raw, stage, &|span| {
            format!("line {}", super::super::file::line_of(text, span.start))
        })
    }

    #[test]
    fn names_and_adoption_come_from_the_tables_and_the_stage_over_them() {
        let (overrides, adoption) = resolve_text(
            r#"
[functions.completeOrder]
name = "completeOrder"
adopt = true
[state_machines.OrderProcessor]
name = "OrderProcessor"
[roles.states]
name = "Custom-AWSStepFunctionServiceRole"
[api]
name = "OrderProcessorAPI"
id = "a1b2c3d4e5"
[stages.prod.functions.completeOrder]
name = "completeOrder-prod"
adopt = false
"#,
            "dev",
        )
        .unwrap();
        assert_eq!(overrides.functions["completeOrder"], "completeOrder");
        assert_eq!(overrides.machines["OrderProcessor"], "OrderProcessor");
        assert_eq!(
            overrides.roles["states"],
            "Custom-AWSStepFunctionServiceRole"
        );
        assert_eq!(overrides.api_id.as_deref(), Some("a1b2c3d4e5"));
        assert!(adoption.functions.contains("completeOrder"));
        assert!(!adoption.machines.contains("OrderProcessor"));
        assert!(!adoption.api);
        let (prod, adoption) = resolve_text(
            "[functions.completeOrder]\nname = \"completeOrder\"\nadopt = true\n[stages.prod.functions.completeOrder]\nname = \"completeOrder-prod\"\nadopt = false\n",
            "prod",
        )
        .unwrap();
        assert_eq!(prod.functions["completeOrder"], "completeOrder-prod");
        assert!(adoption.functions.is_empty());
    }

    #[test]
    fn each_mistake_is_one_line_naming_the_table() {
        for (text, expected) in [
            ("[functions.a]\nname = \"has space\"\n", "line 2: [functions.a] name = \"has space\" is not a valid Lambda function name; use 1 to 64 letters, digits and - _"),
            ("[state_machines.M]\nname = \"\"\n", "[state_machines.M] name = \"\" is not a valid state machine name"),
            ("[roles.states]\nname = \"a/b\"\n", "[roles.states] name = \"a/b\" is not a valid IAM role name"),
            ("[roles.states]\nadopt = true\n", "[roles.states] adopt = true takes an existing resource by its name, and the table gives none"),
            ("[functions.a]\nadopt = true\n", "line 2: [functions.a] adopt = true takes an existing resource by its name"),
            ("[api]\nadopt = true\n", "[api] adopt = true takes an existing REST API, and [api] names none; add id"),
            ("[api]\nid = \"not-an-id\"\n", "[api] id = \"not-an-id\" is not a REST API id"),
            ("[functions.a]\nname = \"x\"\n[functions.b]\nname = \"x\"\n", "functions a and b are both named \"x\""),
        ] {
            let e = resolve_text(text, "dev").unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
