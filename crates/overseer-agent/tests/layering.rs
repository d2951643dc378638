//! The crate's modules form the layers listed in `src/lib.rs`: each file names only modules of
//! earlier layers, so no two import each other, directly or around a circle.

use std::path::Path;

/// The layers, bottom to top, as `src/lib.rs` lists them.
const LAYERS: &[&[&str]] = &[
    &[
        "name",
        "usage",
        "cause",
        "tasks",
        "injected_mark",
        "message",
        "lifecycle",
        "output_checks",
        "bulkheads",
        "heartbeat",
        "reply",
        "job_queue",
    ],
    &["health", "readiness", "deadlines", "ask_tally"],
    &["tree_snapshot"],
    &[
        "dead_letter",
        "retry_event",
        "retry_runtime",
        "semantic_event",
        "cohort_event",
    ],
    &["error", "model"],
    &["model_call"],
    &["event"],
    &["feedback", "semantic_watch"],
    &["shared"],
    &["settlement", "durable", "finding", "cancellation"],
    &["loop_watch"],
    &["context"],
    &["agent"],
    &["retry_plan"],
    &["spec"],
    &["slot"],
    &["retry_loop"],
    &[
        "outcome",
        "validation",
        "inspector_route",
        "schema_validation",
    ],
    &["actor"],
    &["agent_ref"],
    &[
        "inspection",
        "voting",
        "calibration",
        "delegation",
        "cohort",
    ],
    &["flagged_route"],
    &["durable_ask"],
    &["durable_cohort"],
    &["dead_letters", "escalation"],
    &["exhausted"],
    &["system/registry"],
    &["system/agent_child", "system/tree"],
    &["system"],
    &["saga"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The modules `source` names outside comments: `crate::m` and, in `system/`, `super::m`.
fn named_modules(source: &str, parent: Option<&str>) -> Vec<String> {
    let mut named = Vec::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or(code);
        for (prefix, within) in [("crate::", None), ("super::", parent)] {
            if prefix == "super::" && within.is_none() {
                continue;
            }
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                rest = &rest[at + prefix.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if name.is_empty() {
                    continue;
                }
                named.push(match within {
                    Some(parent) => format!("{parent}/{name}"),
                    None => name,
                });
            }
        }
    }
    named
}

#[test]
fn every_module_names_only_modules_of_earlier_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap() {
                files.push(inner.unwrap().path());
            }
        } else {
            files.push(path);
        }
    }
    let mut circles = Vec::new();
    for path in files {
        let relative = path.strip_prefix(&src).unwrap().with_extension("");
        let module = relative.to_string_lossy().replace('\\', "/");
        if module == "lib" {
            continue;
        }
        let layer = layer_of(&module)
            .unwrap_or_else(|| panic!("src/{module}.rs is in no layer of LAYERS (and lib.rs)"));
        let parent = module.split_once('/').map(|(parent, _)| parent);
        let source = std::fs::read_to_string(&path).unwrap();
        for named in named_modules(&source, parent) {
            // A module's own children (declared in it) lie below it.
            if named.starts_with(&format!("{module}/")) {
                continue;
            }
            let Some(named_layer) = layer_of(&named) else {
                // Not a module: an item of the crate root (the prelude's re-exports).
                continue;
            };
            if named_layer >= layer {
                circles.push(format!("{module} names {named}"));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "names against the layering: {circles:#?}"
    );
}
