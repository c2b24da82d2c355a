//! The stack as a picture, from the declared stack alone (no AWS call):
//! routes start state machines, machines call functions and start other
//! machines, and each role stands beside what runs as it (`stack_graph`).
//! `machine::machine_graph` draws one machine's states instead. Both are a
//! `Graph`, which `render` writes as Mermaid or Graphviz DOT.

pub mod machine;
pub mod render;

use crate::project::{Project, API_ROLE};

/// How a node is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Box,
    Rounded,
    Stadium,
    Diamond,
    Hexagon,
    Circle,
    /// A box with double sides: a state machine.
    Subroutine,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: String,
    /// One entry per line.
    pub label: Vec<String>,
    pub shape: Shape,
    /// A style class (`create`, `update`, `delete`): what a plan does to it.
    pub class: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// A node's id, or a cluster's (the edge leaves the whole cluster).
    pub from: String,
    pub to: String,
    pub label: Option<String>,
    /// Not a flow: a role beside what uses it, an error caught.
    pub dashed: bool,
}

/// A group of nodes drawn in a box: the API's routes, a Parallel state's
/// branch, a Map state's iteration.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Cluster {
    pub id: String,
    pub label: String,
    pub nodes: Vec<String>,
    pub clusters: Vec<Cluster>,
}

impl Cluster {
    fn contains(&self, id: &str) -> bool {
        self.nodes.iter().any(|n| n == id) || self.clusters.iter().any(|c| c.contains(id))
    }

    fn find(&self, id: &str) -> Option<&Cluster> {
        if self.id == id {
            return Some(self);
        }
        self.clusters.iter().find_map(|c| c.find(id))
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Graph {
    /// Top to bottom (a machine's states); else left to right (the stack).
    pub top_down: bool,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub clusters: Vec<Cluster>,
}

impl Graph {
    pub fn node(&mut self, id: String, label: Vec<String>, shape: Shape) -> String {
        self.nodes.push(Node {
            id: id.clone(),
            label,
            shape,
            class: None,
        });
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<String>, dashed: bool) {
        self.edges.push(Edge {
            from: from.into(),
            to: to.into(),
            label,
            dashed,
        });
    }

    /// The cluster of this id, at any depth.
    pub fn cluster(&self, id: &str) -> Option<&Cluster> {
        self.clusters.iter().find_map(|c| c.find(id))
    }

    /// Gives node `id` the style class `class`.
    pub fn mark(&mut self, id: &str, class: &'static str) -> bool {
        match self.nodes.iter_mut().find(|n| n.id == id) {
            Some(node) => {
                node.class = Some(class);
                true
            }
            None => false,
        }
    }

    /// Whether a node sits in no cluster.
    fn is_loose(&self, id: &str) -> bool {
        !self.clusters.iter().any(|c| c.contains(id))
    }
}

/// A node id from a name: letters, digits and `_` only, so that neither
/// Mermaid nor DOT reads anything into it.
pub fn node_id(prefix: &str, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{safe}")
}

pub fn function_node(name: &str) -> String {
    node_id("fn", name)
}

pub fn machine_node(name: &str) -> String {
    node_id("sm", name)
}

pub fn role_node(name: &str) -> String {
    node_id("role", name)
}

pub fn route_node(index: usize) -> String {
    format!("route_{index}")
}

/// The REST API's cluster (its routes).
pub const API_CLUSTER: &str = "api";

/// Routes → state machines → functions, machines that start machines, and
/// each role beside what runs as it (dashed).
pub fn stack_graph(project: &Project) -> Graph {
    let mut g = Graph::default();
    if !project.routes.is_empty() {
        let mut api = Cluster {
            id: API_CLUSTER.into(),
            label: format!("REST API {}", project.api.name),
            ..Cluster::default()
        };
        for (i, route) in project.routes.iter().enumerate() {
            let mut label = vec![route.key()];
            if route.sync {
                label.push("sync".into());
            }
            api.nodes.push(g.node(route_node(i), label, Shape::Stadium));
        }
        g.clusters.push(api);
    }
    for m in project.machines.values() {
        let id = machine_node(&m.name);
        g.node(id, vec![m.name.clone(), m.kind.clone()], Shape::Subroutine);
    }
    for f in project.functions.values() {
        g.node(function_node(&f.name), vec![f.name.clone()], Shape::Rounded);
    }
    for role in project.roles().keys() {
        g.node(
            role_node(role),
            vec![format!("role {role}")],
            Shape::Hexagon,
        );
    }
    for (i, route) in project.routes.iter().enumerate() {
        let label = if route.sync { "runs" } else { "starts" };
        g.edge(
            &route_node(i),
            &machine_node(&route.state_machine),
            Some(label.into()),
            false,
        );
    }
    for m in project.machines.values() {
        for f in &m.invokes {
            g.edge(&machine_node(&m.name), &function_node(f), None, false);
        }
        for other in &m.starts {
            let to = machine_node(other);
            g.edge(&machine_node(&m.name), &to, Some("starts".into()), false);
        }
    }
    if !project.routes.is_empty() {
        g.edge(
            API_CLUSTER,
            &role_node(API_ROLE),
            Some("runs as".into()),
            true,
        );
    }
    for m in project.machines.values() {
        let role = role_node(&m.role);
        g.edge(&machine_node(&m.name), &role, Some("runs as".into()), true);
    }
    for f in project.functions.values() {
        let role = role_node(&f.role);
        g.edge(&function_node(&f.name), &role, Some("runs as".into()), true);
    }
    g
}
