//! The results of a run, built only from what was measured: [`BenchReport`] is what `--json`
//! writes (serde) and what the table and the HTML page are drawn from.
//!
//! Figures: latencies are per call, in nanoseconds, from the HDR histograms (3 significant
//! digits); `per_second` is an operation's calls divided by its configuration's run time
//! (all operations interleaved, as the workload runs them); ratios divide a configuration's
//! figure by the first configuration's, so above 1 is slower.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::Configuration;
use super::stats::{Op, OpStats, Totals};
use super::workload::Workload;

/// How this binary was built.
pub const BUILD: &str = if cfg!(debug_assertions) { "debug" } else { "release" };

/// The percentiles of each latency curve (100 is the maximum).
pub const PERCENTILES: [f64; 8] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0];

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// `strata bench`.
    pub tool: &'static str,
    /// The tool's version.
    pub version: &'static str,
    /// `release`, or `debug` for an unoptimized build (whose figures say little).
    pub build: &'static str,
    /// CPUs available to the process.
    pub cpus: usize,
    /// The workload's parameters.
    pub workload: Workload,
    /// One entry per configuration, in command-line order.
    pub configurations: Vec<ConfigurationReport>,
    /// Every configuration after the first, against the first.
    pub comparisons: Vec<Comparison>,
    /// Calls that failed unexpectedly, over every configuration.
    pub failed: u64,
}

/// One configuration's results.
#[derive(Debug, Serialize)]
pub struct ConfigurationReport {
    /// Label (`file+metrics`).
    pub label: String,
    /// Resolved order, outermost first (`metrics → file`).
    pub stack: String,
    /// `durable` or `inline`.
    pub durability_tier: &'static str,
    /// Its data directory, kept for `strata inspect`, `verify` and `sweep` (only with
    /// `--dir`).
    pub dir: Option<String>,
    /// Wall time of the configuration's slices, summed.
    pub seconds: f64,
    /// Turns completed per second of that time.
    pub turns_per_second: f64,
    /// What the stores acknowledged.
    pub totals: Totals,
    /// Calls on store handles (what a layer in the stack sees).
    pub store_calls: u64,
    /// Spans the tracing layer's subscriber recorded (configurations with that layer).
    pub tracing_spans: Option<u64>,
    /// Calls the metrics layer's recorder counted (configurations with that layer).
    pub metrics_calls: Option<u64>,
    /// What the other layers recorded, by counter name (cache hits and misses, retries,
    /// timeouts, limiter waits and rejections, breaker transitions and rejections).
    pub layer_counters: BTreeMap<&'static str, u64>,
    /// What the fault drill injected (with `--faults`).
    pub faults: Option<FaultsReport>,
    /// Sessions a failure stopped early.
    pub sessions_stopped: u64,
    /// Calls that failed unexpectedly.
    pub failed: u64,
    /// The first failures, described.
    pub failures: Vec<String>,
    /// One entry per operation, in workload order (also those never called).
    pub operations: Vec<OperationReport>,
}

/// What the fault drill did to one configuration.
#[derive(Debug, Serialize)]
pub struct FaultsReport {
    /// Store calls that reached the drill layer (retries included; cache hits never do).
    pub calls: u64,
    /// Faults it injected.
    pub injected: u64,
    /// Faults it injected, by store operation (those with any).
    pub by_operation: BTreeMap<&'static str, u64>,
    /// Calls the workload saw fail with a fault of the drill (the `faulted` and `ambiguous`
    /// counts of every operation): what the layers did not absorb.
    pub surfaced: u64,
    /// Of those, the calls whose effect the workload could not resolve.
    pub ambiguous: u64,
    /// Sessions such a call stopped (their state unknown to the workload).
    pub sessions_stopped: u64,
}

/// One operation's results.
#[derive(Debug, Serialize)]
pub struct OperationReport {
    /// Operation name (see `strata bench --help`).
    pub name: &'static str,
    /// Calls made.
    pub calls: u64,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls refused the way the workload provoked on purpose.
    pub expected: u64,
    /// Calls failed by the fault drill, whose effect the workload knew or resolved.
    pub faulted: u64,
    /// Calls failed by the fault drill, whose effect the workload could not resolve.
    pub ambiguous: u64,
    /// Calls that failed unexpectedly.
    pub failed: u64,
    /// Calls per second of the configuration's run time.
    pub per_second: f64,
    /// Latency figures; `None` when never called.
    pub latency_ns: Option<Latency>,
}

/// Latency figures of one operation, in nanoseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Fastest call.
    pub min: u64,
    /// Mean.
    pub mean: u64,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Slowest call.
    pub max: u64,
    /// The curve at [`PERCENTILES`].
    pub percentiles: Vec<Point>,
}

/// One point of a latency curve.
#[derive(Debug, Serialize)]
pub struct Point {
    /// Percentile (100 = the maximum).
    pub percentile: f64,
    /// Latency at that percentile, in nanoseconds.
    pub ns: u64,
}

/// One configuration against the first.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// The configuration.
    pub label: String,
    /// The first configuration.
    pub baseline: String,
    /// Run time over the baseline's (same workload).
    pub time_ratio: f64,
    /// Operations both called, in workload order.
    pub operations: Vec<OperationRatio>,
}

/// One operation's latencies over the baseline's.
#[derive(Debug, Serialize)]
pub struct OperationRatio {
    /// Operation name.
    pub name: &'static str,
    /// p50 over the baseline's p50.
    pub p50: f64,
    /// p95 ratio.
    pub p95: f64,
    /// p99 ratio.
    pub p99: f64,
    /// max ratio.
    pub max: f64,
}

/// Columns of a configuration's table (text and HTML); `faults` and `ambiguous` only for
/// runs under the fault drill.
pub fn operation_columns(drilled: bool) -> Vec<&'static str> {
    let mut columns = vec!["operation", "calls", "per s", "p50", "p95", "p99", "max", "expected"];
    if drilled {
        columns.extend(["faults", "ambiguous"]);
    }
    columns.push("failed");
    columns
}

/// Columns of a comparison's table (text and HTML).
pub const RATIO_COLUMNS: [&str; 5] = ["operation", "p50", "p95", "p99", "max"];

impl ConfigurationReport {
    /// `2400 turns in 6.36 s, 378 turns/s`.
    pub fn headline(&self) -> String {
        format!(
            "{} turns in {:.2} s, {} turns/s",
            self.totals.turns,
            self.seconds,
            format_rate(self.turns_per_second)
        )
    }

    /// One row per operation called, under [`operation_columns`].
    pub fn rows(&self) -> Vec<Vec<String>> {
        let called = self.operations.iter().filter_map(|op| Some((op, op.latency_ns.as_ref()?)));
        called
            .map(|(op, latency)| {
                let mut row = vec![
                    op.name.to_owned(),
                    op.calls.to_string(),
                    format_rate(op.per_second),
                    format_ns(latency.p50),
                    format_ns(latency.p95),
                    format_ns(latency.p99),
                    format_ns(latency.max),
                    op.expected.to_string(),
                ];
                if self.faults.is_some() {
                    row.extend([op.faulted.to_string(), op.ambiguous.to_string()]);
                }
                row.push(op.failed.to_string());
                row
            })
            .collect()
    }

    /// Sentences under the table: what the stores acknowledged, what the layers and the
    /// drill recorded, where the data was kept.
    pub fn notes(&self) -> Vec<String> {
        let t = &self.totals;
        let mut notes = vec![format!(
            "Acknowledged: {} nodes ({} payload bytes), {} batches completed, {} usage rows, \
             {} attachments put ({} bytes) and {} committed; maintenance: {} tombstoned, {} \
             vacuumed, {} blobs collected.",
            t.nodes_appended,
            t.node_payload_bytes,
            t.batches_completed,
            t.usage_rows,
            t.attachments_put,
            t.attachment_bytes,
            t.attachments_committed,
            t.nodes_tombstoned,
            t.nodes_vacuumed,
            t.blobs_collected
        )];
        if self.label.ends_with(&format!("+{}", crate::stack::FULL)) {
            notes.push(format!("{}.", crate::stack::full_meaning()));
        }
        let calls = self.store_calls;
        if let Some(spans) = self.tracing_spans {
            notes.push(format!("Tracing layer: {spans} spans recorded for {calls} store calls."));
        }
        if let Some(counted) = self.metrics_calls {
            notes.push(format!(
                "Metrics layer: {counted} calls counted by the Prometheus recorder for {calls} store calls."
            ));
        }
        notes.extend(self.layer_notes());
        if let Some(faults) = &self.faults {
            notes.push(format!(
                "Fault drill: {} faults injected into {} store calls; {} reached the workload \
                 ({} ambiguous, stopping {} sessions), the layers absorbed the rest. Stranded \
                 batches: {}; abandoned attachment puts: {}.",
                faults.injected,
                faults.calls,
                faults.surfaced,
                faults.ambiguous,
                faults.sessions_stopped,
                t.batches_stranded,
                t.attachments_abandoned
            ));
        }
        if let Some(dir) = &self.dir {
            notes.push(format!("Data kept in {dir} (strata inspect / verify / sweep {dir})."));
        }
        notes
    }

    /// One sentence per layer that recorded counters.
    fn layer_notes(&self) -> Vec<String> {
        use strata::layers::cache::names as cache;
        use strata::layers::metrics::names;
        let count = |name: &str| self.layer_counters.get(name).copied();
        let mut notes = Vec::new();
        if let (Some(hits), Some(misses)) = (count(cache::HITS), count(cache::MISSES)) {
            let rate = 100.0 * hits as f64 / (hits + misses).max(1) as f64;
            notes.push(format!("Cache layer: {hits} hits, {misses} misses ({rate:.1} % hits)."));
        }
        if let (Some(retries), Some(exhausted)) =
            (count(names::RETRIES), count(names::RETRIES_EXHAUSTED))
        {
            notes.push(format!("Retry layer: {retries} retries, {exhausted} calls given up."));
        }
        if let Some(timeouts) = count(names::TIMEOUTS) {
            notes.push(format!("Timeout layer: {timeouts} attempts cut off."));
        }
        if let (Some(waits), Some(rejections)) =
            (count(names::LIMITER_WAITS), count(names::LIMITER_REJECTIONS))
        {
            notes.push(format!(
                "Limit layer: {waits} calls waited for a permit, {rejections} rejected."
            ));
        }
        if let (Some(transitions), Some(rejections)) =
            (count(names::CIRCUIT_TRANSITIONS), count(names::CIRCUIT_REJECTIONS))
        {
            notes.push(format!(
                "Breaker layer: {transitions} state transitions, {rejections} calls turned away."
            ));
        }
        notes
    }

    /// `3 calls failed unexpectedly, 1 session stopped; first failures`, when any did.
    pub fn failure_summary(&self) -> Option<String> {
        (self.failed > 0).then(|| {
            format!(
                "{} calls failed unexpectedly, {} sessions stopped; first failures",
                self.failed, self.sessions_stopped
            )
        })
    }

    /// The resolved stack (when it has layers) and the tier: `tracing → file, durable`.
    pub fn description(&self) -> String {
        if self.stack.contains('→') {
            format!("{}, {}", self.stack, self.durability_tier)
        } else {
            self.durability_tier.to_owned()
        }
    }
}

impl Comparison {
    /// `file+metrics against file: run time 1.02× (above 1.00× is slower)`.
    pub fn headline(&self) -> String {
        format!(
            "{} against {}: run time {} (above 1.00× is slower)",
            self.label,
            self.baseline,
            format_ratio(self.time_ratio)
        )
    }

    /// One row per operation, under [`RATIO_COLUMNS`].
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.operations
            .iter()
            .map(|op| {
                let [p50, p95, p99, max] = [op.p50, op.p95, op.p99, op.max].map(format_ratio);
                vec![op.name.to_owned(), p50, p95, p99, max]
            })
            .collect()
    }
}

impl BenchReport {
    /// The report of `configurations` after a run of `workload`; `kept_dirs` when the
    /// stores' directories outlive the run (`--dir`).
    pub fn new(workload: &Workload, configurations: &[Configuration], kept_dirs: bool) -> Self {
        let configurations: Vec<ConfigurationReport> = configurations
            .iter()
            .map(|configuration| configuration_report(configuration, kept_dirs))
            .collect();
        let comparisons = match configurations.split_first() {
            Some((baseline, others)) => {
                others.iter().map(|other| compare(baseline, other)).collect()
            }
            None => Vec::new(),
        };
        Self {
            tool: "strata bench",
            version: env!("CARGO_PKG_VERSION"),
            build: BUILD,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            workload: workload.clone(),
            failed: configurations.iter().map(|configuration| configuration.failed).sum(),
            configurations,
            comparisons,
        }
    }

    /// The first failure described, if any call failed unexpectedly.
    pub fn first_failure(&self) -> Option<&str> {
        self.configurations
            .iter()
            .flat_map(|configuration| &configuration.failures)
            .next()
            .map(String::as_str)
    }

    /// `strata bench 0.1.0`, with `(debug build)` when it is one.
    pub fn title(&self) -> String {
        match self.build {
            "release" => format!("strata bench {}", self.version),
            build => format!("strata bench {} ({build} build)", self.version),
        }
    }

    /// One line describing the workload.
    pub fn workload_line(&self) -> String {
        let w = &self.workload;
        let attachments = match w.attachment_every {
            0 => "no attachments".to_owned(),
            every => format!("a {} B attachment every {every} turns", w.attachment_bytes),
        };
        let drill = match &w.faults {
            Some(drill) => format!(" · fault drill at rate {} (seed {})", drill.rate, drill.seed),
            None => String::new(),
        };
        format!(
            "{} sessions × {} turns · {} path nodes + 1 draft per turn, {} B JSON payloads · {} inputs per turn · \
             {attachments} · concurrency {} · {} rounds · {} CPUs{drill}",
            w.sessions,
            w.turns,
            w.nodes_per_turn,
            w.payload_bytes,
            w.inputs_per_turn,
            w.concurrency,
            w.rounds,
            self.cpus
        )
    }

    /// Writes the human-readable tables.
    pub fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "{} · {}", self.title(), self.workload_line())?;
        for configuration in &self.configurations {
            writeln!(out)?;
            write_configuration(out, configuration)?;
        }
        for comparison in &self.comparisons {
            writeln!(out)?;
            write_comparison(out, comparison)?;
        }
        Ok(())
    }
}

fn configuration_report(configuration: &Configuration, kept_dirs: bool) -> ConfigurationReport {
    let recorder = &configuration.recorder;
    let seconds = configuration.elapsed.as_secs_f64();
    let rate = |count: u64| if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
    let operations = Op::ALL
        .iter()
        .map(|&op| {
            let stats = recorder.op(op);
            OperationReport {
                name: op.name(),
                calls: stats.calls(),
                ok: stats.ok,
                expected: stats.expected,
                faulted: stats.faulted,
                ambiguous: stats.ambiguous,
                failed: stats.failed,
                per_second: rate(stats.calls()),
                latency_ns: latency(stats),
            }
        })
        .collect();
    let faults = configuration.faults_injected().map(|(by_operation, calls)| {
        let ops = || Op::ALL.iter().map(|&op| recorder.op(op));
        FaultsReport {
            calls,
            injected: by_operation.iter().map(|(_, count)| count).sum(),
            by_operation: by_operation.into_iter().collect(),
            surfaced: ops().map(|stats| stats.faulted + stats.ambiguous).sum(),
            ambiguous: ops().map(|stats| stats.ambiguous).sum(),
            sessions_stopped: recorder.ambiguous_stops,
        }
    });
    ConfigurationReport {
        label: configuration.label.clone(),
        stack: configuration.order.clone(),
        durability_tier: match configuration.tier {
            strata::DurabilityTier::Durable => "durable",
            strata::DurabilityTier::Inline => "inline",
        },
        dir: configuration.dir.as_ref().filter(|_| kept_dirs).map(|dir| dir.display().to_string()),
        seconds,
        turns_per_second: rate(recorder.totals.turns),
        totals: recorder.totals,
        store_calls: recorder.store_calls(),
        tracing_spans: configuration.tracing_spans,
        metrics_calls: configuration.metrics_calls,
        layer_counters: configuration.layer_counters.iter().copied().collect(),
        faults,
        sessions_stopped: configuration.sessions_stopped(),
        failed: recorder.failed(),
        failures: recorder.failures.clone(),
        operations,
    }
}

fn latency(stats: &OpStats) -> Option<Latency> {
    let histogram = &stats.latency;
    if histogram.is_empty() {
        return None;
    }
    let at = |percentile: f64| histogram.value_at_quantile(percentile / 100.0);
    Some(Latency {
        min: histogram.min(),
        mean: histogram.mean().round() as u64,
        p50: at(50.0),
        p95: at(95.0),
        p99: at(99.0),
        max: histogram.max(),
        percentiles: PERCENTILES
            .iter()
            .map(|&percentile| Point {
                percentile,
                ns: if percentile >= 100.0 { histogram.max() } else { at(percentile) },
            })
            .collect(),
    })
}

fn compare(baseline: &ConfigurationReport, other: &ConfigurationReport) -> Comparison {
    let ratio = |value: u64, base: u64| value as f64 / base.max(1) as f64;
    let operations = baseline
        .operations
        .iter()
        .zip(&other.operations)
        .filter_map(|(base, op)| {
            let (base, latency) = (base.latency_ns.as_ref()?, op.latency_ns.as_ref()?);
            Some(OperationRatio {
                name: op.name,
                p50: ratio(latency.p50, base.p50),
                p95: ratio(latency.p95, base.p95),
                p99: ratio(latency.p99, base.p99),
                max: ratio(latency.max, base.max),
            })
        })
        .collect();
    Comparison {
        label: other.label.clone(),
        baseline: baseline.label.clone(),
        time_ratio: if baseline.seconds > 0.0 { other.seconds / baseline.seconds } else { 0.0 },
        operations,
    }
}

/// A duration in nanoseconds with three significant digits and a fitting unit.
pub fn format_ns(ns: u64) -> String {
    let value = ns as f64;
    let (scaled, unit) = match ns {
        0..1_000 => return format!("{ns} ns"),
        1_000..1_000_000 => (value / 1e3, "µs"),
        1_000_000..1_000_000_000 => (value / 1e6, "ms"),
        _ => (value / 1e9, "s"),
    };
    let decimals = match scaled {
        s if s < 10.0 => 2,
        s if s < 100.0 => 1,
        _ => 0,
    };
    format!("{scaled:.decimals$} {unit}")
}

/// A ratio with a precision that fits its size: `0.0421×`, `0.988×`, `1.02×`, `12.3×`.
pub fn format_ratio(ratio: f64) -> String {
    let decimals = match ratio {
        r if r < 0.1 => 4,
        r if r < 1.0 => 3,
        r if r < 10.0 => 2,
        _ => 1,
    };
    format!("{ratio:.decimals$}×")
}

/// A rate with a precision that fits its size.
pub fn format_rate(rate: f64) -> String {
    if rate >= 100.0 { format!("{rate:.0}") } else { format!("{rate:.1}") }
}

/// A text table: `header` and `rows`, right-aligned except the first column.
pub(crate) fn write_rows(
    out: &mut impl Write,
    header: &[&str],
    rows: Vec<Vec<String>>,
) -> std::io::Result<()> {
    let header: Vec<String> = header.iter().map(|&column| column.to_owned()).collect();
    let rows: Vec<Vec<String>> = std::iter::once(header).chain(rows).collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[column] - cell.chars().count());
            if column == 0 {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str("  ");
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn write_configuration(out: &mut impl Write, c: &ConfigurationReport) -> std::io::Result<()> {
    writeln!(out, "{} ({}): {}", c.label, c.description(), c.headline())?;
    write_rows(out, &operation_columns(c.faults.is_some()), c.rows())?;
    for note in c.notes() {
        writeln!(out, "{note}")?;
    }
    if let Some(summary) = c.failure_summary() {
        writeln!(out, "FAILED: {summary}:")?;
        for failure in &c.failures {
            writeln!(out, "  {failure}")?;
        }
    }
    Ok(())
}

fn write_comparison(out: &mut impl Write, comparison: &Comparison) -> std::io::Result<()> {
    writeln!(out, "{}", comparison.headline())?;
    write_rows(out, &RATIO_COLUMNS, comparison.rows())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_three_significant_digits() {
        assert_eq!(format_ns(812), "812 ns");
        assert_eq!(format_ns(1_234), "1.23 µs");
        assert_eq!(format_ns(152_400), "152 µs");
        assert_eq!(format_ns(12_345_678), "12.3 ms");
        assert_eq!(format_ns(2_500_000_000), "2.50 s");
    }

    #[test]
    fn ratios_keep_a_fitting_precision() {
        assert_eq!(format_ratio(0.004_213), "0.0042×");
        assert_eq!(format_ratio(0.9876), "0.988×");
        assert_eq!(format_ratio(1.0234), "1.02×");
        assert_eq!(format_ratio(12.34), "12.3×");
    }

    #[test]
    fn rows_are_aligned() {
        let mut out = Vec::new();
        write_rows(&mut out, &["op", "calls"], vec![vec!["vacuum".into(), "7".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "op      calls\nvacuum      7\n");
    }
}
