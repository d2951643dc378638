//! A bulkhead's limit is never exceeded under concurrency, on a multi-thread runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use overseer_fanout::Bulkhead;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulkheads_limit_is_never_exceeded_under_concurrency() {
    const LIMIT: usize = 3;
    const TASKS: usize = 32;
    const ROUNDS: usize = 200;
    let bulkhead = Arc::new(Bulkhead::new("tools", LIMIT).unwrap());
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (bulkhead, holding, most) = (
                Arc::clone(&bulkhead),
                Arc::clone(&holding),
                Arc::clone(&most),
            );
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let _permit = bulkhead.acquire_until(None).await.unwrap();
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    assert!(bulkhead.snapshot().in_use <= LIMIT);
                    tokio::task::yield_now().await;
                    holding.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let most = most.load(Ordering::SeqCst);
    assert!(most <= LIMIT, "{most} held permits at once, limit {LIMIT}");
    assert!(most > 1, "the calls did run concurrently");
    let snapshot = bulkhead.snapshot();
    assert_eq!((snapshot.in_use, snapshot.waiting), (0, 0));
    assert!(snapshot.waits_total > 0, "calls waited for permits");
    assert_eq!(snapshot.timeouts_total, 0);
}
