//! What a benchmark runs on: the backend table, the layer table, and [`StackSpec`] (a backend
//! plus layers, written `file+tracing+metrics`), which opens session handles wrapped in its
//! layers.
//!
//! Each backend and each layer is **one entry in one table**; adding one (the cache, retry,
//! timeout, limit and breaker layers, the Postgres backend) is one more entry, and its name
//! then appears in `--help`, in the parser and in the error listing the valid names. The
//! layer table is in the documented order (outermost first, as in `StoreBuilder`'s rule):
//! whatever order the user types layers in, they are applied in table order.
//!
//! A stack chosen at run time cannot be one static `StoreBuilder` type, so each layer wraps the
//! type-erased handle below it (`Arc<dyn RuntimePersistence>`) through
//! [`Layer::layer_session`]: one dynamic call (a boxed future) per layer and call, which is
//! what a runtime that picks its layers from configuration pays too. A static stack saves
//! that hop; the layers benchmark (`cargo bench --bench layers`) measures the static case.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use strata::file::{FileStoreFactory, FileStoreOptions};
use strata::layers::{MetricsLayer, TracingLayer};
use strata::memory::MemoryStoreFactory;
use strata::{
    DurabilityTier, Layer, RuntimePersistence, SessionStoreFactory, SessionStoreRequest, StoreError,
};

/// One backend the tool can run on.
pub struct Backend {
    /// Name used on the command line.
    pub name: &'static str,
    /// One line for `--help`.
    pub summary: &'static str,
    /// True when the backend keeps its data in a directory (and so uses `--dir`).
    pub uses_dir: bool,
    /// Opens the backend's session factory; `dir` is `Some` exactly when `uses_dir`.
    pub open: OpenBackend,
}

/// How a backend opens its session factory (in `dir` when it uses one).
pub type OpenBackend = fn(dir: Option<&Path>) -> Result<Arc<dyn SessionStoreFactory>, StoreError>;

/// Every backend, the default first.
pub const BACKENDS: &[Backend] = &[
    Backend {
        name: "file",
        summary: "the durable file store, fsync before every acknowledgement (default)",
        uses_dir: true,
        open: |dir| {
            let dir = dir.expect("the file backend is always given a directory");
            Ok(Arc::new(FileStoreFactory::open(dir, FileStoreOptions::default())?))
        },
    },
    Backend {
        name: "memory",
        summary: "the in-memory store (nothing survives the process)",
        uses_dir: false,
        open: |_| Ok(Arc::new(MemoryStoreFactory::new())),
    },
];

/// A layer made for one configuration, applied to every session handle the configuration
/// opens (clones of a layer share its state: one metrics table per configuration).
pub trait HandleLayer: Send + Sync {
    /// Wraps `inner`, the handle of `session_id`.
    fn wrap(
        &self,
        session_id: &str,
        inner: Arc<dyn RuntimePersistence>,
    ) -> Arc<dyn RuntimePersistence>;
}

impl<L> HandleLayer for L
where
    L: Layer<Arc<dyn RuntimePersistence>> + Send + Sync,
    L::Store: RuntimePersistence + 'static,
{
    fn wrap(
        &self,
        session_id: &str,
        inner: Arc<dyn RuntimePersistence>,
    ) -> Arc<dyn RuntimePersistence> {
        Arc::new(self.layer_session(session_id, inner))
    }
}

/// One layer the tool can stack.
pub struct LayerKind {
    /// Name used on the command line.
    pub name: &'static str,
    /// One short line for `--help`: what it records and what the tool installs for it.
    pub summary: &'static str,
    /// Makes the layer for the configuration labelled `label` (used as its store name).
    pub make: fn(label: &str) -> Box<dyn HandleLayer>,
}

/// Every layer, in the documented order: the first is the outermost.
pub const LAYERS: &[LayerKind] = &[
    LayerKind {
        name: "tracing",
        summary: "a span per call, formatted and discarded up to --trace-level",
        make: |label| Box::new(TracingLayer::default().with_namespace(label.to_owned())),
    },
    LayerKind {
        name: "metrics",
        summary: "call counts, durations and sizes, into the Prometheus recorder",
        make: |label| Box::new(MetricsLayer::default().with_store_name(label.to_owned())),
    },
];

/// The backend named `name`, or an error listing the valid names.
pub fn backend(name: &str) -> Result<&'static Backend, String> {
    BACKENDS.iter().find(|backend| backend.name == name).ok_or_else(|| {
        format!(
            "unknown backend `{name}`; expected one of: {}",
            names(BACKENDS.iter().map(|b| b.name))
        )
    })
}

/// The layer named `name`, or an error listing the valid names.
pub fn layer(name: &str) -> Result<&'static LayerKind, String> {
    layer_index(name).map(|index| &LAYERS[index])
}

/// The position of the layer named `name` in [`LAYERS`], or an error listing the names.
fn layer_index(name: &str) -> Result<usize, String> {
    LAYERS.iter().position(|layer| layer.name == name).ok_or_else(|| {
        format!("unknown layer `{name}`; expected one of: {}", names(LAYERS.iter().map(|l| l.name)))
    })
}

fn names(names: impl Iterator<Item = &'static str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// The `--help` text listing the backends (one line each, so keep summaries short).
pub fn backends_help() -> String {
    let mut help = String::from("Backend to run on:");
    for backend in BACKENDS {
        help.push_str(&format!("\n  {:<8} {}", backend.name, backend.summary));
    }
    help
}

/// The `--help` text listing the layers in their order.
pub fn layers_help() -> String {
    let order = names(LAYERS.iter().map(|layer| layer.name)).replace(", ", " → ");
    let mut help = format!(
        "Layers to stack over the backend, comma-separated. They are applied in the documented \
         order (outermost first: {order} → backend) whatever order they are typed in:"
    );
    for layer in LAYERS {
        help.push_str(&format!("\n  {:<8} {}", layer.name, layer.summary));
    }
    help
}

/// A backend and the layers over it, in table order.
#[derive(Clone, PartialEq, Eq)]
pub struct StackSpec {
    backend: &'static str,
    layers: Vec<&'static str>,
}

impl StackSpec {
    /// `backend` with `layers` (any order; duplicates refused).
    pub fn new(backend: &str, layers: &[String]) -> Result<Self, String> {
        let backend = self::backend(backend)?.name;
        let mut indices = Vec::with_capacity(layers.len());
        for name in layers {
            let index = layer_index(name.trim())?;
            if indices.contains(&index) {
                return Err(format!("layer `{}` is named twice", LAYERS[index].name));
            }
            indices.push(index);
        }
        indices.sort_unstable();
        Ok(Self { backend, layers: indices.into_iter().map(|index| LAYERS[index].name).collect() })
    }

    /// Parses `backend+layer+layer…` (as `--compare` takes it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split('+').map(str::trim);
        let backend = parts.next().filter(|name| !name.is_empty()).ok_or_else(|| {
            format!("configuration `{text}` names no backend; write e.g. `file+metrics`")
        })?;
        let layers: Vec<String> = parts.map(str::to_owned).collect();
        Self::new(backend, &layers)
    }

    /// The backend's table entry.
    pub fn backend(&self) -> &'static Backend {
        backend(self.backend).expect("a spec only holds known backends")
    }

    /// The layers' table entries, outermost first.
    pub fn layers(&self) -> impl Iterator<Item = &'static LayerKind> + '_ {
        self.layers.iter().map(|name| layer(name).expect("a spec only holds known layers"))
    }

    /// True when the stack includes the layer `name`.
    pub fn has_layer(&self, name: &str) -> bool {
        self.layers.contains(&name)
    }

    /// The resolved order, outermost first: `tracing → metrics → file`.
    pub fn resolved_order(&self) -> String {
        let mut order: Vec<&str> = self.layers.clone();
        order.push(self.backend);
        order.join(" → ")
    }

    /// Opens the backend (in `dir` when it uses one) and makes the layers; `label` names the
    /// configuration in the layers' output (metrics store label, tracing namespace).
    pub fn open(&self, label: &str, dir: Option<&Path>) -> Result<OpenStack, StoreError> {
        let factory = (self.backend().open)(dir)?;
        let layers = self.layers().map(|layer| (layer.make)(label)).collect();
        Ok(OpenStack { factory, layers })
    }
}

/// Canonical form: backend first, then layers in table order (`file+tracing+metrics`).
impl fmt::Display for StackSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.backend)?;
        for layer in &self.layers {
            write!(f, "+{layer}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StackSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// An opened backend factory and the layers every handle it opens is wrapped in.
pub struct OpenStack {
    factory: Arc<dyn SessionStoreFactory>,
    /// Outermost first.
    layers: Vec<Box<dyn HandleLayer>>,
}

impl OpenStack {
    /// The tier of every store the backend makes (layers report their inner store's).
    pub fn durability_tier(&self) -> DurabilityTier {
        self.factory.durability_tier()
    }

    fn wrap(
        &self,
        session_id: &str,
        store: Arc<dyn RuntimePersistence>,
    ) -> Arc<dyn RuntimePersistence> {
        self.layers.iter().rev().fold(store, |inner, layer| layer.wrap(session_id, inner))
    }

    /// Creates (or reopens) the session's store, wrapped in the layers.
    pub async fn create_store(
        &self,
        session_id: &str,
    ) -> Result<Arc<dyn RuntimePersistence>, StoreError> {
        let store = self.factory.create_store(SessionStoreRequest::new(session_id)).await?;
        Ok(self.wrap(session_id, store))
    }

    /// Opens the existing session's store, wrapped in the layers (`None` if it never existed).
    pub async fn open_existing_store(
        &self,
        session_id: &str,
    ) -> Result<Option<Arc<dyn RuntimePersistence>>, StoreError> {
        let store = self.factory.open_existing_store(session_id).await?;
        Ok(store.map(|store| self.wrap(session_id, store)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_applied_in_table_order_whatever_order_they_are_typed_in() {
        let typed = StackSpec::parse("file+metrics+tracing").unwrap();
        assert_eq!(typed.to_string(), "file+tracing+metrics");
        assert_eq!(typed.resolved_order(), "tracing → metrics → file");
        let flag = StackSpec::new("file", &["metrics".into(), " tracing".into()]).unwrap();
        assert!(flag == typed);
    }

    #[test]
    fn unknown_and_repeated_names_are_refused_with_the_valid_names() {
        let error = StackSpec::parse("file+cache").unwrap_err();
        assert_eq!(error, "unknown layer `cache`; expected one of: tracing, metrics");
        let error = StackSpec::parse("disk").unwrap_err();
        assert_eq!(error, "unknown backend `disk`; expected one of: file, memory");
        assert_eq!(
            StackSpec::parse("memory+tracing+tracing").unwrap_err(),
            "layer `tracing` is named twice"
        );
        assert!(StackSpec::parse("+metrics").unwrap_err().contains("names no backend"));
    }

    #[test]
    fn help_lists_every_entry_of_both_tables() {
        let help = layers_help();
        assert!(help.contains("tracing → metrics → backend"), "{help}");
        for layer in LAYERS {
            assert!(help.contains(layer.name));
        }
        for backend in BACKENDS {
            assert!(backends_help().contains(backend.name));
        }
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
    async fn opened_handles_are_wrapped_outermost_first() {
        let log = Arc::default();
        let layer =
            |name| Box::new(Logging { name, log: Arc::clone(&log) }) as Box<dyn HandleLayer>;
        let stack = OpenStack {
            factory: Arc::new(MemoryStoreFactory::new()),
            layers: vec![layer("outer"), layer("inner")],
        };
        let store = stack.create_store("s").await.unwrap();
        store.load_node("n").await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["outer", "inner"]);
        let reopened = stack.open_existing_store("s").await.unwrap().expect("the session exists");
        reopened.load_session_meta().await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["outer", "inner", "outer", "inner"]);
        assert!(stack.open_existing_store("other").await.unwrap().is_none());
    }
}
