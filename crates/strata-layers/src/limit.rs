//! The concurrency-limit layer: at most N calls in flight through every handle the layer
//! wraps, with optional tighter limits per method class; a call over the limit waits for a
//! permit up to a deadline, or is rejected at once, with [`StoreError::Overloaded`].
//!
//! # Defaults
//!
//! | setting | default | setter |
//! |---|---|---|
//! | calls in flight, all handles together | 32 | [`ConcurrencyLimitLayer::new`], [`with_max_in_flight`](ConcurrencyLimitLayer::with_max_in_flight) |
//! | per method class (read, idempotent, keyed, unkeyed write) | none | [`with_class_limit`](ConcurrencyLimitLayer::with_class_limit) |
//! | wait for a permit | up to 250 ms, then `Overloaded` | [`with_max_wait`](ConcurrencyLimitLayer::with_max_wait), [`reject_when_full`](ConcurrencyLimitLayer::reject_when_full) (no wait) |
//!
//! One limiter: clones of the layer share its permits, so a
//! [`LayeredFactory`](strata_core::LayeredFactory) built with it limits every session's
//! handles together (the backend's capacity is what is being protected). A call of a class
//! with its own limit takes a class permit, then a shared one; permits are granted first come,
//! first served (tokio's fair [`Semaphore`]).
//!
//! # The permit covers exactly the call
//!
//! A permit is taken when the call is first polled (never when its future is merely created)
//! and released when the inner call ends or is dropped. A call that cannot get one in time
//! fails with `Overloaded`, which is transient and proves nothing was applied: the retry layer
//! may repeat it, even for an unkeyed write. With the `metrics` feature the layer counts
//! `strata_store_limiter_waits_total` and `strata_store_limiter_rejections_total` and records
//! `strata_store_limiter_wait_duration_seconds` for calls that had to wait (see the
//! [crate docs](crate#metrics)); a call that gets a permit at once records nothing.
//!
//! # Where it goes
//!
//! `… → retry → timeout → limit → breaker → [faults] → store`: inside the timeout, so that
//! waiting for a permit counts against the attempt's deadline, and inside retry, so that a
//! retry waits for a permit again instead of holding one through its backoff.
//!
//! # Cancellation
//!
//! Dropping a call that waits for a permit leaves the queue; dropping a call that holds one
//! releases it. No state outlives the call.

#[cfg(feature = "metrics")]
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "metrics")]
use crate::metrics::{PerOperation, PolicyTable, names};
use strata_core::{Around, MethodClass, Operation, Request, Response, Serve, StoreError};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The limiter decorator and its configuration (an [`Around`], hence a
/// [`Layer`](strata_core::Layer)). Clones share one limiter.
///
/// ```
/// use std::time::Duration;
/// use strata_core::MethodClass;
/// use strata_layers::ConcurrencyLimitLayer;
///
/// let layer = ConcurrencyLimitLayer::new(16)
///     .with_class_limit(MethodClass::UnkeyedWrite, 4)
///     .with_max_wait(Duration::from_millis(50));
/// assert_eq!(layer.available_permits(), 16);
/// assert_eq!(format!("{layer:?}"), "concurrency_limit(16)");
/// ```
#[derive(Clone)]
pub struct ConcurrencyLimitLayer {
    limiter: Arc<Limiter>,
}

/// The limiter's configuration.
#[derive(Clone)]
struct Settings {
    max_in_flight: usize,
    /// Indexed by [`class_index`].
    class_limits: [Option<usize>; 4],
    max_wait: Duration,
    #[cfg(feature = "metrics")]
    store_name: Option<Cow<'static, str>>,
}

/// The permits every clone of the layer shares.
struct Limiter {
    settings: Settings,
    shared: Semaphore,
    /// Indexed by [`class_index`].
    classes: [Option<Semaphore>; 4],
    #[cfg(feature = "metrics")]
    metrics: PolicyTable<LimitMetrics>,
}

impl Limiter {
    fn new(settings: Settings) -> Self {
        Self {
            shared: Semaphore::new(settings.max_in_flight),
            classes: settings.class_limits.map(|limit| limit.map(Semaphore::new)),
            #[cfg(feature = "metrics")]
            metrics: PolicyTable::new(settings.store_name.clone()),
            settings,
        }
    }
}

fn class_index(class: MethodClass) -> usize {
    match class {
        MethodClass::Read => 0,
        MethodClass::IdempotentWrite => 1,
        MethodClass::KeyedWrite => 2,
        MethodClass::UnkeyedWrite => 3,
    }
}

/// 32 calls in flight.
impl Default for ConcurrencyLimitLayer {
    fn default() -> Self {
        Self::new(32)
    }
}

impl ConcurrencyLimitLayer {
    /// At most `max_in_flight` calls in flight (other settings at their defaults).
    ///
    /// # Panics
    ///
    /// If `max_in_flight` is 0.
    pub fn new(max_in_flight: usize) -> Self {
        assert!(max_in_flight > 0, "a concurrency limit lets at least one call through");
        Self {
            limiter: Arc::new(Limiter::new(Settings {
                max_in_flight,
                class_limits: [None; 4],
                max_wait: Duration::from_millis(250),
                #[cfg(feature = "metrics")]
                store_name: None,
            })),
        }
    }

    /// A layer with a limiter of its own, configured by `change`: configure first, then clone
    /// (clones made afterwards share the permits).
    fn configure(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.limiter.settings.clone();
        change(&mut settings);
        Self { limiter: Arc::new(Limiter::new(settings)) }
    }

    /// At most `max_in_flight` calls in flight, all handles together.
    ///
    /// # Panics
    ///
    /// If `max_in_flight` is 0.
    pub fn with_max_in_flight(self, max_in_flight: usize) -> Self {
        assert!(max_in_flight > 0, "a concurrency limit lets at least one call through");
        self.configure(|settings| settings.max_in_flight = max_in_flight)
    }

    /// At most `limit` calls of `class` in flight (within the overall limit).
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    pub fn with_class_limit(self, class: MethodClass, limit: usize) -> Self {
        assert!(limit > 0, "a class limit lets at least one call through");
        self.configure(|settings| settings.class_limits[class_index(class)] = Some(limit))
    }

    /// How long a call waits for a permit before it is rejected (default 250 ms).
    pub fn with_max_wait(self, max_wait: Duration) -> Self {
        self.configure(|settings| settings.max_wait = max_wait)
    }

    /// Rejects a call at once when no permit is free (no waiting).
    pub fn reject_when_full(self) -> Self {
        self.with_max_wait(Duration::ZERO)
    }

    /// Adds a `store` label with this static value to the layer's metrics. Returns a layer
    /// with a limiter of its own: configure first, then clone.
    #[cfg(feature = "metrics")]
    pub fn with_store_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        self.configure(|settings| settings.store_name = Some(name))
    }

    /// Permits of the overall limit free right now.
    pub fn available_permits(&self) -> usize {
        self.limiter.shared.available_permits()
    }
}

impl fmt::Debug for ConcurrencyLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "concurrency_limit({})", self.limiter.settings.max_in_flight)
    }
}

/// The permits one call holds (released on drop).
struct Permits<'a> {
    _class: Option<SemaphorePermit<'a>>,
    _shared: SemaphorePermit<'a>,
}

impl Limiter {
    /// The semaphore of `class`, when it has a limit of its own.
    fn class(&self, class: MethodClass) -> Option<&Semaphore> {
        self.classes[class_index(class)].as_ref()
    }

    /// The call's permits, when they are free right now.
    fn try_acquire(&self, class: MethodClass) -> Option<Permits<'_>> {
        let class = match self.class(class).map(Semaphore::try_acquire) {
            None => None,
            Some(Ok(permit)) => Some(permit),
            Some(Err(_)) => return None,
        };
        Some(Permits { _class: class, _shared: self.shared.try_acquire().ok()? })
    }

    /// Waits for the call's permits (class first) up to `max_wait`.
    async fn wait(
        &self,
        operation: Operation,
        class: MethodClass,
    ) -> Result<Permits<'_>, StoreError> {
        let class = self.class(class);
        let started = Instant::now();
        let deadline = started + self.settings.max_wait;
        let acquired = async {
            let class = match class {
                Some(semaphore) => Some(take(semaphore, deadline).await?),
                None => None,
            };
            Some(Permits { _class: class, _shared: take(&self.shared, deadline).await? })
        }
        .await;
        let waited = started.elapsed();
        self.record_wait(operation, waited, acquired.is_none());
        acquired.ok_or_else(|| {
            StoreError::Overloaded(format!(
                "{operation}: concurrency limit of {} calls reached (waited {waited:?})",
                self.settings.max_in_flight
            ))
        })
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn record_wait(&self, operation: Operation, waited: Duration, rejected: bool) {
        #[cfg(feature = "metrics")]
        {
            let metrics = self.metrics.get(|base| LimitMetrics {
                waits: PerOperation::new(&base),
                wait_duration: PerOperation::new(&base),
                rejections: PerOperation::new(&base),
            });
            if !self.settings.max_wait.is_zero() {
                metrics
                    .waits
                    .get(operation, |labels| metrics::counter!(names::LIMITER_WAITS, labels))
                    .increment(1);
                metrics
                    .wait_duration
                    .get(operation, |labels| {
                        metrics::histogram!(names::LIMITER_WAIT_DURATION, labels)
                    })
                    .record(waited.as_secs_f64());
            }
            if rejected {
                metrics
                    .rejections
                    .get(operation, |labels| metrics::counter!(names::LIMITER_REJECTIONS, labels))
                    .increment(1);
            }
        }
    }
}

/// A permit of `semaphore`, or `None` when `deadline` passes first.
async fn take(semaphore: &Semaphore, deadline: Instant) -> Option<SemaphorePermit<'_>> {
    match tokio::time::timeout_at(deadline, semaphore.acquire()).await {
        // The limiter never closes its semaphores.
        Ok(permit) => permit.ok(),
        Err(_elapsed) => None,
    }
}

/// The limiter's handles.
#[cfg(feature = "metrics")]
struct LimitMetrics {
    waits: PerOperation<metrics::Counter>,
    wait_duration: PerOperation<metrics::Histogram>,
    rejections: PerOperation<metrics::Counter>,
}

impl Around for ConcurrencyLimitLayer {
    async fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> Result<Response, StoreError>
    where
        S: Serve + ?Sized + 'a,
    {
        let limiter = &*self.limiter;
        let _permits = match limiter.try_acquire(request.class()) {
            Some(permits) => permits,
            // Boxed: only a call that waits pays for the (larger) waiting future.
            None => Box::pin(limiter.wait(request.operation(), request.class())).await?,
        };
        inner.serve(request).await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::Poll;

    use strata_core::{
        QueuedWorkClaimBoundary, RuntimePersistence, SessionStoreFactory, SessionStoreRequest,
        StoreBuilder,
    };
    use strata_memory::MemoryStoreFactory;

    use super::*;
    use crate::test_support::fixtures::{commit, stack, start_then_drop};
    use crate::test_support::run_conformance;

    /// Polls `first` once (it must stay pending, holding its permit), then runs `second` to
    /// its end while `first` is still in flight.
    async fn while_in_flight<A: Future, B: Future>(first: A, second: B) -> B::Output {
        let mut first = pin!(first);
        std::future::poll_fn(|cx| {
            assert!(first.as_mut().poll(cx).is_pending(), "the first call should be in flight");
            Poll::Ready(())
        })
        .await;
        second.await
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_limiter_that_does_not_wait_rejects_at_once_with_overloaded() {
        let layer = ConcurrencyLimitLayer::new(1).reject_when_full();
        let (store, faults) = stack(layer.clone());
        faults.hang_next(Operation::LoadNode, 1);
        let started = Instant::now();
        let rejected = while_in_flight(store.load_node("hangs"), store.load_node("n")).await;
        assert!(
            matches!(&rejected, Err(StoreError::Overloaded(message)) if message.contains("load_node"))
        );
        assert!(rejected.unwrap_err().proves_nothing_applied());
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(
            faults.calls(Operation::LoadNode),
            1,
            "the rejected call never reached the store"
        );
        assert_eq!(layer.available_permits(), 1, "the dropped call released its permit");
        assert_eq!(store.load_node("n").await, Ok(None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_waits_for_a_permit_up_to_the_deadline() {
        let layer = ConcurrencyLimitLayer::new(1).with_max_wait(Duration::from_millis(100));
        let (store, faults) = stack(layer);
        faults.delay_next(Operation::LoadNode, 1, Duration::from_millis(40));
        let started = Instant::now();
        let (first, waited) = tokio::join!(store.load_node("slow"), store.load_node("n"));
        assert_eq!((first, waited), (Ok(None), Ok(None)), "got the permit the first call released");
        assert_eq!(started.elapsed(), Duration::from_millis(40));

        faults.hang_next(Operation::LoadNode, 1);
        let started = Instant::now();
        let rejected = while_in_flight(store.load_node("hangs"), store.load_node("n")).await;
        assert!(matches!(rejected, Err(StoreError::Overloaded(_))));
        assert_eq!(started.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_class_limit_holds_back_its_class_only() {
        let layer = ConcurrencyLimitLayer::new(8)
            .with_class_limit(MethodClass::UnkeyedWrite, 1)
            .reject_when_full();
        let (store, faults) = stack(layer);
        faults.hang_next(Operation::CommitRuntimeState, 1);
        let blind = || commit("s", None, vec![], None);
        let idle = QueuedWorkClaimBoundary::Idle;
        let (claim, read) = while_in_flight(store.commit_runtime_state(blind()), async {
            (store.claim_ready_queued_work("s", "o", idle, 10, 1).await, store.load_node("n").await)
        })
        .await;
        assert!(matches!(claim, Err(StoreError::Overloaded(_))), "{claim:?}");
        assert_eq!(read, Ok(None));
    }

    #[tokio::test(start_paused = true)]
    async fn the_handles_of_a_layered_factory_share_one_limiter() {
        let layer = ConcurrencyLimitLayer::new(1).reject_when_full();
        let faults = strata_testkit::faults::FaultInjection::new();
        let factory = StoreBuilder::new()
            .layer(layer.clone())
            .layer(faults.clone())
            .build_factory(MemoryStoreFactory::default());
        let first = factory.create_store(SessionStoreRequest::new("a")).await.unwrap();
        let second = factory.create_store(SessionStoreRequest::new("b")).await.unwrap();
        faults.hang_next(Operation::LoadSessionMeta, 1);
        let rejected = while_in_flight(first.load_session_meta(), second.load_session_meta()).await;
        assert!(matches!(rejected, Err(StoreError::Overloaded(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_is_taken_on_first_poll_and_released_on_drop() {
        let layer = ConcurrencyLimitLayer::new(2);
        let (store, faults) = stack(layer.clone());
        let created = store.load_node("n");
        assert_eq!(layer.available_permits(), 2, "creating a call takes no permit");
        drop(created);
        faults.hang_next(Operation::LoadNode, 1);
        start_then_drop(store.load_node("n")).await;
        assert_eq!(layer.available_permits(), 2);
    }

    #[test]
    fn configuring_a_layer_gives_it_a_limiter_of_its_own() {
        let layer = ConcurrencyLimitLayer::default();
        assert_eq!(format!("{layer:?}"), "concurrency_limit(32)");
        let tuned = layer.clone().with_max_in_flight(4);
        assert_eq!((layer.available_permits(), tuned.available_permits()), (32, 4));
        assert!(Arc::ptr_eq(&layer.limiter, &layer.clone().limiter));
    }

    #[cfg(feature = "metrics")]
    #[tokio::test(start_paused = true)]
    async fn waits_and_rejections_are_recorded_and_a_free_permit_records_nothing() {
        use crate::test_support::recorder::{exclusive, snapshot};
        use metrics_util::MetricKind;
        use metrics_util::debugging::DebugValue;

        let _exclusive = exclusive().await;
        let layer = ConcurrencyLimitLayer::new(1)
            .with_max_wait(Duration::from_millis(10))
            .with_store_name("limit-metrics");
        let (store, faults) = stack(layer);
        store.load_node("n").await.unwrap();
        assert!(snapshot("limit-metrics").is_empty(), "a free permit records nothing");
        faults.hang_next(Operation::LoadNode, 1);
        while_in_flight(store.load_node("hangs"), store.load_node("n")).await.unwrap_err();

        let labels = || vec!["operation=load_node".to_owned()];
        assert_eq!(
            snapshot("limit-metrics"),
            [
                (
                    (MetricKind::Counter, names::LIMITER_REJECTIONS.to_owned(), labels()),
                    DebugValue::Counter(1)
                ),
                (
                    (MetricKind::Counter, names::LIMITER_WAITS.to_owned(), labels()),
                    DebugValue::Counter(1)
                ),
                (
                    (MetricKind::Histogram, names::LIMITER_WAIT_DURATION.to_owned(), labels()),
                    DebugValue::Histogram(vec![0.01.into()])
                ),
            ]
        );
    }

    #[tokio::test]
    async fn conformance_over_memory_and_file_stores() {
        run_conformance(ConcurrencyLimitLayer::default()).await;
    }
}
