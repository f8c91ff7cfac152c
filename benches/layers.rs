//! Per-layer overhead of the observability and policy layers over the in-memory store, in the
//! same run as the bare store: a read (`load_node`, a hit) and a commit (blind, no graph
//! change).
//!
//! ```text
//! cargo bench --bench layers
//! ```
//!
//! Groups (each with `load_node/…` and `commit/…`):
//! - `bare`: the in-memory store; `pass_through`: one do-nothing `Around` layer (the cost of
//!   the forwarding machinery every around-decorator shares);
//! - `tracing/off`, `metrics/off`, `tracing+metrics/off`: no subscriber, no recorder;
//! - `retry`, `timeout`, `limit`, `breaker`, `faults/idle` (nothing armed): each policy layer
//!   alone at its defaults, on the happy path (no recorder installed); `policy`: the four
//!   policy layers stacked in the recommended order (retry → timeout → limit → breaker);
//! - `tracing/filtered`: a `tracing-subscriber` registry with a `warn` filter (the store spans
//!   are filtered out); `metrics/recorded`: the Prometheus recorder; `tracing+metrics/installed`:
//!   both.
//!
//! `…/time` is the time per call; `…/overhead` is the time per call minus the bare store's,
//! measured back to back within each sample, from the fastest of ten rounds on each store (the
//! figure to read on a busy machine: a round another process interrupted is not the fastest).
//!
//! Every sample runs its calls in one loop inside one `block_on` (current-thread runtime), so
//! the figures hold no per-call executor overhead. The variants with nothing installed run
//! first: installing a subscriber changes `tracing`'s cached callsite interest for the rest of
//! the process. The recorder is a local one (`metrics::with_local_recorder` while the layer
//! builds its handles), so no global state leaks between variants; its histograms are drained
//! (`run_upkeep`) between samples, outside the timing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use strata::layers::metrics::{DURATION_BUCKETS, names};
use strata::layers::{
    CircuitBreakerLayer, ConcurrencyLimitLayer, FaultInjection, MetricsLayer, RetryLayer,
    TimeoutLayer, TracingLayer,
};
use strata::memory::MemoryStore;
use strata::{
    Bytes, GraphCommitDelta, PassThrough, RuntimeCommit, RuntimePersistence, SessionNodeRecord,
    StoreBuilder,
};
use tokio::runtime::Runtime;

const SESSION: &str = "bench";
const NODE: &str = "n1";

/// A store holding one node, `NODE`.
fn seeded<S: RuntimePersistence + 'static>(rt: &Runtime, store: S) -> Arc<dyn RuntimePersistence> {
    let store: Arc<dyn RuntimePersistence> = Arc::new(store);
    let node = SessionNodeRecord {
        node_id: NODE.into(),
        parent_node_id: None,
        payload: Bytes::from_static(b"payload"),
        timestamp_ms: 0,
        frame_id: None,
        cause: None,
    };
    let commit = RuntimeCommit {
        session_id: SESSION.into(),
        graph: GraphCommitDelta::Append { nodes: vec![node], leaf_node_id: Some(NODE.into()) },
        ..RuntimeCommit::default()
    };
    rt.block_on(store.commit_runtime_state(commit)).expect("seed commit");
    store
}

/// A blind commit that changes nothing but the head revision (so the state does not grow).
fn blind_commit() -> RuntimeCommit {
    RuntimeCommit {
        session_id: SESSION.into(),
        config: Bytes::from_static(b"config"),
        graph: GraphCommitDelta::Unchanged { leaf_node_id: Some(NODE.into()) },
        ..RuntimeCommit::default()
    }
}

/// Runs `iterations` reads of `NODE` on `store`; the elapsed time.
fn reads(rt: &Runtime, store: &Arc<dyn RuntimePersistence>, iterations: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(store.load_node(black_box(NODE)).await.expect("read"));
        }
        start.elapsed()
    })
}

/// Runs `iterations` blind commits on `store`; the elapsed time (building them excluded).
fn commits(rt: &Runtime, store: &Arc<dyn RuntimePersistence>, iterations: u64) -> Duration {
    let commits: Vec<_> = (0..iterations).map(|_| blind_commit()).collect();
    rt.block_on(async {
        let start = Instant::now();
        for commit in commits {
            black_box(store.commit_runtime_state(commit).await.expect("commit"));
        }
        start.elapsed()
    })
}

type Workload = fn(&Runtime, &Arc<dyn RuntimePersistence>, u64) -> Duration;

/// Rounds per overhead sample (see [`bench_store`]).
const ROUNDS: u64 = 10;

/// The group `name`: for a read and a commit, the time of `store` alone (`…/time`) and its
/// overhead over `bare` (`…/overhead`: each sample runs its calls in [`ROUNDS`] rounds, each
/// round on both stores back to back, and reports the difference between the fastest round of
/// each, so that neither load drifting between samples nor a round interrupted by another
/// process counts). `between` runs after every sample, outside the timing.
fn bench_store(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    bare: &Arc<dyn RuntimePersistence>,
    store: &Arc<dyn RuntimePersistence>,
    between: &dyn Fn(),
) {
    let mut group = c.benchmark_group(name);
    let workloads: [(&str, Workload); 2] = [("load_node", reads), ("commit", commits)];
    for (operation, workload) in workloads {
        group.bench_function(format!("{operation}/time"), |b| {
            b.iter_custom(|iterations| {
                let elapsed = workload(rt, store, iterations);
                between();
                elapsed
            })
        });
        if !Arc::ptr_eq(bare, store) {
            group.bench_function(format!("{operation}/overhead"), |b| {
                b.iter_custom(|iterations| {
                    let calls = iterations.div_ceil(ROUNDS);
                    let (mut layered, mut baseline) = (Duration::MAX, Duration::MAX);
                    for _ in 0..ROUNDS {
                        layered = layered.min(workload(rt, store, calls));
                        baseline = baseline.min(workload(rt, bare, calls));
                    }
                    between();
                    let per_call = layered.saturating_sub(baseline).as_secs_f64() / calls as f64;
                    // A sample where noise made the layered run faster counts as (almost) no
                    // overhead: criterion cannot take a zero or negative time, and clamping
                    // keeps the reported mean conservative (never below the true mean).
                    Duration::from_secs_f64(per_call * iterations as f64)
                        .max(Duration::from_nanos(1))
                })
            });
        }
    }
    group.finish();
}

fn prometheus() -> (metrics_exporter_prometheus::PrometheusRecorder, PrometheusHandle) {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::OPERATION_DURATION.into()), &DURATION_BUCKETS)
        .expect("valid buckets")
        .build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

fn layers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let nothing = &|| {};
    let memory = || MemoryStore::new();
    let bare = seeded(&rt, memory());
    let mut run = |name: &str, store: Arc<dyn RuntimePersistence>, between: &dyn Fn()| {
        bench_store(c, &rt, name, &bare, &store, between)
    };

    // Nothing installed.
    run("bare", bare.clone(), nothing);
    run(
        "pass_through",
        seeded(&rt, StoreBuilder::new().layer(PassThrough::default()).build(memory())),
        nothing,
    );
    run(
        "tracing/off",
        seeded(&rt, StoreBuilder::new().layer(TracingLayer::default()).build(memory())),
        nothing,
    );
    run(
        "metrics/off",
        seeded(&rt, StoreBuilder::new().layer(MetricsLayer::default()).build(memory())),
        nothing,
    );
    let both = StoreBuilder::new().layer(TracingLayer::default()).layer(MetricsLayer::default());
    run("tracing+metrics/off", seeded(&rt, both.build(memory())), nothing);

    // The policy layers, each alone and the four together, on the happy path.
    run(
        "retry",
        seeded(&rt, StoreBuilder::new().layer(RetryLayer::default()).build(memory())),
        nothing,
    );
    run(
        "timeout",
        seeded(&rt, StoreBuilder::new().layer(TimeoutLayer::default()).build(memory())),
        nothing,
    );
    run(
        "limit",
        seeded(&rt, StoreBuilder::new().layer(ConcurrencyLimitLayer::default()).build(memory())),
        nothing,
    );
    run(
        "breaker",
        seeded(&rt, StoreBuilder::new().layer(CircuitBreakerLayer::default()).build(memory())),
        nothing,
    );
    run(
        "faults/idle",
        seeded(&rt, StoreBuilder::new().layer(FaultInjection::new()).build(memory())),
        nothing,
    );
    let policy = StoreBuilder::new()
        .layer(RetryLayer::default())
        .layer(TimeoutLayer::default())
        .layer(ConcurrencyLimitLayer::default())
        .layer(CircuitBreakerLayer::default());
    run("policy", seeded(&rt, policy.build(memory())), nothing);

    // A subscriber filtering the store spans out (warn), and a Prometheus recorder.
    let subscriber = {
        use tracing_subscriber::layer::SubscriberExt;
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::WARN)
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
    };
    let _subscriber = tracing::subscriber::set_default(subscriber);
    run(
        "tracing/filtered",
        seeded(&rt, StoreBuilder::new().layer(TracingLayer::default()).build(memory())),
        nothing,
    );
    let (recorder, handle) = prometheus();
    let drain = &|| handle.run_upkeep();
    // `seeded` makes the layer's first calls (a commit; then a read below), which build its
    // handles against the local recorder; they keep recording into it afterwards.
    let warm = |store: Arc<dyn RuntimePersistence>| {
        rt.block_on(store.load_node(NODE)).expect("warm-up read");
        store
    };
    let recorded = metrics::with_local_recorder(&recorder, || {
        warm(seeded(&rt, StoreBuilder::new().layer(MetricsLayer::default()).build(memory())))
    });
    run("metrics/recorded", recorded, drain);
    let installed =
        metrics::with_local_recorder(&recorder, || warm(seeded(&rt, both.build(memory()))));
    run("tracing+metrics/installed", installed, drain);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40);
    targets = layers
}
criterion_main!(benches);
