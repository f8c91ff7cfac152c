//! The `--report` page: one self-contained HTML file (inline CSS and SVG, no script or font
//! from anywhere else) with the workload, each configuration's table, the comparisons, an
//! overview chart (p50 bar and p99 whisker of every operation per configuration) and one
//! percentile chart per operation (latency at p50 … p99.99 and max, one curve per
//! configuration). Both axes of latency are logarithmic.
//!
//! Every data point is an SVG `circle.point` carrying its configuration, operation,
//! percentile and value (`data-*`) and a tooltip (`<title>`). A few lines of inline script
//! write, on each chart, how many points the browser actually laid out
//! (`data-rendered-points`): the headless-browser test reads that from the rendered DOM.

use std::fmt::Write;

use super::report::{
    BenchReport, ConfigurationReport, Latency, RATIO_COLUMNS, format_ns, operation_columns,
};

/// Okabe–Ito colours (distinguishable with colour-blindness), one per configuration.
const COLOURS: [&str; 8] =
    ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"];

fn colour(index: usize) -> &'static str {
    COLOURS[index % COLOURS.len()]
}

/// Text safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #1b1b1b; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; }
.workload { color: #444; }
table { border-collapse: collapse; margin: 8px 0 4px; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #e3e3e3; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.note { color: #555; margin: 2px 0; }
.failed { color: #b00020; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(500px, 1fr)); gap: 12px; }
figure { margin: 0; border: 1px solid #e3e3e3; border-radius: 4px; padding: 8px; }
figcaption { font-weight: 600; margin-bottom: 4px; font-family: ui-monospace, monospace; }
svg.chart { display: block; width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
.axis line, .grid-line { stroke: #d8d8d8; }
.legend span { margin-right: 18px; }
";

/// Marks each chart with the number of points the browser laid out.
const SCRIPT: &str = "
for (const chart of document.querySelectorAll('svg.chart')) {
  const laidOut = [...chart.querySelectorAll('.point')].filter((point) => {
    const box = point.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  });
  chart.dataset.renderedPoints = String(laidOut.length);
}
";

/// The whole page.
pub fn render(report: &BenchReport) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>strata bench report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>strata bench</h1>\n<p class=\"workload\">{} · {}</p>\n",
        escape(&report.title()),
        escape(&report.workload_line())
    );
    legend(&mut page, report);
    page.push_str("<h2>Results</h2>\n");
    for (index, configuration) in report.configurations.iter().enumerate() {
        configuration_table(&mut page, index, configuration);
    }
    if !report.comparisons.is_empty() {
        page.push_str("<h2>Compared with the first configuration</h2>\n");
        comparisons(&mut page, report);
    }
    page.push_str(
        "<h2>Latency by operation</h2>\n<p class=\"note\">Bar: p50; whisker and dot: p99 \
         (logarithmic scale). Hover a dot for its value.</p>\n",
    );
    overview_chart(&mut page, report);
    page.push_str(
        "<h2>Latency percentiles</h2>\n<p class=\"note\">Latency at each percentile, \
         both axes logarithmic; the last point is the slowest call.</p>\n<div class=\"grid\">\n",
    );
    for (index, name) in called_operations(report).into_iter().enumerate() {
        percentile_chart(&mut page, report, index, name);
    }
    let _ = write!(page, "</div>\n<script>{SCRIPT}</script>\n</body>\n</html>\n");
    page
}

fn legend(page: &mut String, report: &BenchReport) {
    page.push_str("<p class=\"legend\">");
    for (index, configuration) in report.configurations.iter().enumerate() {
        let _ = write!(
            page,
            "<span><i class=\"swatch\" style=\"background:{}\"></i>{} ({})</span>",
            colour(index),
            escape(&configuration.label),
            escape(&configuration.description())
        );
    }
    page.push_str("</p>\n");
}

/// A table: `header`, then `rows`; a non-zero cell of a `failed` column is marked.
fn table(page: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    page.push_str("<table>\n<tr>");
    for column in header {
        let _ = write!(page, "<th>{column}</th>");
    }
    page.push_str("</tr>\n");
    for row in rows {
        page.push_str("<tr>");
        for (column, cell) in row.iter().enumerate() {
            let failed = header.get(column) == Some(&"failed") && cell != "0";
            let class = if failed { " class=\"failed\"" } else { "" };
            let _ = write!(page, "<td{class}>{}</td>", escape(cell));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

fn configuration_table(page: &mut String, index: usize, c: &ConfigurationReport) {
    let _ = writeln!(
        page,
        "<h3><i class=\"swatch\" style=\"background:{}\"></i>{}</h3>\n<p class=\"note\">{} · {}</p>",
        colour(index),
        escape(&c.label),
        escape(&c.description()),
        escape(&c.headline())
    );
    table(page, &operation_columns(c.faults.is_some()), c.rows());
    for note in c.notes() {
        let _ = writeln!(page, "<p class=\"note\">{}</p>", escape(&note));
    }
    if let Some(summary) = c.failure_summary() {
        let _ = writeln!(page, "<p class=\"failed\">{}:</p>\n<ul>", escape(&summary));
        for failure in &c.failures {
            let _ = writeln!(page, "<li>{}</li>", escape(failure));
        }
        page.push_str("</ul>\n");
    }
}

fn comparisons(page: &mut String, report: &BenchReport) {
    for comparison in &report.comparisons {
        let _ = writeln!(page, "<p class=\"note\">{}</p>", escape(&comparison.headline()));
        table(page, &RATIO_COLUMNS, comparison.rows());
    }
}

/// Operations some configuration called, in workload order.
fn called_operations(report: &BenchReport) -> Vec<&'static str> {
    let Some(first) = report.configurations.first() else { return Vec::new() };
    first
        .operations
        .iter()
        .map(|op| op.name)
        .filter(|name| report.configurations.iter().any(|c| latency_of(c, name).is_some()))
        .collect()
}

fn latency_of<'a>(configuration: &'a ConfigurationReport, name: &str) -> Option<&'a Latency> {
    configuration.operations.iter().find(|op| op.name == name)?.latency_ns.as_ref()
}

/// A logarithmic scale from `[low, high]` nanoseconds (widened to whole decades) onto
/// `[start, end]` pixels.
struct LogScale {
    low: f64,
    high: f64,
    start: f64,
    end: f64,
}

impl LogScale {
    fn new(low: u64, high: u64, start: f64, end: f64) -> Self {
        let low = (low.max(1) as f64).log10().floor();
        let mut high = (high.max(1) as f64).log10().ceil();
        if high <= low {
            high = low + 1.0;
        }
        Self { low, high, start, end }
    }

    fn at(&self, ns: u64) -> f64 {
        let position = ((ns.max(1) as f64).log10() - self.low) / (self.high - self.low);
        self.start + position * (self.end - self.start)
    }

    /// Every power of ten in the domain.
    fn decades(&self) -> impl Iterator<Item = u64> {
        (self.low as i32..=self.high as i32).map(|exponent| 10u64.pow(exponent.max(0) as u32))
    }
}

/// An axis label for a power of ten of nanoseconds: `100 ns`, `1 µs`, `10 ms`, `1 s`.
fn decade_label(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{} µs", ns / 1_000),
        1_000_000..1_000_000_000 => format!("{} ms", ns / 1_000_000),
        _ => format!("{} s", ns / 1_000_000_000),
    }
}

/// The smallest and largest latency any configuration showed for `names` (p50 and max).
fn latency_range(report: &BenchReport, names: &[&str]) -> (u64, u64) {
    let latencies = || {
        report
            .configurations
            .iter()
            .flat_map(|c| names.iter().filter_map(|name| latency_of(c, name)))
    };
    let low = latencies().map(|latency| latency.p50).min().unwrap_or(1);
    let high = latencies().map(|latency| latency.max).max().unwrap_or(1);
    (low, high)
}

/// One data point of a chart.
struct Dot<'a> {
    x: f64,
    y: f64,
    /// Index of its configuration (its colour).
    configuration: usize,
    label: &'a str,
    operation: &'a str,
    percentile: f64,
    ns: u64,
}

impl Dot<'_> {
    fn draw(&self, page: &mut String) {
        let Dot { x, y, configuration, label, operation, percentile, ns } = *self;
        let shown = if percentile >= 100.0 { "max".to_owned() } else { format!("p{percentile}") };
        let label = escape(label);
        let _ = writeln!(
            page,
            "<circle class=\"point\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.2\" fill=\"{}\" \
             data-config=\"{label}\" data-operation=\"{operation}\" data-percentile=\"{percentile}\" \
             data-ns=\"{ns}\"><title>{label} · {operation} · {shown}: {}</title></circle>",
            colour(configuration),
            format_ns(ns)
        );
    }
}

fn overview_chart(page: &mut String, report: &BenchReport) {
    let names = called_operations(report);
    let configurations = report.configurations.len();
    let (left, right, top, bar, gap) = (230.0, 20.0, 24.0, 11.0, 9.0);
    let width = 1000.0;
    let group = configurations as f64 * bar + gap;
    let height = top + names.len() as f64 * group + 10.0;
    let (low, high) = latency_range(report, &names);
    let scale = LogScale::new(low, high, left, width - right);
    let _ = writeln!(
        page,
        "<svg class=\"chart\" data-chart=\"overview\" viewBox=\"0 0 {width} {height:.0}\" \
         xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"p50 and p99 latency by operation\">"
    );
    for decade in scale.decades() {
        let x = scale.at(decade);
        let _ = writeln!(
            page,
            "<line class=\"grid-line\" x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            top - 6.0,
            height - 6.0,
            top - 10.0,
            decade_label(decade)
        );
    }
    for (row, name) in names.iter().enumerate() {
        let y0 = top + row as f64 * group;
        let _ = writeln!(
            page,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{name}</text>",
            left - 8.0,
            y0 + configurations as f64 * bar / 2.0 + 4.0
        );
        for (index, configuration) in report.configurations.iter().enumerate() {
            let Some(latency) = latency_of(configuration, name) else { continue };
            let y = y0 + index as f64 * bar;
            let (x50, x99) = (scale.at(latency.p50), scale.at(latency.p99));
            let middle = y + bar / 2.0 - 0.5;
            let _ = writeln!(
                page,
                "<rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" opacity=\"0.75\">\
                 <title>{} · {name} · p50: {}</title></rect>\
                 <line x1=\"{x50:.1}\" y1=\"{middle:.1}\" x2=\"{x99:.1}\" y2=\"{middle:.1}\" stroke=\"{}\" stroke-width=\"1.5\"/>",
                (x50 - left).max(1.0),
                bar - 2.0,
                colour(index),
                escape(&configuration.label),
                format_ns(latency.p50),
                colour(index)
            );
            let dot = Dot {
                x: x99,
                y: middle,
                configuration: index,
                label: &configuration.label,
                operation: name,
                percentile: 99.0,
                ns: latency.p99,
            };
            dot.draw(page);
        }
    }
    page.push_str("</svg>\n");
}

/// Horizontal position of a percentile: `log10(1 / (1 - p))`, so 90, 99, 99.9 … are evenly
/// spaced; the maximum sits one step after 99.99.
fn percentile_position(percentile: f64) -> f64 {
    if percentile >= 100.0 { 5.0 } else { (1.0 / (1.0 - percentile / 100.0)).log10().min(4.0) }
}

fn percentile_chart(page: &mut String, report: &BenchReport, chart: usize, name: &str) {
    let (width, height, left, right, top, bottom) = (500.0, 260.0, 62.0, 14.0, 12.0, 34.0);
    let (low, high) = latency_range(report, &[name]);
    let y_scale = LogScale::new(low, high, height - bottom, top);
    let x = |percentile: f64| left + percentile_position(percentile) / 5.0 * (width - left - right);
    let _ = writeln!(
        page,
        "<figure><figcaption>{name}</figcaption>\n<svg class=\"chart\" data-chart=\"percentiles\" \
         data-operation=\"{name}\" id=\"percentiles-{chart}\" viewBox=\"0 0 {width} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{name} latency by percentile\">"
    );
    for decade in y_scale.decades() {
        let y = y_scale.at(decade);
        let _ = writeln!(
            page,
            "<line class=\"grid-line\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            width - right,
            left - 6.0,
            y + 4.0,
            decade_label(decade)
        );
    }
    for (percentile, label) in [
        (50.0, "p50"),
        (90.0, "p90"),
        (99.0, "p99"),
        (99.9, "p99.9"),
        (99.99, "p99.99"),
        (100.0, "max"),
    ] {
        let _ = writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            x(percentile),
            height - bottom + 16.0
        );
    }
    for (index, configuration) in report.configurations.iter().enumerate() {
        let Some(latency) = latency_of(configuration, name) else { continue };
        let points: Vec<(f64, f64, f64, u64)> = latency
            .percentiles
            .iter()
            .map(|point| (x(point.percentile), y_scale.at(point.ns), point.percentile, point.ns))
            .collect();
        let line: Vec<String> =
            points.iter().map(|(x, y, _, _)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            page,
            "<polyline class=\"curve\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"/>",
            line.join(" "),
            colour(index)
        );
        for (x, y, percentile, ns) in points {
            let label = &configuration.label;
            Dot { x, y, configuration: index, label, operation: name, percentile, ns }.draw(page);
        }
    }
    let _ = writeln!(page, "</svg></figure>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn the_log_scale_spans_whole_decades() {
        let scale = LogScale::new(1_500, 80_000, 0.0, 100.0);
        assert_eq!(scale.decades().collect::<Vec<_>>(), [1_000, 10_000, 100_000]);
        assert!((scale.at(1_000) - 0.0).abs() < 1e-9);
        assert!((scale.at(10_000) - 50.0).abs() < 1e-9);
        let flat = LogScale::new(1_000, 1_000, 0.0, 10.0);
        assert_eq!(flat.decades().count(), 2);
        let labels: Vec<String> = [100, 1_000, 10_000_000, 1_000_000_000].map(decade_label).into();
        assert_eq!(labels, ["100 ns", "1 µs", "10 ms", "1 s"]);
    }

    #[test]
    fn percentiles_are_evenly_spaced_by_nines() {
        assert!((percentile_position(90.0) - 1.0).abs() < 1e-9);
        assert!((percentile_position(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(percentile_position(100.0), 5.0);
    }
}
