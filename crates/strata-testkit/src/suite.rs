//! The suite runner: options, the per-check environment ([`StoreContext`] given to your
//! constructor), and the report.
//!
//! Each check runs in its own tokio task with a fresh scratch directory and a fresh
//! [`ManualClock`]; a panicking or hanging check is reported as that check's failure and the
//! suite goes on. Checks run one after the other, so a failure never depends on scheduling
//! between checks. The constructor is called from the suite's own future (so its future needs
//! no `'static` bound); checks are spawned on the caller's runtime, so a store that uses
//! `tokio::task::block_in_place` needs a multi-thread runtime
//! (`#[tokio::test(flavor = "multi_thread")]`).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strata_core::{
    DurabilityTier, ManualClock, RuntimePersistence, SessionStoreFactory, SessionStoreRequest,
};
use tempfile::TempDir;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::checks::{self, Check, Needs};
use crate::fixtures::SESSION;

/// The environment variable holding a check-name substring: when set (and not empty), only
/// checks whose name contains it run (e.g. `STRATA_CONFORMANCE_FILTER=queue::`).
pub const FILTER_ENV: &str = "STRATA_CONFORMANCE_FILTER";

/// The epoch (ms) every check's [`ManualClock`] starts at.
pub const START_MS: u64 = 1_700_000_000_000;

/// A check gets this long (tokio time) before it is reported as hung.
const CHECK_DEADLINE: Duration = Duration::from_secs(60);

/// What a constructor gets for each check.
#[derive(Clone, Debug)]
pub struct StoreContext {
    /// The store's clock; the check moves it. Starts at [`START_MS`].
    pub clock: ManualClock,
    /// A scratch directory for this check (removed after it). On reopen, the same directory.
    pub dir: PathBuf,
}

/// Whether the store under test has a real attachment manifest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManifestSupport {
    /// A real manifest: the manifest checks run.
    #[default]
    Real,
    /// The no-op manifest: the manifest checks assert the no-op behaviour instead.
    Noop,
}

/// What the store under test promises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SuiteOptions {
    /// The tier the store must declare.
    pub tier: DurabilityTier,
    /// Real or no-op manifest.
    pub manifest: ManifestSupport,
    /// True when calling the constructor again on the same directory reopens the same durable
    /// state (enables the "survives reopen" checks).
    pub reopenable: bool,
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFailure {
    /// The check's name.
    pub check: &'static str,
    /// What was expected and what was observed.
    pub message: String,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.check, self.message)
    }
}

/// The outcome of a suite run.
#[derive(Clone, Debug, Default)]
pub struct SuiteReport {
    suite: &'static str,
    passed: Vec<&'static str>,
    skipped: Vec<(&'static str, &'static str)>,
    failures: Vec<CheckFailure>,
}

impl SuiteReport {
    /// Panics with every failed check and its message, if any failed.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.failures.is_empty() {
            panic!("{self}");
        }
    }

    /// The failed checks, in run order.
    pub fn failures(&self) -> &[CheckFailure] {
        &self.failures
    }

    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.passed.len()
    }

    /// Names of the checks that passed.
    pub fn passed_checks(&self) -> &[&'static str] {
        &self.passed
    }

    /// Checks not run (name, reason): they need an option the store does not have, or the
    /// name filter excluded them.
    pub fn skipped(&self) -> &[(&'static str, &'static str)] {
        &self.skipped
    }

    /// The failure of check `name`, if it ran and failed.
    pub fn failure(&self, name: &str) -> Option<&CheckFailure> {
        self.failures.iter().find(|failure| failure.check == name)
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} conformance: {} passed, {} failed, {} skipped",
            self.suite,
            self.passed.len(),
            self.failures.len(),
            self.skipped.len()
        )?;
        for failure in &self.failures {
            writeln!(f, "  FAILED {failure}")?;
        }
        Ok(())
    }
}

/// Names of the checks [`run_store_suite`] runs (before option and name filtering).
pub fn store_check_names() -> Vec<&'static str> {
    names(Kind::Store)
}

/// Names of the checks [`run_factory_suite`] runs (before option and name filtering).
pub fn factory_check_names() -> Vec<&'static str> {
    names(Kind::Factory)
}

fn names(kind: Kind) -> Vec<&'static str> {
    checks::all().iter().filter(|check| kind.runs(check)).map(|check| check.name).collect()
}

/// Runs every store check. `make` must return a fresh, empty store for each new directory of
/// its [`StoreContext`], and (with `reopenable`) reopen the durable state of a directory it
/// has seen, once every handle of it was dropped.
pub async fn run_store_suite<F, Fut>(options: SuiteOptions, make: F) -> SuiteReport
where
    F: Fn(StoreContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Arc<dyn RuntimePersistence>> + Send,
{
    run(Kind::Store, options, make).await
}

/// Runs the common store checks on handles opened from a factory, plus the factory checks.
/// `make` returns a factory rooted in the context's directory.
pub async fn run_factory_suite<F, Fut>(options: SuiteOptions, make: F) -> SuiteReport
where
    F: Fn(StoreContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Arc<dyn SessionStoreFactory>> + Send,
{
    run(Kind::Factory, options, make).await
}

/// What the suite drives: a store constructor or a factory constructor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Store,
    Factory,
}

impl Kind {
    fn runs(self, check: &Check) -> bool {
        self == Kind::Factory || check.needs != Needs::Factory
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Store => "store",
            Kind::Factory => "factory",
        }
    }
}

/// A request to the constructor: the context and where to send what it made.
type MakeRequest<T> = (StoreContext, oneshot::Sender<T>);

/// Runs the checks while serving constructor requests in this (non-`'static`) future, so the
/// constructor's future needs no `'static` bound.
async fn run<T, F, Fut>(kind: Kind, options: SuiteOptions, make: F) -> SuiteReport
where
    T: Send + 'static,
    F: Fn(StoreContext) -> Fut,
    Fut: Future<Output = T>,
    Target: From<mpsc::Sender<MakeRequest<T>>>,
{
    let (sender, mut requests) = mpsc::channel::<MakeRequest<T>>(1);
    let serve = async move {
        while let Some((context, reply)) = requests.recv().await {
            // The check may have given up (panicked) meanwhile; nothing to do then.
            let _ = reply.send(make(context).await);
        }
    };
    let checks = run_checks(kind, options, Target::from(sender));
    tokio::pin!(serve, checks);
    // Serving ends only once every check is done: a check still holding a sender must not
    // keep the suite alive.
    tokio::select! {
        biased;
        report = &mut checks => report,
        () = &mut serve => checks.await,
    }
}

impl SuiteReport {
    /// An empty report of the suite named `suite`.
    pub(crate) fn named(suite: &'static str) -> Self {
        Self { suite, ..Default::default() }
    }

    /// Records check `name` as skipped for `reason`.
    pub(crate) fn skip(&mut self, name: &'static str, reason: &'static str) {
        self.skipped.push((name, reason));
    }

    /// Records the outcome of check `name`.
    pub(crate) fn record(&mut self, name: &'static str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed.push(name),
            Err(message) => self.failures.push(CheckFailure { check: name, message }),
        }
    }

    /// Skips check `name` (and returns true) when [`FILTER_ENV`] excludes it.
    pub(crate) fn filtered_out(&mut self, name: &'static str) -> bool {
        let filter = std::env::var(FILTER_ENV).ok().filter(|filter| !filter.is_empty());
        let excluded = filter.is_some_and(|filter| !name.contains(&filter));
        if excluded {
            self.skip(name, "excluded by STRATA_CONFORMANCE_FILTER");
        }
        excluded
    }
}

async fn run_checks(kind: Kind, options: SuiteOptions, target: Target) -> SuiteReport {
    let mut report = SuiteReport::named(kind.label());
    for check in checks::all().iter().filter(|check| kind.runs(check)) {
        if report.filtered_out(check.name) {
            continue;
        }
        if let Some(reason) = check.needs.unmet(&options) {
            report.skip(check.name, reason);
            continue;
        }
        report.record(check.name, run_one(check, options, target.clone()).await);
    }
    report
}

/// A fresh scratch directory for one check.
pub(crate) fn scratch_dir() -> Result<TempDir, String> {
    tempfile::Builder::new()
        .prefix("strata-conformance-")
        .tempdir()
        .map_err(|error| format!("could not create a scratch directory: {error}"))
}

async fn run_one(check: &Check, options: SuiteOptions, target: Target) -> Result<(), String> {
    let env = Arc::new(Env {
        options,
        clock: ManualClock::new(START_MS),
        dir: scratch_dir()?,
        target,
        store: Mutex::new(None),
        factory: Mutex::new(None),
    });
    isolated((check.run)(env)).await
}

/// Runs one check in its own task: a panic, or not finishing within the check deadline, is
/// reported as the check's failure.
pub(crate) async fn isolated(
    check: impl Future<Output = Result<(), String>> + Send + 'static,
) -> Result<(), String> {
    let mut task = tokio::spawn(check);
    match tokio::time::timeout(CHECK_DEADLINE, &mut task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join_error)) => Err(match join_error.try_into_panic() {
            Ok(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
            Err(error) => format!("task failed: {error}"),
        }),
        Err(_) => {
            // Drop the hung check (and the store handles it holds).
            task.abort();
            Err(format!("did not finish within {CHECK_DEADLINE:?} (a call hung?)"))
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|message| (*message).to_owned()))
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// How a check reaches the constructor under test.
#[derive(Clone)]
pub(crate) enum Target {
    Store(mpsc::Sender<MakeRequest<Arc<dyn RuntimePersistence>>>),
    Factory(mpsc::Sender<MakeRequest<Arc<dyn SessionStoreFactory>>>),
}

impl From<mpsc::Sender<MakeRequest<Arc<dyn RuntimePersistence>>>> for Target {
    fn from(sender: mpsc::Sender<MakeRequest<Arc<dyn RuntimePersistence>>>) -> Self {
        Target::Store(sender)
    }
}

impl From<mpsc::Sender<MakeRequest<Arc<dyn SessionStoreFactory>>>> for Target {
    fn from(sender: mpsc::Sender<MakeRequest<Arc<dyn SessionStoreFactory>>>) -> Self {
        Target::Factory(sender)
    }
}

async fn make<T>(
    sender: &mpsc::Sender<MakeRequest<T>>,
    context: StoreContext,
) -> Result<T, String> {
    let (reply, made) = oneshot::channel();
    let lost = || "the constructor under test panicked or the suite stopped".to_owned();
    sender.send((context, reply)).await.map_err(|_| lost())?;
    made.await.map_err(|_| lost())
}

/// One check's world: options, clock, scratch directory, and the store or factory it opened.
pub(crate) struct Env {
    pub(crate) options: SuiteOptions,
    pub(crate) clock: ManualClock,
    dir: TempDir,
    target: Target,
    store: Mutex<Option<Arc<dyn RuntimePersistence>>>,
    factory: Mutex<Option<Arc<dyn SessionStoreFactory>>>,
}

impl Env {
    fn context(&self) -> StoreContext {
        StoreContext { clock: self.clock.clone(), dir: self.dir.path().to_owned() }
    }

    /// The factory (factory suite only), made on first use.
    pub(crate) async fn factory(&self) -> Result<Arc<dyn SessionStoreFactory>, String> {
        let Target::Factory(sender) = &self.target else {
            return Err("suite bug: factory() called in the store suite".to_owned());
        };
        let mut factory = self.factory.lock().await;
        if factory.is_none() {
            *factory = Some(make(sender, self.context()).await?);
        }
        Ok(factory.clone().expect("set above"))
    }

    /// A handle on the main session's store. Store suite: the one store of this check (made
    /// on first use). Factory suite: a new handle from `create_store`.
    pub(crate) async fn store(&self) -> Result<Arc<dyn RuntimePersistence>, String> {
        match &self.target {
            Target::Store(sender) => {
                let mut store = self.store.lock().await;
                if store.is_none() {
                    *store = Some(make(sender, self.context()).await?);
                }
                Ok(store.clone().expect("set above"))
            }
            Target::Factory(_) => self
                .factory()
                .await?
                .create_store(SessionStoreRequest::new(SESSION))
                .await
                .map_err(|error| format!("create_store({SESSION:?}) failed: {error}")),
        }
    }

    /// `count` handles on the main session (the same `Arc` in the store suite, distinct
    /// handles of one session in the factory suite).
    pub(crate) async fn handles(
        &self,
        count: usize,
    ) -> Result<Vec<Arc<dyn RuntimePersistence>>, String> {
        let mut handles = Vec::with_capacity(count);
        for _ in 0..count {
            handles.push(self.store().await?);
        }
        Ok(handles)
    }

    /// Drops `handles` and everything this environment holds, then reopens the same
    /// directory with the same clock and returns a handle on the main session.
    pub(crate) async fn reopen(
        &self,
        handles: Vec<Arc<dyn RuntimePersistence>>,
    ) -> Result<Arc<dyn RuntimePersistence>, String> {
        drop(handles);
        self.store.lock().await.take();
        self.factory.lock().await.take();
        match &self.target {
            Target::Store(_) => self.store().await,
            Target::Factory(_) => self
                .factory()
                .await?
                .open_existing_store(SESSION)
                .await
                .map_err(|error| format!("open_existing_store after reopen failed: {error}"))?
                .ok_or_else(|| {
                    "after reopen, open_existing_store returned None for a session with state"
                        .to_owned()
                }),
        }
    }
}
