//! [`FirstWait`]: runs a call and notes when it first waited, so that a policy layer can time
//! a call without reading the clock for calls answered at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;

pin_project_lite::pin_project! {
    /// Polls `call`; the first time it returns `Pending`, stores the time in `waited_at`
    /// (which the caller keeps, so it is still there if this future is dropped).
    pub(crate) struct FirstWait<'w, F> {
        #[pin]
        call: F,
        waited_at: &'w mut Option<Instant>,
    }
}

impl<'w, F> FirstWait<'w, F> {
    pub(crate) fn new(call: F, waited_at: &'w mut Option<Instant>) -> Self {
        Self { call, waited_at }
    }
}

impl<F: Future> Future for FirstWait<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let poll = this.call.poll(cx);
        if poll.is_pending() {
            this.waited_at.get_or_insert_with(Instant::now);
        }
        poll
    }
}
