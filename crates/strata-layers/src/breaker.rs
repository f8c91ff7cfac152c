//! The circuit-breaker layer: after the store has failed repeatedly, fails calls at once with
//! [`StoreError::CircuitOpen`] instead of sending them on, then lets a few probes through
//! after a cool-down and closes again when one succeeds.
//!
//! # States
//!
//! - **Closed** (the start): calls go through; their outcomes are recorded. The breaker
//!   **opens** when a call fails and either the last `consecutive` calls all failed, or at
//!   least `min_calls` of the last `window` calls were recorded and at least `rate` of them
//!   failed.
//! - **Open**: every call fails at once with `CircuitOpen { operation, retry_after }`,
//!   `retry_after` being the time left until the cool-down ends.
//! - **Half-open**: the first call after the cool-down moves the breaker here and is a probe.
//!   At most `probes` calls are in flight as probes; other calls fail with `CircuitOpen` and a
//!   zero `retry_after` (a probe is under way). A probe that succeeds **closes** the breaker
//!   (its window starts empty); one that fails **opens** it for another cool-down.
//!
//! | setting | default | setter |
//! |---|---|---|
//! | consecutive failures that open it | 5 | [`with_consecutive_failures`](CircuitBreakerLayer::with_consecutive_failures) |
//! | failure rate that opens it, over the last `window` calls, once `min_calls` were seen | 50 % of the last 20, at least 10 | [`with_failure_rate`](CircuitBreakerLayer::with_failure_rate) |
//! | cool-down before the first probe | 1 s | [`with_cool_down`](CircuitBreakerLayer::with_cool_down) |
//! | probes in flight when half-open | 1 | [`with_half_open_probes`](CircuitBreakerLayer::with_half_open_probes) |
//! | wait after which a dropped call is a failure | 500 ms | [`with_hang_threshold`](CircuitBreakerLayer::with_hang_threshold) |
//!
//! The window counts calls, not seconds (the last `window` calls however old, as
//! resilience4j's count-based window): a call that is answered costs no clock read, and
//! while the breaker is closed with a window full of successes, a call is let through and its
//! success recorded without taking the breaker's lock. The cool-down is timed on tokio's
//! clock (tests run it on a paused clock).
//!
//! # What counts as a failure
//!
//! [`is_failure`]: a transient error (unavailable, not applied, timeout, overloaded) or an
//! unclassified `Backend` error: signs that the store is unwell. Not failures, and recorded
//! as successes (the store answered): the four semantic outcomes, invalid input, corrupt data
//! (a property of one record, not of the store's health), `Unsupported`, `Locked`.
//!
//! A call dropped before it ended is a failure when it had been waiting for at least the
//! hang threshold (default 500 ms, [`with_hang_threshold`](CircuitBreakerLayer::with_hang_threshold)),
//! and is not recorded otherwise. In the recommended order the timeout layer sits outside the
//! breaker and drops an attempt at its deadline, so a store that hangs instead of failing
//! trips the breaker too; a caller that gives up on a quick call does not.
//!
//! Each call through the layer counts once; in the recommended order the breaker sits inside
//! retry, so each attempt is a call (each is a fresh look at the store's health).
//!
//! # Observing it
//!
//! [`state`](CircuitBreakerLayer::state) tells the current state;
//! [`with_on_transition`](CircuitBreakerLayer::with_on_transition) runs a hook on every
//! transition. With the `metrics` feature the layer sets `strata_store_circuit_state` (0
//! closed, 1 open, 2 half-open) and counts `strata_store_circuit_transitions_total` by the
//! `state` entered and `strata_store_circuit_rejections_total` by operation (see the
//! [crate docs](crate#metrics)).
//!
//! One breaker: clones of the layer share it, so a
//! [`LayeredFactory`](strata_core::LayeredFactory) built with it trips for every session's
//! handles together (they share one backend).
//!
//! # Where it goes
//!
//! `… → retry → timeout → limit → breaker → [faults] → store`: inside retry, which does not
//! repeat `CircuitOpen` (it returns it at once), and inside the limiter, so that the
//! limiter's own rejections (`Overloaded`) are not taken for the store's failures.
//!
//! # Cancellation
//!
//! A dropped call is recorded as above (a failure after the hang threshold, else nothing); a
//! dropped probe frees its probe slot, so the next call may probe.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[cfg(feature = "metrics")]
use std::borrow::Cow;

use strata_core::{Around, Operation, Request, Response, Serve, StoreError};
use tokio::time::Instant;

use crate::first_wait::FirstWait;
#[cfg(feature = "metrics")]
use crate::metrics::{PerOperation, PolicyTable, names};

/// True when `error` counts against the store's health (see the [module docs](self)).
pub fn is_failure(error: &StoreError) -> bool {
    error.is_retryable() || matches!(error, StoreError::Backend(_))
}

/// The breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls fail at once until the cool-down ends.
    Open,
    /// A bounded number of probe calls go through.
    HalfOpen,
}

impl CircuitState {
    /// The state's name (`closed`, `open`, `half_open`): the `state` metric label.
    pub const fn label(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// The value of the state gauge, and the low bits of the breaker's packed state.
    const fn code(self) -> u64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }

    const fn from_code(code: u64) -> Self {
        match code & STATE_BITS {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }
}

/// One state change, as the [`with_on_transition`](CircuitBreakerLayer::with_on_transition)
/// hook sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircuitTransition {
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
}

type TransitionHook = Arc<dyn Fn(&CircuitTransition) + Send + Sync>;

/// The breaker's configuration.
#[derive(Clone)]
struct Settings {
    consecutive_failures: u32,
    failure_rate: f64,
    window: usize,
    min_calls: usize,
    cool_down: Duration,
    half_open_probes: u32,
    hang_threshold: Duration,
    on_transition: Option<TransitionHook>,
    #[cfg(feature = "metrics")]
    store_name: Option<Cow<'static, str>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: 20,
            min_calls: 10,
            cool_down: Duration::from_secs(1),
            half_open_probes: 1,
            hang_threshold: Duration::from_millis(500),
            on_transition: None,
            #[cfg(feature = "metrics")]
            store_name: None,
        }
    }
}

/// The circuit-breaker decorator and its configuration (an [`Around`], hence a
/// [`Layer`](strata_core::Layer)). Clones share one breaker.
///
/// ```
/// use std::time::Duration;
/// use strata_layers::{CircuitBreakerLayer, CircuitState};
///
/// let layer = CircuitBreakerLayer::default()
///     .with_consecutive_failures(3)
///     .with_failure_rate(0.25, 100, 20)
///     .with_cool_down(Duration::from_millis(500))
///     .with_on_transition(|change| eprintln!("breaker {:?} → {:?}", change.from, change.to));
/// assert_eq!(layer.state(), CircuitState::Closed);
/// assert_eq!(format!("{layer:?}"), "circuit_breaker");
/// ```
#[derive(Clone, Default)]
pub struct CircuitBreakerLayer {
    breaker: Arc<Breaker>,
}

impl CircuitBreakerLayer {
    /// The default configuration (see the module docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// A layer with a breaker of its own, configured by `change`: configure first, then clone
    /// (clones made afterwards share the breaker).
    fn configure(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.breaker.settings.clone();
        change(&mut settings);
        Self { breaker: Arc::new(Breaker::new(settings)) }
    }

    /// Opens after `failures` consecutive failed calls (default 5).
    ///
    /// # Panics
    ///
    /// If `failures` is 0.
    pub fn with_consecutive_failures(self, failures: u32) -> Self {
        assert!(failures > 0, "the breaker opens after at least one failure");
        self.configure(|settings| settings.consecutive_failures = failures)
    }

    /// Opens when at least `rate` of the last `window` calls failed, once at least
    /// `min_calls` of them were recorded (default 0.5 of 20, at least 10).
    ///
    /// # Panics
    ///
    /// If `rate` is not within (0, 1], `window` is 0, or `min_calls` is 0 or above `window`.
    pub fn with_failure_rate(self, rate: f64, window: usize, min_calls: usize) -> Self {
        assert!(rate > 0.0 && rate <= 1.0, "a failure rate is within (0, 1], not {rate}");
        assert!(
            (1..=window).contains(&min_calls),
            "min_calls ({min_calls}) must be within 1 and the window ({window})"
        );
        self.configure(|settings| {
            settings.failure_rate = rate;
            settings.window = window;
            settings.min_calls = min_calls;
        })
    }

    /// How long the breaker stays open before it lets a probe through (default 1 s).
    pub fn with_cool_down(self, cool_down: Duration) -> Self {
        self.configure(|settings| settings.cool_down = cool_down)
    }

    /// How many probe calls may be in flight while half-open (default 1).
    ///
    /// # Panics
    ///
    /// If `probes` is 0.
    pub fn with_half_open_probes(self, probes: u32) -> Self {
        assert!(probes > 0, "a half-open breaker lets at least one probe through");
        self.configure(|settings| settings.half_open_probes = probes)
    }

    /// A call dropped after it waited at least `threshold` counts as a failure (default
    /// 500 ms: below the timeout layer's shortest default deadline, 1 s, less the limiter's
    /// longest default wait for a permit, 250 ms, so that every attempt the timeout drops
    /// counts); `Duration::MAX` never counts one.
    pub fn with_hang_threshold(self, threshold: Duration) -> Self {
        self.configure(|settings| settings.hang_threshold = threshold)
    }

    /// Runs `hook` after every state change (outside the breaker's lock).
    pub fn with_on_transition(
        self,
        hook: impl Fn(&CircuitTransition) + Send + Sync + 'static,
    ) -> Self {
        self.configure(|settings| settings.on_transition = Some(Arc::new(hook)))
    }

    /// Adds a `store` label with this static value to the layer's metrics. Returns a layer
    /// with a breaker of its own: configure first, then clone.
    #[cfg(feature = "metrics")]
    pub fn with_store_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        self.configure(|settings| settings.store_name = Some(name))
    }

    /// The current state. An open breaker whose cool-down has ended still reports `Open`
    /// until the next call half-opens it.
    pub fn state(&self) -> CircuitState {
        CircuitState::from_code(self.breaker.packed.load(Ordering::Acquire))
    }
}

impl fmt::Debug for CircuitBreakerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circuit_breaker")
    }
}

/// Set in [`Breaker::packed`] while the breaker is closed with a full window of successes and
/// no failure since: recording one more success would change nothing, so a successful call
/// takes no lock.
const CLEAN: u64 = 0b100;

/// The state's bits in [`Breaker::packed`].
const STATE_BITS: u64 = 0b11;

/// Where the generation starts in [`Breaker::packed`].
const GENERATION_SHIFT: u32 = 3;

/// The breaker every clone of the layer shares.
struct Breaker {
    settings: Settings,
    /// The state (low two bits, [`CircuitState::code`]), the [`CLEAN`] bit and the
    /// generation (the rest, from [`GENERATION_SHIFT`]): what a call reads to be let through,
    /// and a success to be recorded, without taking the lock.
    packed: AtomicU64,
    machine: Mutex<Machine>,
    #[cfg(feature = "metrics")]
    metrics: PolicyTable<BreakerMetrics>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new(Settings::default())
    }
}

/// The state machine, under the breaker's lock.
struct Machine {
    phase: Phase,
    /// Increases with every transition, so that a call admitted before one does not count
    /// after it.
    generation: u64,
    consecutive_failures: u32,
    window: Window,
}

enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probes: u32 },
}

impl Phase {
    fn state(&self) -> CircuitState {
        match self {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

/// The outcomes (`true`: failure) of the last calls recorded, in a ring.
struct Window {
    failed: Box<[bool]>,
    next: usize,
    len: usize,
    failures: usize,
}

impl Window {
    fn new(size: usize) -> Self {
        Self { failed: vec![false; size].into_boxed_slice(), next: 0, len: 0, failures: 0 }
    }

    fn record(&mut self, failed: bool) {
        if self.len == self.failed.len() {
            self.failures -= usize::from(self.failed[self.next]);
        } else {
            self.len += 1;
        }
        self.failed[self.next] = failed;
        self.failures += usize::from(failed);
        self.next = (self.next + 1) % self.failed.len();
    }

    fn is_full_of_successes(&self) -> bool {
        self.len == self.failed.len() && self.failures == 0
    }

    fn clear(&mut self) {
        *self = Self::new(self.failed.len());
    }

    /// True when at least `min_calls` were recorded and at least `rate` of them failed.
    fn over(&self, rate: f64, min_calls: usize) -> bool {
        self.len >= min_calls && self.failures as f64 >= rate * self.len as f64
    }
}

/// How a call was let through.
#[derive(Clone, Copy)]
enum Ticket {
    /// While closed, in this generation.
    Closed(u64),
    /// As a half-open probe, in this generation.
    Probe(u64),
}

impl Breaker {
    fn new(settings: Settings) -> Self {
        Self {
            packed: AtomicU64::new(CircuitState::Closed.code()),
            machine: Mutex::new(Machine {
                phase: Phase::Closed,
                generation: 0,
                consecutive_failures: 0,
                window: Window::new(settings.window),
            }),
            #[cfg(feature = "metrics")]
            metrics: PolicyTable::new(settings.store_name.clone()),
            settings,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // Every update of the machine completes before the lock is released (nothing in it
        // panics), so a poisoned lock still holds a consistent state.
        self.machine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets the call through, or says why not.
    fn admit(&self, operation: Operation) -> Result<Ticket, StoreError> {
        #[cfg(feature = "metrics")]
        self.metrics();
        let packed = self.packed.load(Ordering::Acquire);
        if CircuitState::from_code(packed) == CircuitState::Closed {
            return Ok(Ticket::Closed(packed >> GENERATION_SHIFT));
        }
        let mut machine = self.lock();
        let (admitted, transition) = match machine.phase {
            Phase::Closed => (Ok(Ticket::Closed(machine.generation)), None),
            Phase::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    let transition = self.enter(&mut machine, Phase::HalfOpen { probes: 1 });
                    (Ok(Ticket::Probe(machine.generation)), Some(transition))
                } else {
                    (Err(until - now), None)
                }
            }
            Phase::HalfOpen { ref mut probes } if *probes < self.settings.half_open_probes => {
                *probes += 1;
                (Ok(Ticket::Probe(machine.generation)), None)
            }
            Phase::HalfOpen { .. } => (Err(Duration::ZERO), None),
        };
        drop(machine);
        self.announce(transition);
        admitted.map_err(|retry_after| {
            self.rejected(operation);
            StoreError::CircuitOpen { operation: operation.name(), retry_after }
        })
    }

    /// Records how an admitted call ended: `Some(failed)`, or `None` when it was dropped.
    fn finish(&self, ticket: Ticket, failed: Option<bool>) {
        if let (Ticket::Closed(generation), Some(false)) = (ticket, failed) {
            let packed = self.packed.load(Ordering::Acquire);
            if packed & CLEAN != 0 && packed >> GENERATION_SHIFT == generation {
                return;
            }
        }
        let mut machine = self.lock();
        let transition = match ticket {
            Ticket::Closed(generation) if generation == machine.generation => {
                let Some(failed) = failed else { return };
                machine.window.record(failed);
                if !failed {
                    machine.consecutive_failures = 0;
                    self.publish(&machine);
                    return;
                }
                machine.consecutive_failures += 1;
                let settings = &self.settings;
                let trips = machine.consecutive_failures >= settings.consecutive_failures
                    || machine.window.over(settings.failure_rate, settings.min_calls);
                if !trips {
                    self.publish(&machine);
                    return;
                }
                self.open(&mut machine)
            }
            Ticket::Probe(generation) if generation == machine.generation => {
                if let Phase::HalfOpen { probes } = &mut machine.phase {
                    *probes -= 1;
                }
                match failed {
                    None => return,
                    Some(true) => self.open(&mut machine),
                    Some(false) => {
                        machine.consecutive_failures = 0;
                        machine.window.clear();
                        self.enter(&mut machine, Phase::Closed)
                    }
                }
            }
            // Admitted before a transition: its outcome says nothing about the new state.
            Ticket::Closed(_) | Ticket::Probe(_) => return,
        };
        drop(machine);
        self.announce(Some(transition));
    }

    fn open(&self, machine: &mut Machine) -> CircuitTransition {
        let until = Instant::now() + self.settings.cool_down;
        self.enter(machine, Phase::Open { until })
    }

    /// Moves the machine to `phase` (a new generation) and publishes the new state.
    fn enter(&self, machine: &mut Machine, phase: Phase) -> CircuitTransition {
        let from = machine.phase.state();
        machine.phase = phase;
        machine.generation += 1;
        self.publish(machine);
        CircuitTransition { from, to: machine.phase.state() }
    }

    /// Publishes the machine's state, generation and cleanness in [`Breaker::packed`].
    fn publish(&self, machine: &Machine) {
        let clean = matches!(machine.phase, Phase::Closed)
            && machine.consecutive_failures == 0
            && machine.window.is_full_of_successes();
        let packed = machine.generation << GENERATION_SHIFT
            | if clean { CLEAN } else { 0 }
            | machine.phase.state().code();
        self.packed.store(packed, Ordering::Release);
    }

    /// Tells the metrics and the hook about a transition (called without the lock held).
    fn announce(&self, transition: Option<CircuitTransition>) {
        let Some(transition) = transition else { return };
        #[cfg(feature = "metrics")]
        {
            let metrics = self.metrics();
            metrics.state.set(transition.to.code() as f64);
            metrics.transitions[transition.to.code() as usize]
                .get_or_init(|| {
                    let mut labels = metrics.base.clone();
                    labels.push(metrics::Label::from_static_parts("state", transition.to.label()));
                    metrics::counter!(names::CIRCUIT_TRANSITIONS, labels)
                })
                .increment(1);
        }
        if let Some(hook) = &self.settings.on_transition {
            hook(&transition);
        }
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn rejected(&self, operation: Operation) {
        #[cfg(feature = "metrics")]
        self.metrics()
            .rejections
            .get(operation, |labels| metrics::counter!(names::CIRCUIT_REJECTIONS, labels))
            .increment(1);
    }

    #[cfg(feature = "metrics")]
    fn metrics(&self) -> &BreakerMetrics {
        self.metrics.get(|base| {
            let state = metrics::gauge!(names::CIRCUIT_STATE, base.clone());
            state.set(CircuitState::from_code(self.packed.load(Ordering::Acquire)).code() as f64);
            BreakerMetrics {
                state,
                transitions: Default::default(),
                rejections: PerOperation::new(&base),
                base,
            }
        })
    }
}

/// The breaker's handles.
#[cfg(feature = "metrics")]
struct BreakerMetrics {
    state: metrics::Gauge,
    /// The labels of every series (the optional store name).
    base: Vec<metrics::Label>,
    /// Indexed by [`CircuitState::code`] of the state entered; built on first use.
    transitions: [std::sync::OnceLock<metrics::Counter>; 3],
    rejections: PerOperation<metrics::Counter>,
}

/// Reports an admitted call's end to the breaker, also when the call is dropped.
struct Admitted<'a> {
    breaker: &'a Breaker,
    ticket: Ticket,
    /// When the call first waited (set by [`FirstWait`]).
    waited_at: Option<Instant>,
    finished: bool,
}

impl Admitted<'_> {
    fn finish(mut self, result: &Result<Response, StoreError>) {
        self.finished = true;
        let failed = matches!(result, Err(error) if is_failure(error));
        self.breaker.finish(self.ticket, Some(failed));
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let threshold = self.breaker.settings.hang_threshold;
            let hung = self.waited_at.is_some_and(|waited_at| waited_at.elapsed() >= threshold);
            self.breaker.finish(self.ticket, hung.then_some(true));
        }
    }
}

impl Around for CircuitBreakerLayer {
    fn around<'a, S>(
        &'a self,
        inner: &'a S,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Response, StoreError>> + Send + 'a
    where
        S: Serve + ?Sized + 'a,
    {
        let breaker = &*self.breaker;
        async move {
            let ticket = breaker.admit(request.operation())?;
            let mut admitted = Admitted { breaker, ticket, waited_at: None, finished: false };
            let result = FirstWait::new(inner.serve(request), &mut admitted.waited_at).await;
            admitted.finish(&result);
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use strata_core::{RuntimePersistence, StoreBuilder};

    use super::*;
    use crate::test_support::fixtures::{commit, stack, start_then_drop};
    use crate::test_support::run_conformance;

    fn unavailable() -> StoreError {
        StoreError::Unavailable("injected".into())
    }

    /// The transitions a layer went through, as `(from, to)`.
    type Transitions = Arc<StdMutex<Vec<(CircuitState, CircuitState)>>>;

    /// A layer recording its transitions.
    fn recording(layer: CircuitBreakerLayer) -> (CircuitBreakerLayer, Transitions) {
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let record = seen.clone();
        let layer = layer.with_on_transition(move |change| {
            record.lock().unwrap().push((change.from, change.to))
        });
        (layer, seen)
    }

    use CircuitState::{Closed, HalfOpen, Open};

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_it_and_a_successful_probe_closes_it() {
        let (layer, transitions) =
            recording(CircuitBreakerLayer::default().with_consecutive_failures(3));
        let (store, faults) = stack(layer.clone());
        faults.fail_next(Operation::LoadNode, 3, unavailable());
        for _ in 0..3 {
            assert_eq!(store.load_node("n").await, Err(unavailable()));
        }
        assert_eq!(layer.state(), Open);
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(
            store.load_session_meta().await,
            Err(StoreError::CircuitOpen {
                operation: "load_session_meta",
                retry_after: Duration::from_millis(600)
            })
        );
        assert_eq!(faults.total_calls(), 3, "an open breaker sends nothing on");

        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(layer.state(), Open, "half-opens on the next call");
        assert_eq!(store.load_node("n").await, Ok(None));
        assert_eq!(layer.state(), Closed);
        assert_eq!(
            *transitions.lock().unwrap(),
            [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_for_another_cool_down() {
        let (layer, transitions) =
            recording(CircuitBreakerLayer::default().with_consecutive_failures(1));
        let (store, faults) = stack(layer.clone());
        faults.fail_next(Operation::Vacuum, 2, unavailable());
        store.vacuum().await.unwrap_err();
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(store.vacuum().await, Err(unavailable()), "the probe failed");
        assert!(
            matches!(store.vacuum().await, Err(StoreError::CircuitOpen { retry_after, .. }) if retry_after == Duration::from_secs(1))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        store.vacuum().await.unwrap();
        assert_eq!(
            *transitions.lock().unwrap(),
            [
                (Closed, Open),
                (Open, HalfOpen),
                (HalfOpen, Open),
                (Open, HalfOpen),
                (HalfOpen, Closed)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_rate_over_the_window_opens_it() {
        let layer = CircuitBreakerLayer::default()
            .with_consecutive_failures(100)
            .with_failure_rate(0.5, 10, 10);
        let (store, faults) = stack(layer.clone());
        let fail = || Some(Fault::FailBefore(unavailable()));
        // Failures alternate with successes: never two in a row, half of the window.
        faults.script(Operation::LoadNode, (0..5).flat_map(|_| [None, fail()]));
        for call in 1..=10 {
            let _ = store.load_node("n").await;
            assert_eq!(layer.state() == Open, call == 10, "after call {call}");
        }
    }

    use strata_testkit::faults::Fault;

    #[tokio::test(start_paused = true)]
    async fn answers_and_invalid_input_are_not_failures_and_a_success_resets_the_count() {
        let layer = CircuitBreakerLayer::default().with_consecutive_failures(2);
        let (store, faults) = stack(layer.clone());
        for _ in 0..10 {
            let conflict = store.commit_runtime_state(commit("s", Some(9), vec![], None)).await;
            assert!(matches!(conflict, Err(StoreError::HeadRevisionConflict { .. })));
        }
        faults.fail_next(Operation::LoadNode, 1, StoreError::InvalidInput("bad id".into()));
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        faults.fail_next(
            Operation::LoadNode,
            1,
            StoreError::CorruptData { location: "f:1".into(), detail: "crc".into() },
        );
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        for _ in 0..4 {
            store.load_node("n").await.unwrap_err();
        }
        assert_eq!(layer.state(), Closed);
        assert!(
            is_failure(&StoreError::Backend("?".into()))
                && !is_failure(&StoreError::Unsupported("x"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_through_a_bounded_number_of_probes() {
        let layer =
            CircuitBreakerLayer::default().with_consecutive_failures(1).with_half_open_probes(2);
        let (store, faults) = stack(layer.clone());
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        store.load_node("n").await.unwrap_err();
        tokio::time::advance(Duration::from_secs(1)).await;
        faults.hang_next(Operation::LoadNode, 2);
        let mut first = Box::pin(store.load_node("probe 1"));
        let mut second = Box::pin(store.load_node("probe 2"));
        std::future::poll_fn(|cx| {
            assert!(first.as_mut().poll(cx).is_pending() && second.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        assert_eq!(layer.state(), HalfOpen);
        assert_eq!(
            store.load_node("n").await,
            Err(StoreError::CircuitOpen { operation: "load_node", retry_after: Duration::ZERO })
        );
        drop(first);
        assert_eq!(store.load_node("n").await, Ok(None), "a dropped probe frees its slot");
        assert_eq!(layer.state(), Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_dropped_after_the_hang_threshold_is_a_failure() {
        let breaker = CircuitBreakerLayer::default().with_consecutive_failures(2);
        let faults = strata_testkit::faults::FaultInjection::new();
        let store = StoreBuilder::new()
            .layer(crate::TimeoutLayer::default())
            .layer(breaker.clone())
            .layer(faults.clone())
            .build(strata_memory::MemoryStore::new());
        faults.hang_next(Operation::LoadNode, 3);
        start_then_drop(store.load_node("dropped at once")).await;
        assert_eq!(breaker.state(), Closed, "a quick drop is not recorded");
        for _ in 0..2 {
            assert!(matches!(store.load_node("n").await, Err(StoreError::Timeout { .. })));
        }
        assert_eq!(breaker.state(), Open, "two hung attempts, timed out at 1 s");
    }

    #[tokio::test(start_paused = true)]
    async fn successes_recorded_without_the_lock_keep_the_failure_rate_exact() {
        // A window of 4 full of successes is "clean" (successes skip the lock); a failure
        // makes it unclean, so the successes after it are recorded again.
        let layer = CircuitBreakerLayer::default()
            .with_consecutive_failures(100)
            .with_failure_rate(0.5, 4, 4);
        let (store, faults) = stack(layer.clone());
        for _ in 0..10 {
            store.load_node("n").await.unwrap();
        }
        let fail = || Some(Fault::FailBefore(unavailable()));
        // One failure in every four calls: never half of the window, as long as the
        // successes between failures are recorded.
        faults.script(Operation::LoadNode, (0..3).flat_map(|_| [fail(), None, None, None]));
        for call in 0..12 {
            let _ = store.load_node("n").await;
            assert_eq!(layer.state(), Closed, "call {call}");
        }
        // Two failures in four calls open it.
        faults.script(Operation::LoadNode, [fail(), None, fail()]);
        for _ in 0..3 {
            let _ = store.load_node("n").await;
        }
        assert_eq!(layer.state(), Open);
    }

    #[test]
    fn settings_are_checked() {
        let layer = CircuitBreakerLayer::new();
        assert_eq!(format!("{layer:?}"), "circuit_breaker");
        let bad =
            std::panic::catch_unwind(|| CircuitBreakerLayer::new().with_failure_rate(0.5, 5, 6));
        assert!(bad.is_err(), "min_calls above the window");
        assert_eq!(CircuitState::HalfOpen.label(), "half_open");
    }

    #[cfg(feature = "metrics")]
    #[tokio::test(start_paused = true)]
    async fn state_transitions_and_rejections_are_exported() {
        use crate::test_support::recorder::{exclusive, snapshot};
        use metrics_util::MetricKind::{Counter as C, Gauge as G};
        use metrics_util::debugging::DebugValue;

        let _exclusive = exclusive().await;
        let layer = CircuitBreakerLayer::default()
            .with_consecutive_failures(1)
            .with_store_name("breaker-metrics");
        let (store, faults) = stack(layer);
        store.load_node("n").await.unwrap();
        let gauge = |value: f64| {
            ((G, names::CIRCUIT_STATE.to_owned(), vec![]), DebugValue::Gauge(value.into()))
        };
        assert_eq!(snapshot("breaker-metrics"), [gauge(0.0)], "closed from the first call");
        faults.fail_next(Operation::LoadNode, 1, unavailable());
        store.load_node("n").await.unwrap_err();
        store.load_node("n").await.unwrap_err();
        store.load_node("n").await.unwrap_err();

        let counter = |name: &str, label: &str, value| {
            ((C, name.to_owned(), vec![label.to_owned()]), DebugValue::Counter(value))
        };
        assert_eq!(
            snapshot("breaker-metrics"),
            [
                counter(names::CIRCUIT_REJECTIONS, "operation=load_node", 2),
                counter(names::CIRCUIT_TRANSITIONS, "state=open", 1),
                gauge(1.0),
            ]
        );
    }

    #[tokio::test]
    async fn conformance_over_memory_and_file_stores() {
        run_conformance(CircuitBreakerLayer::default()).await;
    }
}
