//! The `--report` page opened in a real headless browser (Debian's `chromium`): every chart
//! must be laid out with all its data points, and the points must carry the figures of the
//! JSON report of the same run.
//!
//! Without `chromium` on `PATH` the test prints a notice and passes, unless
//! `STRATA_REQUIRE_CHROMIUM=1` is set (CI sets it, after installing the package).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// The browser, if installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}

/// The DOM of `page` after the browser loaded it and ran its script.
fn dump_dom(browser: &Path, page: &Path, profile: &Path) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        stdout.read_to_string(&mut dom).map(|_| dom)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("chromium can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium exited with {status}");
    reader.join().expect("the reader thread ends").expect("the DOM is UTF-8")
}

/// The value of attribute `name` in the opening tag `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(&tag[start..end])
}

/// One rendered chart: its opening tag and the opening tags of its points.
struct Chart<'a> {
    tag: &'a str,
    points: Vec<&'a str>,
}

fn charts(dom: &str) -> Vec<Chart<'_>> {
    dom.split("<svg")
        .skip(1)
        .map(|chart| {
            let tag = &chart[..chart.find('>').expect("the svg tag closes")];
            let body = &chart[..chart.find("</svg>").expect("the svg element closes")];
            let points = body
                .split("<circle")
                .skip(1)
                .map(|point| &point[..point.find('>').expect("the circle tag closes")])
                .filter(|tag| attribute(tag, "class") == Some("point"))
                .collect();
            Chart { tag, points }
        })
        .filter(|chart| attribute(chart.tag, "class") == Some("chart"))
        .collect()
}

#[test]
fn the_html_report_renders_its_charts_with_every_data_point_in_a_headless_browser() {
    let Some(browser) = chromium() else {
        if std::env::var("STRATA_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!(
                "STRATA_REQUIRE_CHROMIUM=1, but `chromium` is not on PATH (apt-get install chromium)"
            );
        }
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "notice: skipped the headless-browser check of the HTML report: `chromium` is not on \
             PATH (apt-get install chromium; set STRATA_REQUIRE_CHROMIUM=1 to make this a failure)"
        );
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let (page, json) = (scratch.path().join("report.html"), scratch.path().join("report.json"));
    let status = Command::cargo_bin("strata")
        .unwrap()
        .args(["bench", "-q", "--compare", "memory", "memory+full", "--faults", "0.05"])
        .args(["--sessions", "2", "--turns", "10", "--rounds", "2", "--maintenance-every", "5"])
        .arg("--report")
        .arg(&page)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let configurations = report["configurations"].as_array().unwrap();
    // Operations some configuration called (under the drill, one may need a call the other
    // does not), in workload order.
    let called: Vec<&Value> = configurations[0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| {
            configurations.iter().any(|configuration| {
                let same = configuration["operations"].as_array().unwrap().iter();
                same.filter(|other| other["name"] == op["name"])
                    .any(|other| other["calls"].as_u64().unwrap() > 0)
            })
        })
        .collect();

    let dom = dump_dom(&browser, &page, &scratch.path().join("profile"));
    let charts = charts(&dom);
    // The overview, then one percentile chart per operation called.
    assert_eq!(charts.len(), 1 + called.len(), "charts in the rendered page");
    for chart in &charts {
        let laid_out = attribute(chart.tag, "data-rendered-points")
            .unwrap_or_else(|| panic!("the page's script ran on {:?}", chart.tag));
        assert_eq!(
            laid_out,
            chart.points.len().to_string(),
            "every point of {:?} is laid out",
            chart.tag
        );
    }
    assert_eq!(attribute(charts[0].tag, "data-chart"), Some("overview"));
    let bars: usize = configurations
        .iter()
        .map(|configuration| {
            let ops = configuration["operations"].as_array().unwrap();
            ops.iter().filter(|op| op["calls"].as_u64().unwrap() > 0).count()
        })
        .sum();
    assert_eq!(charts[0].points.len(), bars, "a p99 dot per configuration and operation called");

    // Each percentile chart: one curve per configuration, its points at the JSON's figures.
    for (chart, op) in charts[1..].iter().zip(&called) {
        let name = op["name"].as_str().unwrap();
        assert_eq!(attribute(chart.tag, "data-operation"), Some(name));
        for configuration in configurations {
            let label = configuration["label"].as_str().unwrap();
            let operation = configuration["operations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|op| op["name"] == name)
                .unwrap();
            let expected: Vec<String> = match operation["latency_ns"]["percentiles"].as_array() {
                Some(points) => points.iter().map(|point| point["ns"].to_string()).collect(),
                None => Vec::new(), // not called by this configuration
            };
            let drawn: Vec<&str> = chart
                .points
                .iter()
                .filter(|point| attribute(point, "data-config") == Some(label))
                .map(|point| attribute(point, "data-ns").unwrap())
                .collect();
            assert_eq!(drawn, expected, "{name} of {label}");
        }
    }
}
