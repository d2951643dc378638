//! A handler under the kill switch's cancellation, subscribed to only once the handler waits.
//!
//! With a budget, a trip cancels the handlers in flight (`InFlightPolicy`). Watching for it
//! beside every handler in a `select!` cost a boxed future per task (the watch and the handler
//! moved into one allocation) and a subscription to the trip; most handlers of a fast agent
//! finish on their first poll, and a handler that has not yet waited cannot have missed a trip
//! (the trip is only seen by the handler's task when it waits). So the handler is polled first,
//! inline, and the cancellation is built and polled only after the handler's first `Pending`.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use crate::shared::Shared;

/// Runs `work` until it ends (`Some`) or the kill switch cancels it (`None`), as a biased
/// `select!` of the two would, without building the cancellation for a `work` that is ready
/// at once.
///
/// # Cancel safety
/// Dropping it drops `work` and the cancellation's subscription.
pub(crate) async fn unless_cancelled<F: Future>(work: F, shared: &Shared) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    let mut cancelled: Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = None;
    poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let cancelled = cancelled.get_or_insert_with(|| Box::pin(shared.cancelled()));
        cancelled.as_mut().poll(cx).map(|()| None)
    })
    .await
}
