//! Measuring: the runtime every run gets, timing helpers, statistics, resident memory.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why a run failed. Any error converts into it, so `?` works on every system's errors.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

/// A failure with this message.
pub(crate) fn fail(message: impl fmt::Display) -> Failure {
    Failure(message.to_string())
}

/// The result of a run.
pub(crate) type Outcome<T> = Result<T, Failure>;

/// The longest any single step of a run (an answer, a restart, a stop) may take before the run
/// is declared stuck.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The same, in milliseconds, for ractor's `call_t!`.
pub(crate) const STEP_TIMEOUT_MS: u64 = 30_000;

/// Worker threads of every runtime unless `--workers` says otherwise: the machine has two
/// cores.
pub(crate) const DEFAULT_WORKER_THREADS: usize = 2;

static WORKER_THREADS: AtomicUsize = AtomicUsize::new(DEFAULT_WORKER_THREADS);

/// Worker threads of every runtime of this run.
pub(crate) fn worker_threads() -> usize {
    WORKER_THREADS.load(Ordering::Relaxed)
}

/// Sets the worker threads of every runtime of this run (at least one).
pub(crate) fn set_worker_threads(workers: usize) {
    WORKER_THREADS.store(workers.max(1), Ordering::Relaxed);
}

/// Runs `future` as a task on a fresh multi-thread tokio runtime with [`worker_threads`]
/// workers, so the driver competes for the same two workers as the actors it drives (as a
/// caller inside an application would), and nothing of an earlier run is left on the runtime.
pub(crate) fn on_fresh_runtime<T, F>(future: F) -> Outcome<T>
where
    F: Future<Output = Outcome<T>> + Send + 'static,
    T: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async { tokio::spawn(future).await });
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(outcome) => outcome,
        Err(join_error) => Err(fail(format!("the run's task failed: {join_error}"))),
    }
}

/// Awaits `future` for at most [`STEP_TIMEOUT`]; `what` names the step in the failure.
pub(crate) async fn within<T>(what: &str, future: impl IntoFuture<Output = T>) -> Outcome<T> {
    tokio::time::timeout(STEP_TIMEOUT, future.into_future())
        .await
        .map_err(|_| fail(format!("{what}: no progress within {STEP_TIMEOUT:?}")))
}

/// Polls `ready` until it returns `Some`, yielding to the runtime between polls, for at most
/// [`STEP_TIMEOUT`]. Used where a system offers no way to wait for a change but to look again.
pub(crate) async fn poll_until<T, F, Fut>(what: &str, mut ready: F) -> Outcome<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Outcome<Option<T>>>,
{
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(value) = ready().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(fail(format!("{what}: no progress within {STEP_TIMEOUT:?}")));
        }
        tokio::task::yield_now().await;
    }
}

/// Runs `op` `per_batch` times in each of `batches` batches and returns the time per operation
/// of each batch.
pub(crate) async fn per_op_batches<F, Fut>(
    batches: usize,
    per_batch: usize,
    mut op: F,
) -> Outcome<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Outcome<()>>,
{
    // One batch to warm up caches, allocator pools and the runtime's queues.
    for _ in 0..per_batch {
        op().await?;
    }
    let mut times = Vec::with_capacity(batches);
    for _ in 0..batches {
        let started = Instant::now();
        for _ in 0..per_batch {
            op().await?;
        }
        times.push(started.elapsed() / per_batch as u32);
    }
    Ok(times)
}

/// The median of `values` (the mean of the two middle ones for an even count); `NaN` if empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The `p`-quantile (0..=1) of `values` by the nearest-rank method; `NaN` if empty.
pub(crate) fn quantile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Durations as nanoseconds.
pub(crate) fn nanos(durations: &[Duration]) -> Vec<f64> {
    durations.iter().map(|d| d.as_nanos() as f64).collect()
}

/// The size of a memory page on the machines this runs on (x86_64 and aarch64 Linux with 4 KiB
/// pages); `/proc/self/statm` counts in pages.
const PAGE_SIZE: u64 = 4096;

/// The process's resident memory in bytes, from `/proc/self/statm` (its second field).
pub(crate) fn resident_bytes() -> Outcome<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| fail("/proc/self/statm has no resident field"))?
        .parse()
        .map_err(|error| fail(format!("/proc/self/statm: {error}")))?;
    Ok(pages * PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn quantile_is_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn resident_memory_is_read() {
        assert!(resident_bytes().expect("statm") > 0);
    }
}
