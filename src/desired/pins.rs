//! How a definition pins its functions' versions: every string that is
//! exactly one of the stage's function ARNs gets the version's qualifier
//! (`...:function:orders-dev-completeOrder:7`), and reading it back strips
//! them again, saying which version each function was pinned to. Pure.

use std::collections::BTreeMap;

use serde_json::Value;

/// `definition` with each unqualified ARN of `versions` replaced by the
/// qualified ARN it maps to.
pub fn qualify(definition: &Value, versions: &BTreeMap<String, String>) -> Value {
    map_strings(definition, &|s| versions.get(s).cloned())
}

/// `definition` with the qualifier stripped from each ARN of `arns`
/// (unqualified ARN -> function name), and the version each of those
/// functions is pinned to: `None` where it is named unqualified, or not
/// at all. Two different versions of one function pin the newer.
pub fn unqualify(
    definition: &Value,
    arns: &BTreeMap<String, String>,
) -> (Value, BTreeMap<String, Option<String>>) {
    let found = std::sync::Mutex::new(BTreeMap::<String, Option<String>>::new());
    let stripped = map_strings(definition, &|s| {
        let (base, version) = s.rsplit_once(':')?;
        let name = arns.get(base)?;
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut found = found.lock().expect("not poisoned");
        let slot = found.entry(name.clone()).or_default();
        let newer = slot
            .as_deref()
            .is_none_or(|v| v.parse::<u64>().unwrap_or(0) < version.parse().unwrap_or(0));
        if newer {
            *slot = Some(version.to_string());
        }
        Some(base.to_string())
    });
    let mut pins = found.into_inner().expect("not poisoned");
    for name in arns.values() {
        pins.entry(name.clone()).or_default();
    }
    (stripped, pins)
}

fn map_strings(value: &Value, f: &dyn Fn(&str) -> Option<String>) -> Value {
    match value {
        Value::String(s) => Value::String(f(s).unwrap_or_else(|| s.clone())),
        Value::Array(items) => Value::Array(items.iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), map_strings(v, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:lambda:us-east-1:1:function:orders-dev-completeOrder";

    #[test]
    fn a_definition_pins_versions_and_reads_back_unpinned() {
        let definition = json!({"States": {"A": {"Resource": ARN, "Comment": "x"},
            "B": {"Parameters": {"FunctionName": ARN}}}});
        let versions = BTreeMap::from([(ARN.to_string(), format!("{ARN}:7"))]);
        let pinned = qualify(&definition, &versions);
        assert_eq!(pinned["States"]["A"]["Resource"], format!("{ARN}:7"));
        assert_eq!(
            pinned["States"]["B"]["Parameters"]["FunctionName"],
            format!("{ARN}:7")
        );
        let arns = BTreeMap::from([(ARN.to_string(), "orders-dev-completeOrder".to_string())]);
        let (back, pins) = unqualify(&pinned, &arns);
        assert_eq!(back, definition);
        assert_eq!(
            pins,
            BTreeMap::from([(
                "orders-dev-completeOrder".to_string(),
                Some("7".to_string())
            )])
        );
        // Before the upgrade: named unqualified, so pinned to no version.
        let (_, pins) = unqualify(&definition, &arns);
        assert_eq!(pins["orders-dev-completeOrder"], None);
        // An alias or $LATEST is not one of stepgate's pins.
        let latest = json!({"Resource": format!("{ARN}:$LATEST")});
        assert_eq!(unqualify(&latest, &arns).0, latest);
    }
}
