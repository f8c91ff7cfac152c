//! Test helpers shared by the layers' tests: a capturing `tracing` subscriber layer and a
//! process-wide debugging metrics recorder.

use std::sync::Arc;

use strata_core::{DurabilityTier, Layer, RuntimePersistence};
use strata_file::{FileStore, FileStoreOptions};
use strata_memory::MemoryStore;
use strata_testkit::{SuiteOptions, run_store_suite};

#[cfg(feature = "tracing")]
pub(crate) use capture::Capture;

#[cfg(feature = "tracing")]
mod capture {
    //! The capturing subscriber layer.

    use std::collections::BTreeMap;
    use std::fmt;
    use std::sync::{Arc, Mutex, MutexGuard};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;

    /// One captured span.
    #[derive(Clone, Debug)]
    pub(crate) struct SpanRecord {
        pub name: &'static str,
        pub level: Level,
        /// Name of the parent span, if any.
        pub parent: Option<&'static str>,
        pub fields: BTreeMap<&'static str, String>,
        pub closed: bool,
    }

    impl SpanRecord {
        /// The field's recorded value, if it was recorded.
        pub fn field(&self, name: &str) -> Option<&str> {
            self.fields.get(name).map(String::as_str)
        }
    }

    /// One captured event.
    #[derive(Clone, Debug)]
    pub(crate) struct EventRecord {
        pub level: Level,
        /// Name of the span the event belongs to, if any.
        pub parent: Option<&'static str>,
        pub fields: BTreeMap<&'static str, String>,
    }

    impl EventRecord {
        /// The field's recorded value, if it was recorded.
        pub fn field(&self, name: &str) -> Option<&str> {
            self.fields.get(name).map(String::as_str)
        }
    }

    #[derive(Default)]
    struct Captured {
        spans: Vec<SpanRecord>,
        events: Vec<EventRecord>,
    }

    /// A `tracing_subscriber` layer that keeps every span and event it sees.
    #[derive(Clone, Default)]
    pub(crate) struct Capture(Arc<Mutex<Captured>>);

    /// Where a span's record lives in [`Captured::spans`] (kept in the span's extensions).
    struct Slot(usize);

    struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name(), value.to_owned());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name(), format!("{value:?}"));
        }
    }

    impl Capture {
        fn lock(&self) -> MutexGuard<'_, Captured> {
            self.0.lock().unwrap()
        }

        /// Every span so far, in creation order.
        pub fn spans(&self) -> Vec<SpanRecord> {
            self.lock().spans.clone()
        }

        /// Every event so far, in order.
        pub fn events(&self) -> Vec<EventRecord> {
            self.lock().events.clone()
        }

        /// A subscriber made of this layer over a registry, enabling `max_level` and below.
        pub fn subscriber(&self, max_level: Level) -> impl Subscriber + Send + Sync + use<> {
            use tracing_subscriber::layer::SubscriberExt;
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::from_level(max_level))
                .with(self.clone())
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            let span = ctx.span(id).expect("a new span is registered");
            let mut fields = BTreeMap::new();
            attrs.record(&mut Fields(&mut fields));
            let record = SpanRecord {
                name: attrs.metadata().name(),
                level: *attrs.metadata().level(),
                parent: span.parent().map(|parent| parent.name()),
                fields,
                closed: false,
            };
            let mut captured = self.lock();
            captured.spans.push(record);
            span.extensions_mut().insert(Slot(captured.spans.len() - 1));
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            let span = ctx.span(id).expect("a recorded span is registered");
            if let Some(Slot(index)) = span.extensions().get::<Slot>() {
                values.record(&mut Fields(&mut self.lock().spans[*index].fields));
            }
        }

        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            let parent = ctx.event_span(event).map(|span| span.name());
            self.lock().events.push(EventRecord {
                level: *event.metadata().level(),
                parent,
                fields,
            });
        }

        fn on_close(&self, id: Id, ctx: Context<'_, S>) {
            let span = ctx.span(&id).expect("a closing span is registered");
            if let Some(Slot(index)) = span.extensions().get::<Slot>() {
                self.lock().spans[*index].closed = true;
            }
        }
    }
}

#[cfg(feature = "metrics")]
pub(crate) mod recorder {
    //! The process-wide debugging recorder. Metrics tests hold [`exclusive`] while they run,
    //! because a snapshot resets every series, and label their layer with a store name of
    //! their own.

    use std::sync::OnceLock;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use metrics_util::{CompositeKey, MetricKind};
    use tokio::sync::{Mutex, MutexGuard};

    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    static EXCLUSIVE: Mutex<()> = Mutex::const_new(());

    /// Installs the recorder (once) and serializes metrics tests.
    pub async fn exclusive() -> MutexGuard<'static, ()> {
        SNAPSHOTTER.get_or_init(|| {
            let recorder = DebuggingRecorder::new();
            let snapshotter = recorder.snapshotter();
            recorder.install().expect("no other global recorder in this test binary");
            snapshotter
        });
        EXCLUSIVE.lock().await
    }

    /// One series: kind, name and labels (sorted `key=value`, without the `store` label).
    pub type Series = (MetricKind, String, Vec<String>);

    /// Every series labelled `store=<store>` since the last snapshot, with its value.
    pub fn snapshot(store: &str) -> Vec<(Series, DebugValue)> {
        let snapshot = SNAPSHOTTER.get().expect("exclusive() installs the recorder").snapshot();
        let mut series: Vec<_> = snapshot
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| describe(&key, store).map(|series| (series, value)))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        series
    }

    fn describe(key: &CompositeKey, store: &str) -> Option<Series> {
        let (kind, key) = (key.kind(), key.key());
        key.labels().any(|label| label.key() == "store" && label.value() == store).then(|| {
            let mut labels: Vec<String> = key
                .labels()
                .filter(|label| label.key() != "store")
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            labels.sort();
            (kind, key.name().to_owned(), labels)
        })
    }
}

/// Shared fixtures: a small store stack and the calls the tests script.
pub(crate) mod fixtures {
    use std::future::Future;
    use std::pin::pin;
    use std::task::Poll;

    use strata_core::{
        Bytes, GraphCommitDelta, Layer, RuntimeCommit, RuntimeTurnCommitStamp, SessionNodeRecord,
        StoreBuilder, TokenLedgerEntry, TokenUsage,
    };
    use strata_memory::MemoryStore;
    use strata_testkit::faults::FaultInjection;

    /// `layer → fault injection → in-memory store`, and the fault injector.
    pub fn stack<L>(layer: L) -> (L::Store, FaultInjection)
    where
        L: Layer<strata_core::Decorated<MemoryStore, FaultInjection>>,
    {
        let faults = FaultInjection::new();
        let store = StoreBuilder::new().layer(faults.clone()).build(MemoryStore::new());
        (layer.layer(store), faults)
    }

    /// A root node with this payload.
    pub fn node(id: &str, parent: Option<&str>, payload: &'static [u8]) -> SessionNodeRecord {
        SessionNodeRecord {
            node_id: id.into(),
            parent_node_id: parent.map(Into::into),
            payload: Bytes::from_static(payload),
            timestamp_ms: 1,
            frame_id: None,
            cause: None,
        }
    }

    /// A commit appending `nodes` (leaf: the last), one usage row and one attachment id,
    /// stamped with `turn` when given.
    pub fn commit(
        session: &str,
        expected: Option<u64>,
        nodes: Vec<SessionNodeRecord>,
        turn: Option<&str>,
    ) -> RuntimeCommit {
        let leaf_node_id = nodes.last().map(|node| node.node_id.clone());
        RuntimeCommit {
            session_id: session.into(),
            expected_head_revision: expected,
            config: Bytes::from_static(b"config"),
            graph: GraphCommitDelta::Append { nodes, leaf_node_id },
            usage_deltas: vec![TokenLedgerEntry {
                source: "agent".into(),
                model: "m".into(),
                usage: TokenUsage { input_tokens: 3, ..TokenUsage::default() },
            }],
            turn_commit: turn.map(|turn| RuntimeTurnCommitStamp {
                session_id: session.into(),
                turn_id: turn.into(),
                turn_commit_hash: format!("hash-{turn}"),
            }),
            ..RuntimeCommit::default()
        }
    }

    /// Polls `call` once (it must still be pending), then drops it: a cancelled call.
    pub async fn start_then_drop<F: Future>(call: F) {
        let mut call = pin!(call);
        std::future::poll_fn(|cx| {
            assert!(call.as_mut().poll(cx).is_pending(), "the call should hang");
            Poll::Ready(())
        })
        .await;
    }
}

/// The conformance suite over a layer: once over the in-memory store, once over the durable
/// file store (reopened on the same directory where the suite asks).
pub(crate) async fn run_conformance<L>(layer: L)
where
    L: Layer<MemoryStore> + Layer<FileStore> + Clone + Send + Sync + 'static,
    <L as Layer<MemoryStore>>::Store: RuntimePersistence + 'static,
    <L as Layer<FileStore>>::Store: RuntimePersistence + 'static,
{
    let memory = layer.clone();
    run_store_suite(SuiteOptions::default(), move |ctx| {
        let store = memory.layer(MemoryStore::with_clock(Arc::new(ctx.clock)));
        async move { Arc::new(store) as Arc<dyn RuntimePersistence> }
    })
    .await
    .assert_passed();

    let durable =
        SuiteOptions { tier: DurabilityTier::Durable, reopenable: true, ..Default::default() };
    run_store_suite(durable, move |ctx| {
        let options = FileStoreOptions::default().with_clock(Arc::new(ctx.clock));
        let store = FileStore::open(&ctx.dir, options).expect("the file store opens");
        let store = layer.layer(store);
        async move { Arc::new(store) as Arc<dyn RuntimePersistence> }
    })
    .await
    .assert_passed();
}
