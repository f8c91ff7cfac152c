//! Crossing between lash's synchronous `AttachmentManifest` and Strata's async one.
//!
//! **Strata store under lash** ([`ForLash`](crate::ForLash)): lash calls `record_intent` and
//! friends as plain functions, often from inside a task of the runtime; the Strata call is a
//! future. The bridge runs it to completion without deadlock on every kind of runtime:
//!
//! - on a **multi-thread** tokio runtime: `block_in_place` hands this worker's other tasks to
//!   the other workers for the duration, and `Handle::block_on` drives the future here with
//!   the runtime's timers and I/O (driven by the other workers), so nothing else stalls;
//! - on a **current-thread** runtime (the default of `#[tokio::test]`), or with no runtime:
//!   the future runs on the bridge's own manifest thread (one per process, started on first
//!   use, a current-thread runtime with timers and I/O) and this thread waits for the answer.
//!   Waiting is what a synchronous signature means: the caller's thread is parked for the
//!   call's duration, like any synchronous I/O. It cannot deadlock, because the future needs
//!   nothing from the parked runtime: a timeout, a retry backoff or a delay in a layer ticks
//!   on the manifest thread's own clock. (A store whose future depends on a task spawned on
//!   the caller's current-thread runtime would still wait forever there; run such a store on
//!   a multi-thread runtime.)
//!
//! **lash store under Strata** ([`FromLash`](crate::FromLash)): the synchronous lash call
//! runs on tokio's blocking pool (`spawn_blocking`) and the Strata future awaits it, so no
//! executor thread blocks and a timeout or a dropped call stops waiting (the lash call itself
//! runs to its end: a synchronous call cannot be interrupted). With no runtime at all it runs
//! inline. `lash-sqlite-store`'s manifest itself blocks the calling thread on its connection
//! thread (`futures_executor::block_on`), which is exactly why it must not run on an
//! executor thread.
//!
//! The same blocking-pool path decodes large reads for [`ForLash`](crate::ForLash): turning a
//! graph of [`LARGE_READ_NODES`](crate::mapping::LARGE_READ_NODES) or more nodes back
//! into lash nodes takes milliseconds, which must not stall an executor thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use strata_core::StoreError;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;

/// Runs `future` to completion from synchronous code (see the module docs).
pub(crate) fn wait_for<T, F>(future: F) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
    T: Send + 'static,
{
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        _ => manifest_thread()?.run(future),
    }
}

/// Runs the synchronous `call` on the blocking pool and awaits it (inline without a runtime).
pub(crate) async fn off_executor<T, F>(call: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    if Handle::try_current().is_err() {
        return call();
    }
    tokio::task::spawn_blocking(call).await.map_err(|error| {
        StoreError::Backend(format!("a call on the blocking pool failed: {error}"))
    })?
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The process's manifest thread: a current-thread runtime spawning each job it receives, so
/// concurrent waiters do not queue behind one another.
struct ManifestThread {
    jobs: mpsc::UnboundedSender<Job>,
}

fn manifest_thread() -> Result<&'static ManifestThread, StoreError> {
    static THREAD: OnceLock<Result<ManifestThread, String>> = OnceLock::new();
    THREAD.get_or_init(ManifestThread::start).as_ref().map_err(|error| {
        StoreError::Backend(format!("the bridge's manifest thread did not start: {error}"))
    })
}

impl ManifestThread {
    fn start() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())?;
        let (jobs, mut received) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("strata-lash-manifest".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = received.recv().await {
                        tokio::spawn(job);
                    }
                });
            })
            .map_err(|error| error.to_string())?;
        Ok(Self { jobs })
    }

    fn run<T, F>(&self, future: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let lost = || StoreError::Backend("the bridge's manifest thread stopped".to_owned());
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let job = async move {
            let _ = answer.send(future.await);
        };
        self.jobs.send(Box::pin(job)).map_err(|_| lost())?;
        answered.recv().map_err(|_| lost())?
    }
}
