//! The tree lines (`sup`, `child`, `template`): a supervision tree built from their
//! indentation.

use std::collections::HashMap;

use super::error::{ScenarioError, ScenarioErrorKind};
use super::line::Line;
use super::options::{
    parse_bool, parse_name, parse_number, parse_restart, parse_shutdown, parse_worker_opts,
    set_once,
};
use super::syntax::{AutoShutdown, ChildOpts, Node, Strategy, SupNode, WorkerNode, MAX_TREE_DEPTH};

/// An open tree line on the indentation stack.
enum Frame {
    Sup {
        indent: usize,
        node: SupNode,
        /// Indentation shared by all its children, fixed by the first one.
        child_indent: Option<usize>,
    },
    Worker {
        indent: usize,
        line: usize,
    },
}

impl Frame {
    fn indent(&self) -> usize {
        match self {
            Frame::Sup { indent, .. } | Frame::Worker { indent, .. } => *indent,
        }
    }
}

/// Builds the tree iteratively from indented lines (no recursion, so no depth-driven stack use).
#[derive(Default)]
pub(super) struct TreeBuilder {
    /// Open lines, outermost first. Only the bottom frame can be the root.
    stack: Vec<Frame>,
    /// Number of `Frame::Sup` on the stack.
    sup_depth: usize,
    /// Root `sup` line number and indentation, once seen.
    root_at: Option<(usize, usize)>,
    /// The finished root.
    pub(super) root: Option<SupNode>,
    /// Every name in the tree and the line that declared it.
    names: HashMap<String, usize>,
}

impl TreeBuilder {
    pub(super) fn has_root(&self) -> bool {
        self.root_at.is_some()
    }

    pub(super) fn add_line(
        &mut self,
        keyword: &str,
        line: &Line<'_>,
        number: usize,
    ) -> Result<(), ScenarioError> {
        let at = |kind| ScenarioError { line: number, kind };
        let keyword: &'static str = match keyword {
            "sup" => "sup",
            "child" => "child",
            _ => "template",
        };

        let Some((root_line, root_indent)) = self.root_at else {
            if keyword != "sup" {
                return Err(at(ScenarioErrorKind::OutsideSupervisor { keyword }));
            }
            let node = parse_sup(line, number).map_err(at)?;
            self.register_name(&node.name, number)?;
            self.root_at = Some((number, line.indent));
            self.push_sup(line.indent, node, number)?;
            return Ok(());
        };

        if line.indent <= root_indent {
            return Err(at(match (keyword, line.args().first()) {
                ("sup", Some(name)) => ScenarioErrorKind::SecondRoot {
                    name: (*name).to_owned(),
                    root_line,
                },
                ("sup", None) => ScenarioErrorKind::MissingName { keyword },
                _ => ScenarioErrorKind::OutsideSupervisor { keyword },
            }));
        }

        // Close every line at this indentation or deeper; the root (smaller indent) stays.
        while self
            .stack
            .last()
            .is_some_and(|top| top.indent() >= line.indent)
        {
            self.close_top()?;
        }
        let (sup_name, strategy) = match self.stack.last_mut() {
            Some(Frame::Sup {
                node, child_indent, ..
            }) => {
                match *child_indent {
                    Some(expected) if expected != line.indent => {
                        return Err(at(ScenarioErrorKind::InconsistentIndent {
                            sup: node.name.clone(),
                            expected,
                            found: line.indent,
                        }));
                    }
                    _ => *child_indent = Some(line.indent),
                }
                (node.name.clone(), node.strategy)
            }
            Some(Frame::Worker {
                line: worker_line, ..
            }) => {
                return Err(at(ScenarioErrorKind::UnderWorker {
                    worker_line: *worker_line,
                }));
            }
            // Unreachable: the root is never closed here. Report it rather than panic.
            None => return Err(at(ScenarioErrorKind::OutsideSupervisor { keyword })),
        };

        let simple = strategy == Strategy::SimpleOneForOne;
        match keyword {
            "template" => {
                if !simple {
                    return Err(at(ScenarioErrorKind::TemplateOutsideSimple {
                        sup: sup_name,
                        strategy,
                    }));
                }
                let worker = parse_worker(line, "template", String::new(), number).map_err(at)?;
                if let Some(Frame::Sup { node, .. }) = self.stack.last_mut() {
                    if let Some(first) = &node.template {
                        return Err(at(ScenarioErrorKind::DuplicateTemplate {
                            sup: sup_name,
                            first_line: first.line,
                        }));
                    }
                    node.template = Some(worker);
                }
                self.stack.push(Frame::Worker {
                    indent: line.indent,
                    line: number,
                });
            }
            _ if simple => {
                return Err(at(ScenarioErrorKind::ChildUnderSimple { sup: sup_name }));
            }
            "child" => {
                let name = parse_name(line.args().first().copied(), "child").map_err(at)?;
                let worker = parse_worker(line, "child", name, number).map_err(at)?;
                self.register_name(&worker.name, number)?;
                if let Some(Frame::Sup { node, .. }) = self.stack.last_mut() {
                    node.children.push(Node::Worker(worker));
                }
                self.stack.push(Frame::Worker {
                    indent: line.indent,
                    line: number,
                });
            }
            _ => {
                let node = parse_sup(line, number).map_err(at)?;
                self.register_name(&node.name, number)?;
                self.push_sup(line.indent, node, number)?;
            }
        }
        Ok(())
    }

    fn register_name(&mut self, name: &str, number: usize) -> Result<(), ScenarioError> {
        if let Some(&first_line) = self.names.get(name) {
            return Err(ScenarioError {
                line: number,
                kind: ScenarioErrorKind::DuplicateName {
                    name: name.to_owned(),
                    first_line,
                },
            });
        }
        self.names.insert(name.to_owned(), number);
        Ok(())
    }

    fn push_sup(
        &mut self,
        indent: usize,
        node: SupNode,
        number: usize,
    ) -> Result<(), ScenarioError> {
        if self.sup_depth >= MAX_TREE_DEPTH {
            return Err(ScenarioError {
                line: number,
                kind: ScenarioErrorKind::TreeTooDeep {
                    limit: MAX_TREE_DEPTH,
                },
            });
        }
        self.sup_depth += 1;
        self.stack.push(Frame::Sup {
            indent,
            node,
            child_indent: None,
        });
        Ok(())
    }

    /// Pops the innermost open line; a finished supervisor joins its parent (or becomes the root).
    fn close_top(&mut self) -> Result<(), ScenarioError> {
        let Some(Frame::Sup { node, .. }) = self.stack.pop() else {
            return Ok(()); // a worker, or nothing
        };
        self.sup_depth = self.sup_depth.saturating_sub(1);
        if node.strategy == Strategy::SimpleOneForOne && node.template.is_none() {
            return Err(ScenarioError {
                line: node.line,
                kind: ScenarioErrorKind::MissingTemplate { sup: node.name },
            });
        }
        match self.stack.last_mut() {
            Some(Frame::Sup { node: parent, .. }) => parent.children.push(Node::Sup(node)),
            // Workers never have children on the stack, so this is the root.
            _ => self.root = Some(node),
        }
        Ok(())
    }

    pub(super) fn close_all(&mut self) -> Result<(), ScenarioError> {
        while !self.stack.is_empty() {
            self.close_top()?;
        }
        Ok(())
    }
}

/// `sup NAME [STRATEGY] [key=value]...`
fn parse_sup(line: &Line<'_>, number: usize) -> Result<SupNode, ScenarioErrorKind> {
    let args = line.args();
    let name = parse_name(args.first().copied(), "sup")?;
    let mut strategy = None;
    let mut intensity = None;
    let mut period = None;
    let mut auto_shutdown = None;
    let mut restart = None;
    let mut shutdown = None;
    let mut significant = None;
    for &token in args.get(1..).unwrap_or(&[]) {
        let Some((key, value)) = token.split_once('=') else {
            let parsed =
                Strategy::from_word(token).ok_or_else(|| ScenarioErrorKind::UnknownStrategy {
                    word: token.to_owned(),
                })?;
            set_once(&mut strategy, parsed, "strategy")?;
            continue;
        };
        match key {
            "intensity" => set_once(
                &mut intensity,
                parse_number("intensity", value)?,
                "intensity",
            )?,
            "period" => set_once(&mut period, parse_number("period", value)?, "period")?,
            "auto_shutdown" => {
                let parsed =
                    AutoShutdown::from_word(value).ok_or_else(|| ScenarioErrorKind::BadValue {
                        key: "auto_shutdown",
                        value: value.to_owned(),
                        expected: "never, any_significant or all_significant",
                    })?;
                set_once(&mut auto_shutdown, parsed, "auto_shutdown")?;
            }
            "restart" => set_once(&mut restart, parse_restart(value)?, "restart")?,
            "shutdown" => set_once(&mut shutdown, parse_shutdown(value)?, "shutdown")?,
            "significant" => set_once(
                &mut significant,
                parse_bool("significant", value)?,
                "significant",
            )?,
            _ => {
                return Err(ScenarioErrorKind::UnknownOption {
                    key: key.to_owned(),
                    keyword: "sup",
                    expected:
                        "intensity=, period=, auto_shutdown=, restart=, shutdown= or significant=",
                })
            }
        }
    }
    Ok(SupNode {
        name,
        strategy: strategy.unwrap_or_default(),
        intensity: intensity.unwrap_or(1),
        period_secs: period.unwrap_or(5),
        auto_shutdown: auto_shutdown.unwrap_or_default(),
        opts: ChildOpts {
            restart: restart.unwrap_or_default(),
            shutdown,
            significant: significant.unwrap_or(false),
        },
        children: Vec::new(),
        template: None,
        line: number,
    })
}

/// `child NAME opts...` or `template opts...` (`name` already parsed, empty for a template).
fn parse_worker(
    line: &Line<'_>,
    keyword: &'static str,
    name: String,
    number: usize,
) -> Result<WorkerNode, ScenarioErrorKind> {
    let skip = if keyword == "child" { 1 } else { 0 };
    let opts = parse_worker_opts(line.args().get(skip..).unwrap_or(&[]), keyword)?;
    Ok(WorkerNode {
        name,
        opts: ChildOpts {
            restart: opts.restart.unwrap_or_default(),
            shutdown: opts.shutdown,
            significant: opts.significant,
        },
        stubborn: opts.stubborn,
        line: number,
    })
}
