//! Why a scenario could not be run.

use overseer_supervisor::TreeError;

/// Why a scenario could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The scenario text is malformed.
    #[error(transparent)]
    Parse(#[from] crate::ScenarioError),
    /// The supervisors rejected the tree or failed to start it.
    #[error("the tree could not start: {0}")]
    Tree(#[from] TreeError),
    /// The tokio runtime could not be built.
    #[error("could not build the tokio runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// An action did not settle within an hour of (paused) time.
    #[error("line {line}: the tree did not settle")]
    NeverSettled {
        /// The action's line.
        line: usize,
    },
}
