//! What the tool installs so that its output is readable and the observability layers measure
//! real work:
//!
//! - a `tracing-subscriber` registry with two parts. The console part writes the tool's own
//!   diagnostics to stderr at the level chosen by `-q`/`-v`, and the libraries' events (the
//!   layers', the stores', the sweeper's) one level quieter: by default only their errors,
//!   with `-v` their warnings too (the tracing layer logs every transient fault at warn, so a
//!   drill would flood the terminal), pausing the progress bar while it writes. The store part takes every span and
//!   event of the tracing layer up to `--trace-level`, formats it in full with the `fmt`
//!   formatter and discards the text (no I/O, so the figures are the layer's and the
//!   formatter's cost, not the terminal's), and counts the spans it closed;
//! - the Prometheus recorder (`metrics-exporter-prometheus`), installed when a configuration
//!   has a layer that records metrics (metrics, cache, retry, timeout, limit, breaker), with
//!   the metrics layer's documented duration buckets. Its rendering is read back after the
//!   run: the calls the metrics layer counted, and the other layers' counters (cache hits and
//!   misses, retries, timeouts, limiter waits, breaker transitions and rejections).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use indicatif::ProgressBar;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use strata::layers::cache::names as cache_names;
use strata::layers::metrics::{DURATION_BUCKETS, names};
use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing::span::Id;
use tracing_subscriber::Layer;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::stack::StackSpec;

/// The target of the tool's own diagnostics.
const TOOL_TARGET: &str = "strata_cli";

/// One level quieter than `level` (errors stay errors).
fn quieter(level: LevelFilter) -> LevelFilter {
    match level {
        LevelFilter::TRACE => LevelFilter::DEBUG,
        LevelFilter::DEBUG => LevelFilter::INFO,
        LevelFilter::INFO => LevelFilter::WARN,
        LevelFilter::WARN | LevelFilter::ERROR => LevelFilter::ERROR,
        _ => LevelFilter::OFF,
    }
}

/// The target of the tracing layer's spans and events.
const STORE_TARGET: &str = "strata_layers";

/// Handles to what [`install_subscriber`] set up.
#[derive(Clone)]
pub struct Observability {
    console: Console,
    store_spans: Arc<AtomicU64>,
}

impl Observability {
    /// Where the tool's diagnostics go (shared with the progress bar).
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// Spans of the tracing layer recorded (closed) so far.
    pub fn store_spans(&self) -> u64 {
        self.store_spans.load(Ordering::Relaxed)
    }
}

/// Installs the global subscriber: console diagnostics at `console_level`, the tracing
/// layer's spans and events recorded up to `store_level`.
pub fn install_subscriber(console_level: LevelFilter, store_level: LevelFilter) -> Observability {
    let console = Console::default();
    let store_spans = Arc::new(AtomicU64::new(0));
    let console_layer = tracing_subscriber::fmt::layer()
        .with_writer(console.clone())
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(
            Targets::new()
                .with_target(TOOL_TARGET, console_level)
                .with_default(quieter(console_level)),
        );
    let store_layer = tracing_subscriber::fmt::layer()
        .fmt_fields(StoreFields::default())
        .with_writer(std::io::sink)
        .with_ansi(false)
        .and_then(SpanCounter(Arc::clone(&store_spans)))
        .with_filter(Targets::new().with_target(STORE_TARGET, store_level));
    // A second installation (only in a test harness) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(console_layer).with(store_layer).try_init();
    Observability { console, store_spans }
}

/// The default field formatting, as a type of its own: each `fmt` layer keeps a span's
/// formatted fields in the span's extensions under its formatter's type, so two layers with
/// the same type would both append to one string (fields shown twice at `-vv`).
#[derive(Default)]
struct StoreFields(DefaultFields);

impl<'writer> FormatFields<'writer> for StoreFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// Counts closed spans.
struct SpanCounter(Arc<AtomicU64>);

impl<S: Subscriber> Layer<S> for SpanCounter {
    fn on_close(&self, _id: Id, _ctx: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Stderr, shared with the progress bar: a line is written while the bar is hidden, so the
/// two never garble each other.
#[derive(Clone, Default)]
pub struct Console {
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Console {
    /// Routes later writes around `bar` (or straight to stderr with `None`).
    pub fn set_progress_bar(&self, bar: Option<ProgressBar>) {
        *self.bar.lock().unwrap_or_else(PoisonError::into_inner) = bar;
    }

    fn write_line(&self, bytes: &[u8]) {
        let bar = self.bar.lock().unwrap_or_else(PoisonError::into_inner).clone();
        // Nothing sensible is left to do when stderr itself fails.
        let write = || drop(std::io::stderr().lock().write_all(bytes));
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl<'a> MakeWriter<'a> for Console {
    type Writer = ConsoleLine;
    fn make_writer(&'a self) -> ConsoleLine {
        ConsoleLine { console: self.clone(), buffer: Vec::new() }
    }
}

/// One formatted event, written to the console when dropped.
pub struct ConsoleLine {
    console: Console,
    buffer: Vec<u8>,
}

impl Write for ConsoleLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ConsoleLine {
    fn drop(&mut self) {
        if !self.buffer.is_empty() {
            self.console.write_line(&self.buffer);
        }
    }
}

/// Installs the Prometheus recorder as the global `metrics` recorder, with the metrics
/// layer's duration buckets.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(names::OPERATION_DURATION.into()), &DURATION_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| format!("cannot install the Prometheus recorder: {error}"))
}

/// The counters the report reads back for each layer that records some (the metrics
/// layer's calls are read apart): (layer, counter name).
const LAYER_COUNTERS: &[(&str, &str)] = &[
    ("cache", cache_names::HITS),
    ("cache", cache_names::MISSES),
    ("retry", names::RETRIES),
    ("retry", names::RETRIES_EXHAUSTED),
    ("timeout", names::TIMEOUTS),
    ("limit", names::LIMITER_WAITS),
    ("limit", names::LIMITER_REJECTIONS),
    ("breaker", names::CIRCUIT_TRANSITIONS),
    ("breaker", names::CIRCUIT_REJECTIONS),
];

/// True when a layer of `spec` records metrics (so the recorder must be installed).
pub fn records_metrics(spec: &StackSpec) -> bool {
    spec.has_layer("metrics") || LAYER_COUNTERS.iter().any(|(layer, _)| spec.has_layer(layer))
}

/// The counters the layers of `spec` record, by name.
pub fn layer_counters(spec: &StackSpec) -> impl Iterator<Item = &'static str> + '_ {
    LAYER_COUNTERS.iter().filter(|(layer, _)| spec.has_layer(layer)).map(|&(_, name)| name)
}

/// The recorder's current rendering (Prometheus text format).
pub fn render(handle: &PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}

/// The total of counter `name` over the series labelled with the configuration `store`
/// (every operation, outcome, error kind or state), in `rendering`.
pub fn counter(rendering: &str, name: &str, store: &str) -> u64 {
    let label = format!("store=\"{store}\"");
    rendering
        .lines()
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{')))
        .filter(|line| line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_summed_over_operations_and_outcomes_of_one_store() {
        let rendering = "\
# TYPE strata_store_operations_total counter
strata_store_operations_total{operation=\"vacuum\",outcome=\"ok\",store=\"file+metrics\"} 3
strata_store_operations_total{operation=\"commit_runtime_state\",outcome=\"rejected\",store=\"file+metrics\"} 2
strata_store_operations_total{operation=\"vacuum\",outcome=\"ok\",store=\"memory+metrics\"} 7
strata_store_operations_in_flight{operation=\"vacuum\",store=\"file+metrics\"} 0
";
        assert_eq!(counter(rendering, names::OPERATIONS, "file+metrics"), 5);
        assert_eq!(counter(rendering, names::OPERATIONS, "memory+metrics"), 7);
        assert_eq!(counter(rendering, names::OPERATIONS, "file"), 0);
        assert_eq!(counter(rendering, names::IN_FLIGHT, "file+metrics"), 0);
    }

    #[test]
    fn each_layer_that_records_is_read_back_and_tracing_alone_needs_no_recorder() {
        let full = StackSpec::parse("file+full").unwrap();
        assert!(records_metrics(&full));
        assert_eq!(layer_counters(&full).count(), LAYER_COUNTERS.len());
        let cached = StackSpec::parse("memory+cache").unwrap();
        assert_eq!(
            layer_counters(&cached).collect::<Vec<_>>(),
            [cache_names::HITS, cache_names::MISSES]
        );
        assert!(!records_metrics(&StackSpec::parse("file+tracing").unwrap()));
    }

    #[test]
    fn the_libraries_speak_one_level_quieter_than_the_tool() {
        assert_eq!(quieter(LevelFilter::WARN), LevelFilter::ERROR);
        assert_eq!(quieter(LevelFilter::INFO), LevelFilter::WARN);
        assert_eq!(quieter(LevelFilter::ERROR), LevelFilter::ERROR);
        assert_eq!(quieter(LevelFilter::TRACE), LevelFilter::DEBUG);
    }
}
