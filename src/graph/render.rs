//! A `Graph` as text: Mermaid (GitHub renders it in Markdown) or Graphviz
//! DOT (`dot -Tsvg`).

use std::fmt::Write as _;

use super::{Cluster, Graph, Shape};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Mermaid,
    Dot,
}

pub fn render(graph: &Graph, format: Format) -> String {
    match format {
        Format::Mermaid => mermaid(graph),
        Format::Dot => dot(graph),
    }
}

/// The colours of what a plan does: GitHub's green, amber and red.
const CLASSES: [(&str, &str, &str); 3] = [
    ("create", "#dafbe1", "#1a7f37"),
    ("update", "#fff8c5", "#9a6700"),
    ("delete", "#ffebe9", "#cf222e"),
];

pub fn mermaid(g: &Graph) -> String {
    let mut out = format!("flowchart {}\n", if g.top_down { "TD" } else { "LR" });
    let node = |out: &mut String, id: &str, indent: &str| {
        let n = g
            .nodes
            .iter()
            .find(|n| n.id == id)
            .expect("a cluster names its nodes");
        let label = n
            .label
            .iter()
            .map(|l| mermaid_text(l))
            .collect::<Vec<_>>()
            .join("<br/>");
        let (open, close) = match n.shape {
            Shape::Box => ("[", "]"),
            Shape::Rounded => ("(", ")"),
            Shape::Stadium => ("([", "])"),
            Shape::Diamond => ("{", "}"),
            Shape::Hexagon => ("{{", "}}"),
            Shape::Circle => ("((", "))"),
            Shape::Subroutine => ("[[", "]]"),
        };
        let _ = writeln!(out, "{indent}{id}{open}\"{label}\"{close}");
    };
    fn cluster(
        out: &mut String,
        c: &Cluster,
        depth: usize,
        node: &dyn Fn(&mut String, &str, &str),
    ) {
        let indent = "  ".repeat(depth);
        let _ = writeln!(
            out,
            "{indent}subgraph {}[\"{}\"]",
            c.id,
            mermaid_text(&c.label)
        );
        for id in &c.nodes {
            node(out, id, &format!("{indent}  "));
        }
        for inner in &c.clusters {
            cluster(out, inner, depth + 1, node);
        }
        let _ = writeln!(out, "{indent}end");
    }
    for c in &g.clusters {
        cluster(&mut out, c, 1, &node);
    }
    for n in g.nodes.iter().filter(|n| g.is_loose(&n.id)) {
        node(&mut out, &n.id, "  ");
    }
    for e in &g.edges {
        let arrow = if e.dashed { "-.->" } else { "-->" };
        match &e.label {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "  {} {arrow}|\"{}\"| {}",
                    e.from,
                    mermaid_text(l),
                    e.to
                );
            }
            None => {
                let _ = writeln!(out, "  {} {arrow} {}", e.from, e.to);
            }
        }
    }
    for (class, fill, stroke) in CLASSES {
        let marked: Vec<&str> = g
            .nodes
            .iter()
            .filter(|n| n.class == Some(class))
            .map(|n| n.id.as_str())
            .collect();
        if !marked.is_empty() {
            let _ = writeln!(
                out,
                "  classDef {class} fill:{fill},stroke:{stroke},stroke-width:2px"
            );
            let _ = writeln!(out, "  class {} {class}", marked.join(","));
        }
    }
    out
}

/// Text inside a quoted Mermaid label: its entity codes for what the
/// parser or the HTML it makes would read.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '|' => out.push_str("#124;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            c => out.push(c),
        }
    }
    out
}

pub fn dot(g: &Graph) -> String {
    let mut out = String::from("digraph stepgate {\n");
    let _ = writeln!(out, "  rankdir={};", if g.top_down { "TB" } else { "LR" });
    out.push_str("  compound=true;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    let node = |out: &mut String, id: &str, indent: &str| {
        let n = g
            .nodes
            .iter()
            .find(|n| n.id == id)
            .expect("a cluster names its nodes");
        let label = n
            .label
            .iter()
            .map(|l| dot_text(l))
            .collect::<Vec<_>>()
            .join("\\n");
        let shape = match n.shape {
            Shape::Box => "shape=box",
            Shape::Rounded => "shape=box, style=\"rounded\"",
            Shape::Stadium => "shape=ellipse",
            Shape::Diamond => "shape=diamond",
            Shape::Hexagon => "shape=hexagon",
            Shape::Circle => "shape=circle",
            Shape::Subroutine => "shape=box, peripheries=2",
        };
        let mut attrs = format!("label=\"{label}\", {shape}");
        if let Some((_, fill, stroke)) = CLASSES.iter().find(|(c, ..)| Some(*c) == n.class) {
            let style = if n.shape == Shape::Rounded {
                "rounded,filled"
            } else {
                "filled"
            };
            attrs = attrs.replace(", style=\"rounded\"", "");
            let _ = write!(
                attrs,
                ", style=\"{style}\", fillcolor=\"{fill}\", color=\"{stroke}\""
            );
        }
        let _ = writeln!(out, "{indent}{id} [{attrs}];");
    };
    fn cluster(
        out: &mut String,
        c: &Cluster,
        depth: usize,
        node: &dyn Fn(&mut String, &str, &str),
    ) {
        let indent = "  ".repeat(depth);
        let _ = writeln!(out, "{indent}subgraph cluster_{} {{", c.id);
        let _ = writeln!(out, "{indent}  label=\"{}\";", dot_text(&c.label));
        for id in &c.nodes {
            node(out, id, &format!("{indent}  "));
        }
        for inner in &c.clusters {
            cluster(out, inner, depth + 1, node);
        }
        let _ = writeln!(out, "{indent}}}");
    }
    for c in &g.clusters {
        cluster(&mut out, c, 1, &node);
    }
    for n in g.nodes.iter().filter(|n| g.is_loose(&n.id)) {
        node(&mut out, &n.id, "  ");
    }
    for e in &g.edges {
        let mut attrs = Vec::new();
        // DOT joins nodes only: an edge from a cluster leaves its first node.
        let from = match g.cluster(&e.from) {
            Some(c) => {
                attrs.push(format!("ltail=cluster_{}", c.id));
                first_node(c).unwrap_or(&e.from).to_string()
            }
            None => e.from.clone(),
        };
        if let Some(l) = &e.label {
            attrs.push(format!("label=\"{}\"", dot_text(l)));
        }
        if e.dashed {
            attrs.push("style=dashed".into());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  {from} -> {}{attrs};", e.to);
    }
    out.push_str("}\n");
    out
}

fn first_node(c: &Cluster) -> Option<&str> {
    c.nodes
        .first()
        .map(String::as_str)
        .or_else(|| c.clusters.iter().find_map(first_node))
}

/// Text inside a quoted DOT string.
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cannot_break_out_of_their_quotes() {
        assert_eq!(
            mermaid_text(r#"$.a == "b" | c > 1 #x"#),
            "$.a == #quot;b#quot; #124; c #gt; 1 #35;x"
        );
        assert_eq!(dot_text(r#"a "b" \n"#), r#"a \"b\" \\n"#);
    }
}
