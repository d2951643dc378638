//! A one-shot text picture of a running tree, for people and for snapshot tests.

use std::fmt::Write as _;

use overseer_supervisor::{ChildInfo, ChildOpError, ChildState, ChildType, Restart, SupervisorRef};

/// Draws the tree below `root` as it is now, one line per supervisor or child, depth first in
/// start order:
///
/// ```text
/// root (supervisor)
/// ├── planner [worker, transient, running]
/// └── researchers (supervisor, permanent, running)
///     ├── searcher [worker, permanent, running]
///     └── reader [worker, permanent, not running]
/// ```
///
/// Workers are written `id [worker, restart type, state]`, supervisors
/// `id (supervisor, restart type, state)`; the state is `running`, `restarting` (a restart
/// attempt failed and a retry is queued) or `not running` (stopped, spec kept). The text holds
/// no actor ids and no times, so the same tree always renders the same way.
///
/// Each supervisor is asked with [`which_children`](SupervisorRef::which_children), one after
/// the other, so the picture is a walk, not an atomic snapshot: a nested supervisor that exits
/// while the tree is read is written `exited while being read`. The root's name is read from
/// its children's paths; a root without children is written `(supervisor, no children)`.
///
/// Fails with the root's [`ChildOpError`] when the root is not running or does not answer in
/// time, or with a nested supervisor's [`Timeout`](ChildOpError::Timeout).
///
/// ```
/// use overseer_observe::render_tree;
/// use overseer_supervisor::{ChildSpec, SupervisionTree, SupervisorSpec};
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
/// use std::time::Duration;
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = ();
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let inner = SupervisorSpec::one_for_all("inner").child(ChildSpec::actor("b", || (Worker, ())));
/// let spec = SupervisorSpec::one_for_one("root")
///     .child(ChildSpec::actor("a", || (Worker, ())))
///     .child(ChildSpec::supervisor(inner));
/// let tree = SupervisionTree::start(spec).await?;
/// assert_eq!(
///     render_tree(tree.root()).await?,
///     "root (supervisor)\n\
///      ├── a [worker, permanent, running]\n\
///      └── inner (supervisor, permanent, running)\n    \
///          └── b [worker, permanent, running]\n"
/// );
/// tree.shutdown(Duration::from_secs(5)).await?;
/// # Ok(())
/// # }
/// ```
pub async fn render_tree(root: &SupervisorRef) -> Result<String, ChildOpError> {
    let children = root.which_children().await?;
    let root_line = match children.first().and_then(|child| child.path.parent()) {
        Some(parent) => format!("{} (supervisor)", parent.name()),
        None => "(supervisor, no children)".to_string(),
    };
    let mut lines = vec![Line {
        depth: 0,
        text: root_line,
    }];
    // Depth first in start order: the next child to draw is on top.
    let mut pending: Vec<(usize, ChildInfo)> =
        children.into_iter().rev().map(|child| (1, child)).collect();
    while let Some((depth, child)) = pending.pop() {
        let mut state = state_name(child.state);
        let mut grandchildren = Vec::new();
        if let Some(supervisor) = child.supervisor() {
            match supervisor.which_children().await {
                Ok(found) => grandchildren = found,
                Err(ChildOpError::SupervisorNotRunning) => state = "exited while being read",
                Err(error) => return Err(error),
            }
        }
        lines.push(Line {
            depth,
            text: describe(&child, state),
        });
        pending.extend(
            grandchildren
                .into_iter()
                .rev()
                .map(|grandchild| (depth + 1, grandchild)),
        );
    }
    Ok(draw(&lines))
}

/// One line of the picture before its guides are drawn: how deep it sits and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// 0 for the root, 1 for its children, and so on.
    depth: usize,
    text: String,
}

fn state_name(state: ChildState) -> &'static str {
    match state {
        ChildState::Running => "running",
        ChildState::Restarting => "restarting",
        ChildState::NotRunning => "not running",
    }
}

fn restart_name(restart: Restart) -> &'static str {
    match restart {
        Restart::Permanent => "permanent",
        Restart::Transient => "transient",
        Restart::Temporary => "temporary",
    }
}

fn describe(child: &ChildInfo, state: &str) -> String {
    let restart = restart_name(child.restart);
    match child.child_type {
        ChildType::Worker => format!("{} [worker, {restart}, {state}]", child.id),
        ChildType::Supervisor => format!("{} (supervisor, {restart}, {state})", child.id),
    }
}

/// Draws the guides for lines listed depth first (each line's children right after it, a
/// child exactly one level deeper than its parent).
fn draw(lines: &[Line]) -> String {
    let is_last = last_among_siblings(lines);
    // For each level above the current line: whether that ancestor was the last of its
    // siblings (then nothing continues below it).
    let mut ancestors_last: Vec<bool> = Vec::new();
    let mut out = String::new();
    for (line, last) in lines.iter().zip(is_last) {
        ancestors_last.truncate(line.depth);
        if line.depth > 0 {
            // The root draws no guide; each level between it and this line draws one.
            for &ancestor_last in ancestors_last.iter().skip(1) {
                out.push_str(if ancestor_last { "    " } else { "│   " });
            }
            out.push_str(if last { "└── " } else { "├── " });
        }
        ancestors_last.push(last);
        let _ = writeln!(out, "{}", line.text);
    }
    out
}

/// For each line, whether no later sibling follows it, found in one pass from the end: a
/// sibling of a line at depth `d` is a later line at depth `d` reached before any line at a
/// smaller depth.
fn last_among_siblings(lines: &[Line]) -> Vec<bool> {
    let mut sibling_follows: Vec<bool> = Vec::new();
    let mut is_last = vec![false; lines.len()];
    for (index, line) in lines.iter().enumerate().rev() {
        sibling_follows.resize(sibling_follows.len().max(line.depth + 1), false);
        is_last[index] = !sibling_follows[line.depth];
        sibling_follows[line.depth] = true;
        // Lines deeper than this one, seen so far, belong to it or to its later siblings.
        for deeper in &mut sibling_follows[line.depth + 1..] {
            *deeper = false;
        }
    }
    is_last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(outline: &[(usize, &str)]) -> Vec<Line> {
        outline
            .iter()
            .map(|&(depth, text)| Line {
                depth,
                text: text.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_root_alone_is_one_line_without_guides() {
        assert_eq!(draw(&lines(&[(0, "root")])), "root\n");
    }

    #[test]
    fn the_last_sibling_closes_its_branch_and_earlier_ones_continue_it() {
        let drawn = draw(&lines(&[
            (0, "root"),
            (1, "a"),
            (2, "a1"),
            (3, "a1x"),
            (2, "a2"),
            (1, "b"),
            (2, "b1"),
            (3, "b1x"),
            (3, "b1y"),
        ]));
        assert_eq!(
            drawn,
            "root\n\
             ├── a\n\
             │   ├── a1\n\
             │   │   └── a1x\n\
             │   └── a2\n\
             └── b\n    \
                 └── b1\n        \
                     ├── b1x\n        \
                     └── b1y\n"
        );
    }

    #[test]
    fn a_sibling_after_a_deep_subtree_is_still_found() {
        let outline = lines(&[(0, "r"), (1, "a"), (2, "a1"), (3, "a1x"), (1, "b")]);
        assert_eq!(
            last_among_siblings(&outline),
            [true, false, true, true, true]
        );
    }
}
