//! What a benchmark runs on: the backend table, the layer table (with the `full` alias),
//! [`StackSpec`] (a backend plus layers, written `file+cache` or `file+full`), and
//! [`OpenStack`], the layered factory a configuration opens its sessions through.
//!
//! Each backend and each layer is **one entry in one table**; its name then appears in
//! `--help`, in the parser and in the error listing the valid names. The layer table is in
//! the documented order (outermost first, as in `StoreBuilder`'s rule): whatever order the
//! user types layers in, they are applied in table order, and `full` names the recommended
//! stack, every layer of the table.
//!
//! # How a stack is built
//!
//! As in production: through layered factories. The backend's factory is wrapped in one
//! `LayeredFactory` per layer, innermost first, each over the type-erased factory below it
//! (`Arc<dyn SessionStoreFactory>` is a factory), so every handle a configuration opens
//! passes through [`Layer::layer_session`] of every layer: one cache per session shared by
//! the session's handles, one limiter and one breaker shared by every session, one metrics
//! table. Two more layers are the workload's, not the user's:
//!
//! - the **attachment layer** (`strata_attachments::AttachmentLayer`), outermost, when the
//!   workload writes attachments: its scoped store records each put's intent through the
//!   stack below it and writes the bytes to the configuration's attachment store (a file
//!   attachment store in the data directory for `file`, a memory one for `memory`), and it
//!   carries a session's pending attachment ids into the session's next commit;
//! - the **fault drill** (`strata_layers::faults::FaultInjection`), innermost, right above
//!   the backend, with `--faults RATE`: every store call gets a fault with probability
//!   `RATE`, half of them refused before reaching the store ([`REFUSED`], a `NotApplied`
//!   error: nothing applied) and half applied then failed (a lost reply, [`LOST_REPLY`], an
//!   `Unavailable` error: ambiguous), drawn from a generator seeded with `--faults-seed`.
//!   Hangs and delays are not injected: a hang costs a whole deadline of the timeout layer
//!   (1 s for reads, 5 s for writes by default) and never ends without it.
//!
//! A stack chosen at run time costs one dynamic call (a boxed future) per layer and call,
//! which is what a runtime that picks its layers from configuration pays too; the layers
//! benchmark (`cargo bench --bench layers`) measures the static case.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use strata::attachments::{
    AttachmentError, AttachmentLayer, AttachmentStore, FileAttachmentOptions, FileAttachmentStore,
    MemoryAttachmentStore, SessionScopedAttachmentStore,
};
use strata::file::{FileStoreFactory, FileStoreOptions};
use strata::layers::faults::{Fault, FaultInjection};
use strata::layers::{
    CacheLayer, CircuitBreakerLayer, ConcurrencyLimitLayer, MetricsLayer, RetryLayer, TimeoutLayer,
    TracingLayer,
};
use strata::memory::MemoryStoreFactory;
use strata::{
    DurabilityTier, Layer, Operation, RuntimePersistence, SessionStoreFactory, SessionStoreRequest,
    StoreBuilder, StoreError,
};

use crate::error::CliError;
use crate::layout::{Layout, Sessions};

/// A session factory behind an `Arc`, type-erased: what each layer wraps.
pub type SharedFactory = Arc<dyn SessionStoreFactory>;

/// What a backend opens: its session factory and the attachment store beside it.
pub struct Opened {
    /// The session factory.
    pub factory: SharedFactory,
    /// The attachment store the workload writes attachments to.
    pub attachments: Arc<dyn AttachmentStore>,
}

/// One backend the tool can run on.
pub struct Backend {
    /// Name used on the command line.
    pub name: &'static str,
    /// One line for `--help`.
    pub summary: &'static str,
    /// True when the backend keeps its data in a data directory (and so uses `--dir`).
    pub uses_dir: bool,
    /// Opens the backend (in the data directory `dir`, `Some` exactly when `uses_dir`).
    pub open: fn(dir: Option<&Layout>) -> Result<Opened, CliError>,
}

/// Every backend, the default first.
pub const BACKENDS: &[Backend] = &[
    Backend {
        name: "file",
        summary: "the durable file store, fsync before every acknowledgement (default)",
        uses_dir: true,
        open: open_file,
    },
    Backend {
        name: "memory",
        summary: "the in-memory store (nothing survives the process)",
        uses_dir: false,
        open: |_| {
            Ok(Opened {
                factory: Arc::new(MemoryStoreFactory::new()),
                attachments: Arc::new(MemoryAttachmentStore::new()),
            })
        },
    },
];

/// The file backend: the data directory's session root and attachment store.
fn open_file(dir: Option<&Layout>) -> Result<Opened, CliError> {
    let layout = dir.expect("the file backend is always given a data directory");
    let (Sessions::Root(sessions), Some(attachments)) = (&layout.sessions, &layout.attachments)
    else {
        unreachable!("bench creates both halves of its data directories");
    };
    let factory =
        FileStoreFactory::open(sessions, FileStoreOptions::default()).map_err(|source| {
            CliError::Store {
                context: format!("cannot open the file store in {}", sessions.display()),
                source,
            }
        })?;
    // An absolute root, so that the manifest rows' URIs name the bytes wherever the tool runs.
    let root = attachments.canonicalize().map_err(CliError::io("resolve", attachments))?;
    let store =
        FileAttachmentStore::open(&root, FileAttachmentOptions::default()).map_err(|source| {
            CliError::Attachments {
                context: format!("cannot open the attachment store in {}", root.display()),
                source,
            }
        })?;
    Ok(Opened { factory: Arc::new(factory), attachments: Arc::new(store) })
}

/// One layer the tool can stack.
pub struct LayerKind {
    /// Name used on the command line.
    pub name: &'static str,
    /// One short line for `--help`: what it does, with its defaults.
    pub summary: &'static str,
    /// Wraps `inner` in the layer made for the configuration `label` (its metric store label
    /// or tracing namespace).
    pub wrap: fn(label: &str, inner: SharedFactory) -> SharedFactory,
}

/// Wraps `inner` in `layer`: a layered factory, every handle passing through
/// [`Layer::layer_session`].
fn layered<L>(layer: L, inner: SharedFactory) -> SharedFactory
where
    L: Layer<Arc<dyn RuntimePersistence>> + Send + Sync + 'static,
    L::Store: RuntimePersistence + 'static,
{
    Arc::new(StoreBuilder::new().layer(layer).build_factory(inner))
}

/// Every layer, in the documented order: the first is the outermost.
pub const LAYERS: &[LayerKind] = &[
    LayerKind {
        name: "tracing",
        summary: "a span per call, formatted and discarded up to --trace-level",
        wrap: |label, inner| {
            layered(TracingLayer::default().with_namespace(label.to_owned()), inner)
        },
    },
    LayerKind {
        name: "metrics",
        summary: "call counts, durations and sizes, into the Prometheus recorder",
        wrap: |label, inner| {
            layered(MetricsLayer::default().with_store_name(label.to_owned()), inner)
        },
    },
    LayerKind {
        name: "cache",
        summary: "read-through cache of sessions, nodes and metadata (64 MiB, 60 s)",
        wrap: |label, inner| {
            layered(CacheLayer::default().with_store_name(label.to_owned()), inner)
        },
    },
    LayerKind {
        name: "retry",
        summary: "3 attempts, jittered backoff 5-250 ms, only when safe for the call",
        wrap: |label, inner| {
            layered(RetryLayer::default().with_store_name(label.to_owned()), inner)
        },
    },
    LayerKind {
        name: "timeout",
        summary: "a deadline per attempt: reads 1 s, writes 5 s, maintenance 60 s",
        wrap: |label, inner| {
            layered(TimeoutLayer::default().with_store_name(label.to_owned()), inner)
        },
    },
    LayerKind {
        name: "limit",
        summary: "32 calls in flight over all sessions, wait up to 250 ms",
        wrap: |label, inner| {
            layered(ConcurrencyLimitLayer::default().with_store_name(label.to_owned()), inner)
        },
    },
    LayerKind {
        name: "breaker",
        summary: "opens after 5 failures in a row or 50 % of 20 calls, 1 s cool-down",
        wrap: |label, inner| {
            layered(CircuitBreakerLayer::default().with_store_name(label.to_owned()), inner)
        },
    },
];

/// The name of the recommended stack: every layer of [`LAYERS`], in order.
pub const FULL: &str = "full";

/// The error `--faults` injects before the store: nothing was applied.
pub const REFUSED: &str = "fault drill: refused before reaching the store";
/// The error `--faults` injects after the store applied the call: a lost reply.
pub const LOST_REPLY: &str = "fault drill: the store applied the call, its reply was lost";

/// True when `error` is one the fault drill caused: an injected error (possibly as the last
/// error of a retry layer that gave up), or an open breaker's refusal (the breaker opens on
/// failures, and under the drill those are injected ones).
pub fn caused_by_drill(error: &StoreError) -> bool {
    match error {
        StoreError::RetriesExhausted { last_error, .. } => caused_by_drill(last_error),
        StoreError::NotApplied(text) => text == REFUSED,
        StoreError::Unavailable(text) => text == LOST_REPLY,
        StoreError::CircuitOpen { .. } => true,
        _ => false,
    }
}

/// The backend named `name`, or an error listing the valid names.
pub fn backend(name: &str) -> Result<&'static Backend, String> {
    BACKENDS.iter().find(|backend| backend.name == name).ok_or_else(|| {
        format!(
            "unknown backend `{name}`; expected one of: {}",
            names(BACKENDS.iter().map(|b| b.name))
        )
    })
}

/// The positions in [`LAYERS`] the name `name` stands for: one layer, or every layer for
/// `full`; an error listing the valid names otherwise.
fn layer_indices(name: &str) -> Result<Vec<usize>, String> {
    if name == FULL {
        return Ok((0..LAYERS.len()).collect());
    }
    match LAYERS.iter().position(|layer| layer.name == name) {
        Some(index) => Ok(vec![index]),
        None => Err(format!(
            "unknown layer `{name}`; expected one of: {}, or {FULL}",
            names(LAYERS.iter().map(|l| l.name))
        )),
    }
}

/// Checks a layer name (`full` included), returning it as typed.
pub fn layer_name(name: &str) -> Result<String, String> {
    layer_indices(name).map(|_| name.to_owned())
}

fn names(names: impl Iterator<Item = &'static str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// `tracing → metrics → … → breaker`: the order of every layer.
fn full_order() -> String {
    names(LAYERS.iter().map(|layer| layer.name)).replace(", ", " → ")
}

/// What `full` stands for, in a sentence (help and reports).
pub fn full_meaning() -> String {
    format!(
        "{FULL} = every layer, the recommended stack: {}",
        names(LAYERS.iter().map(|layer| layer.name)).replace(", ", "+")
    )
}

/// The `--help` text listing the backends (one line each, so keep summaries short).
pub fn backends_help() -> String {
    let mut help = String::from("Backend to run on:");
    for backend in BACKENDS {
        help.push_str(&format!("\n  {:<8} {}", backend.name, backend.summary));
    }
    help
}

/// The `--help` text listing the layers in their order, and `full`.
pub fn layers_help() -> String {
    let mut help = format!(
        "Layers to stack over the backend, comma-separated. They are applied in the documented \
         order (outermost first: {} → backend) whatever order they are typed in, each with its \
         default configuration:",
        full_order()
    );
    for layer in LAYERS {
        help.push_str(&format!("\n  {:<8} {}", layer.name, layer.summary));
    }
    help.push_str(&format!(
        "\n  {FULL:<8} all of the above, the recommended stack (file+{FULL} = file with {})",
        names(LAYERS.iter().map(|layer| layer.name))
    ));
    help
}

/// A backend and the layers over it, in table order.
#[derive(Clone, PartialEq, Eq)]
pub struct StackSpec {
    backend: &'static str,
    /// Positions in [`LAYERS`], ascending.
    layers: Vec<usize>,
}

/// How a configuration is opened besides its spec: the workload's attachment layer and the
/// fault drill.
#[derive(Clone, Copy, Debug, Default)]
pub struct StackOptions {
    /// Stack the attachment layer outermost (the workload writes attachments).
    pub attachments: bool,
    /// Stack the fault drill innermost.
    pub faults: Option<FaultDrill>,
}

/// `--faults RATE` and `--faults-seed SEED`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FaultDrill {
    /// Probability of a fault on each store call.
    pub rate: f64,
    /// Seed of the fault generator.
    pub seed: u64,
}

impl FaultDrill {
    /// The drill layer: half the rate refused before the store, half applied then failed.
    fn layer(self) -> FaultInjection {
        let half = self.rate / 2.0;
        FaultInjection::new()
            .with_seed(self.seed)
            .with_rate(
                Operation::ALL,
                half,
                Fault::FailBefore(StoreError::NotApplied(REFUSED.into())),
            )
            .with_rate(
                Operation::ALL,
                half,
                Fault::FailAfter(StoreError::Unavailable(LOST_REPLY.into())),
            )
    }
}

impl StackSpec {
    /// `backend` with `layers` (any order, `full` for all; a layer named twice is refused).
    pub fn new(backend: &str, layers: &[String]) -> Result<Self, String> {
        let backend = self::backend(backend)?.name;
        let mut indices = Vec::with_capacity(LAYERS.len());
        for name in layers {
            for index in layer_indices(name.trim())? {
                if indices.contains(&index) {
                    return Err(format!("layer `{}` is named twice", LAYERS[index].name));
                }
                indices.push(index);
            }
        }
        indices.sort_unstable();
        Ok(Self { backend, layers: indices })
    }

    /// Parses `backend+layer+layer…` (as `--compare` takes it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split('+').map(str::trim);
        let backend = parts.next().filter(|name| !name.is_empty()).ok_or_else(|| {
            format!("configuration `{text}` names no backend; write e.g. `file+cache`")
        })?;
        let layers: Vec<String> = parts.map(str::to_owned).collect();
        Self::new(backend, &layers)
    }

    /// The backend's table entry.
    pub fn backend(&self) -> &'static Backend {
        backend(self.backend).expect("a spec only holds known backends")
    }

    /// The layers' table entries, outermost first.
    pub fn layers(&self) -> impl DoubleEndedIterator<Item = &'static LayerKind> + '_ {
        self.layers.iter().map(|&index| &LAYERS[index])
    }

    /// True when the stack includes the layer `name`.
    pub fn has_layer(&self, name: &str) -> bool {
        self.layers().any(|layer| layer.name == name)
    }

    /// True when the stack is `full`.
    pub fn is_full(&self) -> bool {
        self.layers.len() == LAYERS.len()
    }

    /// The resolved order, outermost first, with the workload's layers:
    /// `attachments → tracing → metrics → faults → file`.
    pub fn resolved_order(&self, options: &StackOptions) -> String {
        let mut order: Vec<&str> = Vec::new();
        if options.attachments {
            order.push("attachments");
        }
        order.extend(self.layers().map(|layer| layer.name));
        if options.faults.is_some() {
            order.push("faults");
        }
        order.push(self.backend);
        order.join(" → ")
    }

    /// Opens the backend (in the data directory `dir` when it uses one) and stacks the layers
    /// over it; `label` names the configuration in the layers' output.
    pub fn open(
        &self,
        label: &str,
        dir: Option<&Layout>,
        options: &StackOptions,
    ) -> Result<OpenStack, CliError> {
        let Opened { factory, attachments } = (self.backend().open)(dir)?;
        let tier = factory.durability_tier();
        let faults = options.faults.map(FaultDrill::layer);
        let mut stack = factory;
        if let Some(faults) = &faults {
            stack = layered(faults.clone(), stack);
        }
        for layer in self.layers().rev() {
            stack = (layer.wrap)(label, stack);
        }
        let attachments = options.attachments.then(|| AttachmentLayer::new(attachments));
        if let Some(layer) = &attachments {
            stack = layered(layer.clone(), stack);
        }
        Ok(OpenStack { factory: stack, attachments, faults, tier })
    }
}

/// Canonical form: backend first, then layers in table order (`file+tracing+metrics`), or
/// `+full` for every layer.
impl fmt::Display for StackSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.backend)?;
        if self.is_full() {
            return write!(f, "+{FULL}");
        }
        for layer in self.layers() {
            write!(f, "+{}", layer.name)?;
        }
        Ok(())
    }
}

impl fmt::Debug for StackSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A configuration's layered factory, with the workload's attachment layer and fault drill.
pub struct OpenStack {
    factory: SharedFactory,
    attachments: Option<AttachmentLayer>,
    faults: Option<FaultInjection>,
    tier: DurabilityTier,
}

impl OpenStack {
    /// The tier of every store the backend makes (layers report their inner store's).
    pub fn durability_tier(&self) -> DurabilityTier {
        self.tier
    }

    /// Creates (or reopens) the session's store, wrapped in the stack.
    pub async fn create_store(
        &self,
        session_id: &str,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        self.factory.create_store(SessionStoreRequest::new(session_id)).await
    }

    /// Opens the existing session's store, wrapped in the stack (`None` if it never existed).
    pub async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        self.factory.open_existing_store(session_id).await
    }

    /// The session's scoped attachment store (it needs a live handle of the session), or
    /// `None` when the stack has no attachment layer.
    pub fn attachments(
        &self,
        session_id: &str,
    ) -> Option<Result<SessionScopedAttachmentStore, AttachmentError>> {
        self.attachments.as_ref().map(|layer| layer.scoped(session_id))
    }

    /// The attachment ids the session's next commit will carry.
    pub fn pending_attachments(&self, session_id: &str) -> usize {
        self.attachments.as_ref().map_or(0, |layer| layer.pending_ids(session_id).len())
    }

    /// Faults the drill injected so far, by operation (those with at least one), and the
    /// calls that reached it; `None` without `--faults`.
    pub fn faults_injected(&self) -> Option<(Vec<(&'static str, u64)>, u64)> {
        self.faults.as_ref().map(|faults| {
            let injected = Operation::ALL
                .iter()
                .map(|&operation| (operation.name(), faults.injected(operation)))
                .filter(|&(_, count)| count > 0)
                .collect();
            (injected, faults.total_calls())
        })
    }
}

/// The path of the data directory a configuration keeps under `root`.
pub fn data_dir(root: &Path, index: usize, label: &str) -> std::path::PathBuf {
    root.join(format!("{}-{}", index + 1, slug(label)))
}

/// `file+tracing #2` → `file-tracing-2`: a label as a directory name.
fn slug(label: &str) -> String {
    label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_applied_in_table_order_whatever_order_they_are_typed_in() {
        let typed = StackSpec::parse("file+breaker+metrics+cache+tracing").unwrap();
        assert_eq!(typed.to_string(), "file+tracing+metrics+cache+breaker");
        let options = StackOptions::default();
        assert_eq!(typed.resolved_order(&options), "tracing → metrics → cache → breaker → file");
        let flag = StackSpec::new(
            "file",
            &["cache".into(), " breaker".into(), "metrics".into(), "tracing".into()],
        );
        assert!(flag.unwrap() == typed);
    }

    #[test]
    fn full_is_every_layer_in_order_and_prints_as_full() {
        let full = StackSpec::parse("file+full").unwrap();
        assert!(full.is_full());
        assert_eq!(full.to_string(), "file+full");
        let spelled = StackSpec::parse("file+retry+tracing+metrics+cache+timeout+limit+breaker");
        assert!(spelled.unwrap() == full, "spelled out, it is the same stack");
        let options =
            StackOptions { attachments: true, faults: Some(FaultDrill { rate: 0.1, seed: 1 }) };
        assert_eq!(
            full.resolved_order(&options),
            "attachments → tracing → metrics → cache → retry → timeout → limit → breaker → faults → file"
        );
        assert_eq!(
            full_meaning(),
            "full = every layer, the recommended stack: tracing+metrics+cache+retry+timeout+limit+breaker"
        );
        assert_eq!(
            StackSpec::parse("memory+full+cache").unwrap_err(),
            "layer `cache` is named twice"
        );
    }

    #[test]
    fn unknown_and_repeated_names_are_refused_with_the_valid_names() {
        let error = StackSpec::parse("file+cahce").unwrap_err();
        assert_eq!(
            error,
            "unknown layer `cahce`; expected one of: tracing, metrics, cache, retry, timeout, \
             limit, breaker, or full"
        );
        let error = StackSpec::parse("disk").unwrap_err();
        assert_eq!(error, "unknown backend `disk`; expected one of: file, memory");
        assert_eq!(
            StackSpec::parse("memory+tracing+tracing").unwrap_err(),
            "layer `tracing` is named twice"
        );
        assert!(StackSpec::parse("+metrics").unwrap_err().contains("names no backend"));
    }

    #[test]
    fn help_lists_every_entry_of_both_tables_and_what_full_means() {
        let help = layers_help();
        assert!(
            help.contains(
                "tracing → metrics → cache → retry → timeout → limit → breaker → backend"
            ),
            "{help}"
        );
        for layer in LAYERS {
            assert!(help.contains(layer.summary), "{help}");
        }
        assert!(help.contains("file+full = file with tracing, metrics, cache, retry"), "{help}");
        for backend in BACKENDS {
            assert!(backends_help().contains(backend.name));
        }
    }

    #[test]
    fn drill_errors_are_recognised_through_retries_and_the_breaker() {
        let refused = StoreError::NotApplied(REFUSED.into());
        let lost = StoreError::Unavailable(LOST_REPLY.into());
        assert!(caused_by_drill(&refused) && caused_by_drill(&lost));
        let exhausted = StoreError::RetriesExhausted {
            operation: "load_node",
            attempts: 3,
            last_error: Box::new(lost.clone()),
        };
        assert!(caused_by_drill(&exhausted));
        let open = StoreError::CircuitOpen { operation: "vacuum", retry_after: Default::default() };
        assert!(caused_by_drill(&open));
        assert!(!caused_by_drill(&StoreError::Unavailable("disk full".into())));
        assert!(!caused_by_drill(&StoreError::HeadRevisionConflict { expected: None, actual: 1 }));
    }

    #[test]
    fn labels_become_plain_directory_names() {
        assert_eq!(slug("file+tracing+metrics"), "file-tracing-metrics");
        assert_eq!(slug("file #2"), "file-2");
        assert_eq!(data_dir(Path::new("/r"), 1, "file+full"), Path::new("/r/2-file-full"));
    }

    /// Logs its name, then forwards the call.
    #[derive(Clone, Debug)]
    struct Logging {
        name: &'static str,
        log: Arc<std::sync::Mutex<Vec<&'static str>>>,
    }

    impl strata::Around for Logging {
        fn around<'a, S>(
            &'a self,
            inner: &'a S,
            request: strata::Request<'a>,
        ) -> impl Future<Output = Result<strata::Response, StoreError>> + Send + 'a
        where
            S: strata::Serve + ?Sized + 'a,
        {
            self.log.lock().unwrap().push(self.name);
            inner.serve(request)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn layered_factories_wrap_every_handle_outermost_first() {
        let log = Arc::default();
        let layer = |name| Logging { name, log: Arc::clone(&log) };
        let inner: SharedFactory = Arc::new(MemoryStoreFactory::new());
        let stack = OpenStack {
            factory: layered(layer("outer"), layered(layer("inner"), inner)),
            attachments: None,
            faults: None,
            tier: DurabilityTier::Inline,
        };
        let store = stack.create_store("s").await.unwrap();
        store.load_node("n").await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["outer", "inner"]);
        let reopened = stack.open_existing_store("s").await.unwrap().expect("the session exists");
        reopened.load_session_meta().await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["outer", "inner", "outer", "inner"]);
        assert!(stack.open_existing_store("other").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_drill_injects_at_its_rate_and_the_workload_layers_are_in_place() {
        let spec = StackSpec::parse("memory+retry").unwrap();
        let options =
            StackOptions { attachments: true, faults: Some(FaultDrill { rate: 1.0, seed: 3 }) };
        let stack = spec.open("test", None, &options).unwrap();
        let store = stack.create_store("s").await.unwrap();
        // Every attempt faults: retry gives up on the read, and the error is the drill's.
        let error = store.load_session_meta().await.unwrap_err();
        assert!(caused_by_drill(&error), "{error}");
        let (injected, calls) = stack.faults_injected().unwrap();
        assert_eq!(injected, [("load_session_meta", 3)]);
        assert_eq!(calls, 3);
        assert!(stack.attachments("s").unwrap().is_ok(), "the session's scoped store");
        assert_eq!(stack.pending_attachments("s"), 0);
    }
}
