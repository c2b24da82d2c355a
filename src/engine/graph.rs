//! The resource graph checked before anything is read: every id once,
//! every need declared, no cycle. A compiled stack that breaks one of these
//! is stepgate's bug or a declaration the project checks missed; either way
//! it must fail here, naming the resources, not as a resource that waits
//! forever for a need that never comes.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use crate::model::ResourceId;

pub fn validate(graph: &[(ResourceId, Vec<ResourceId>)]) -> Result<()> {
    let mut needs: BTreeMap<&ResourceId, &Vec<ResourceId>> = BTreeMap::new();
    for (id, n) in graph {
        if needs.insert(id, n).is_some() {
            bail!("the stack declares {id} twice; give one of them another name");
        }
    }
    for (id, n) in &needs {
        if let Some(unknown) = n.iter().find(|x| !needs.contains_key(x)) {
            bail!("{id} needs {unknown}, which the stack does not declare");
        }
    }
    // Kahn's algorithm: whatever is never freed sits on a cycle.
    let mut placed: BTreeSet<&ResourceId> = BTreeSet::new();
    loop {
        let ready: Vec<&ResourceId> = needs
            .iter()
            .filter(|(id, n)| !placed.contains(*id) && n.iter().all(|x| placed.contains(x)))
            .map(|(id, _)| *id)
            .collect();
        if ready.is_empty() {
            break;
        }
        placed.extend(ready);
    }
    if placed.len() < needs.len() {
        let stuck: Vec<String> = needs
            .keys()
            .filter(|id| !placed.contains(*id))
            .map(|id| id.to_string())
            .collect();
        bail!(
            "the stack's resources need each other in a cycle: {}",
            stuck.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    fn id(name: &str) -> ResourceId {
        ResourceId::new(Kind("function"), name)
    }

    #[test]
    fn a_sound_graph_passes() {
        validate(&[(id("a"), vec![]), (id("b"), vec![id("a")])]).unwrap();
    }

    #[test]
    fn duplicates_unknown_needs_and_cycles_are_refused_by_name() {
        let e = validate(&[(id("a"), vec![]), (id("a"), vec![])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the stack declares function a twice; give one of them another name"
        );
        let e = validate(&[(id("a"), vec![id("x")])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "function a needs function x, which the stack does not declare"
        );
        let e = validate(&[
            (id("a"), vec![id("b")]),
            (id("b"), vec![id("a")]),
            (id("c"), vec![]),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the stack's resources need each other in a cycle: function a, function b"
        );
    }
}
