//! `render_tree`: the text picture of a running tree, checked against exact snapshots.
//! Public API only, paused clock.

use std::time::Duration;

use overseer_observe::render_tree;
use overseer_supervisor::{
    ChildOpError, ChildSpec, Restart, SupervisionTree, SupervisorRef, SupervisorSpec,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};

/// A worker that starts and waits: the tests only draw it.
struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

fn worker(id: &str) -> ChildSpec {
    ChildSpec::actor(id, || (Idle, ()))
}

/// A root with a worker, a nested supervisor (one of its children stopped by hand) and a
/// dynamic supervisor whose children are added at run time.
fn nested() -> SupervisorSpec {
    let inner = SupervisorSpec::rest_for_one("inner")
        .child(worker("c"))
        .child(worker("d").restart(Restart::Transient))
        .child(worker("e").restart(Restart::Temporary));
    let pool = SupervisorSpec::dynamic("pool", worker("job").restart(Restart::Temporary));
    SupervisorSpec::one_for_one("root")
        .child(worker("a"))
        .child(ChildSpec::supervisor(inner))
        .child(ChildSpec::supervisor(pool).restart(Restart::Transient))
}

/// The supervisor `id` among the root's children.
async fn nested_supervisor(tree: &SupervisionTree, id: &str) -> SupervisorRef {
    tree.root()
        .which_children()
        .await
        .expect("the root answers")
        .into_iter()
        .find(|child| child.id.as_str() == id)
        .and_then(|child| child.supervisor())
        .expect("a running supervisor")
}

#[tokio::test(start_paused = true)]
async fn a_nested_tree_renders_depth_first_in_start_order_with_its_states() {
    let tree = SupervisionTree::start(nested()).await.unwrap();
    nested_supervisor(&tree, "inner")
        .await
        .terminate_child("d")
        .await
        .unwrap();
    let pool = nested_supervisor(&tree, "pool").await;
    pool.start_dynamic_child("job-1").await.unwrap();
    pool.start_dynamic_child("job-2").await.unwrap();

    assert_eq!(
        render_tree(tree.root()).await.unwrap(),
        "\
root (supervisor)
├── a [worker, permanent, running]
├── inner (supervisor, permanent, running)
│   ├── c [worker, permanent, running]
│   ├── d [worker, transient, not running]
│   └── e [worker, temporary, running]
└── pool (supervisor, transient, running)
    ├── job-1 [worker, temporary, running]
    └── job-2 [worker, temporary, running]
"
    );
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stopped_nested_supervisor_is_drawn_without_children() {
    let tree = SupervisionTree::start(nested()).await.unwrap();
    tree.root().terminate_child("inner").await.unwrap();

    assert_eq!(
        render_tree(tree.root()).await.unwrap(),
        "\
root (supervisor)
├── a [worker, permanent, running]
├── inner (supervisor, permanent, not running)
└── pool (supervisor, transient, running)
"
    );
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_subtree_renders_from_its_own_supervisor() {
    let tree = SupervisionTree::start(nested()).await.unwrap();
    let inner = nested_supervisor(&tree, "inner").await;

    assert_eq!(
        render_tree(&inner).await.unwrap(),
        "\
inner (supervisor)
├── c [worker, permanent, running]
├── d [worker, transient, running]
└── e [worker, temporary, running]
"
    );
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_root_without_children_has_no_name_to_show() {
    let spec = SupervisorSpec::dynamic("pool", worker("job"));
    let tree = SupervisionTree::start(spec).await.unwrap();

    assert_eq!(
        render_tree(tree.root()).await.unwrap(),
        "(supervisor, no children)\n"
    );
    tree.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn rendering_a_stopped_tree_fails_with_supervisor_not_running() {
    let tree = SupervisionTree::start(nested()).await.unwrap();
    tree.shutdown(Duration::from_secs(5)).await.unwrap();

    assert_eq!(
        render_tree(tree.root()).await,
        Err(ChildOpError::SupervisorNotRunning)
    );
}
