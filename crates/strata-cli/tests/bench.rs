//! Command tests of `strata bench` (the built binary, on temporary directories): the JSON
//! report's counts against the workload, `--compare`, `--dir`, and one-line errors with the
//! documented exit statuses.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn strata() -> Command {
    Command::cargo_bin("strata").expect("the strata binary is built")
}

/// A small workload where every periodic step happens, and happens a known number of times.
const TINY: [&str; 22] = [
    "--sessions",
    "3",
    "--turns",
    "7",
    "--rounds",
    "2",
    "--concurrency",
    "2",
    "--nodes-per-turn",
    "3",
    "--inputs-per-turn",
    "2",
    "--attachment-every",
    "2",
    "--replay-every",
    "3",
    "--conflict-every",
    "4",
    "--maintenance-every",
    "5",
    "--reload-every",
    "2",
];

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the JSON report was written"))
        .expect("the JSON report parses")
}

fn operation<'a>(configuration: &'a Value, name: &str) -> &'a Value {
    configuration["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["name"] == name)
        .unwrap_or_else(|| panic!("operation {name} is reported"))
}

/// The counts a run of [`TINY`] must report: 3 sessions × 7 turns.
fn assert_counts_match_the_tiny_workload(configuration: &Value) {
    let (sessions, turns) = (3, 7);
    let every = |n| sessions * (turns / n);
    let expected = [
        ("create_store", sessions, 0),
        ("save_session_meta", sessions, 0),
        ("enqueue_queued_work", sessions * turns * 2, 0),
        ("claim_ready_queued_work", sessions * turns, 0),
        ("record_intent", every(2), 0),
        ("commit_runtime_state", sessions * turns, 0),
        ("commit_runtime_state.replay", every(3), 0),
        ("commit_runtime_state.stale", every(4), every(4)),
        ("load_session.active_path", every(2), 0),
        ("tombstone_nodes", every(5), 0),
        ("vacuum", every(5), 0),
        ("gc_unreachable", every(5), 0),
        ("open_existing_store", sessions, 0),
        ("load_session.after_reopen", sessions, 0),
    ];
    let label = &configuration["label"];
    for (name, calls, expected_outcomes) in expected {
        let op = operation(configuration, name);
        assert_eq!(op["calls"], calls, "{label}: calls of {name}");
        assert_eq!(op["expected"], expected_outcomes, "{label}: expected outcomes of {name}");
        assert_eq!(op["failed"], 0, "{label}: failures of {name}");
        let latency = &op["latency_ns"];
        assert!(latency["p50"].as_u64().unwrap() <= latency["max"].as_u64().unwrap());
        assert_eq!(latency["percentiles"].as_array().unwrap().len(), 8);
    }
    let totals = &configuration["totals"];
    assert_eq!(totals["turns"], sessions * turns);
    // Three path nodes and one draft per turn; the drafts of turns 0–4 are maintained.
    assert_eq!(totals["nodes_appended"], sessions * turns * 4);
    assert_eq!(totals["node_payload_bytes"], sessions * turns * 4 * 740);
    assert_eq!(totals["batches_completed"], sessions * turns * 2);
    assert_eq!(totals["attachments_committed"], every(2));
    assert_eq!(totals["usage_rows"], sessions * turns);
    assert_eq!(totals["nodes_tombstoned"], sessions * 5);
    assert_eq!(totals["nodes_vacuumed"], sessions * 5);
    // The gc after turn 4 keeps the head's blobs and deletes the four turns' before it
    // (a tool-state and an execution-state blob each).
    assert_eq!(totals["blobs_collected"], sessions * 8);
    assert_eq!(configuration["failed"], 0);
    assert!(configuration["seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_at_tiny_sizes_writes_a_json_report_whose_counts_match_the_workload() {
    let scratch = tempfile::tempdir().unwrap();
    let json = scratch.path().join("bench.json");
    strata()
        .args(["bench", "--layers", "metrics,tracing", "--json"])
        .arg(&json)
        .args(TINY)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "file+tracing+metrics (tracing → metrics → file, durable)",
        ))
        .stdout(predicate::str::contains("commit_runtime_state.stale"));
    let report = read_json(&json);
    assert_eq!(report["tool"], "strata bench");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["workload"]["sessions"], 3);
    let configurations = report["configurations"].as_array().unwrap();
    assert_eq!(configurations.len(), 1);
    let configuration = &configurations[0];
    assert_eq!(configuration["label"], "file+tracing+metrics");
    assert_eq!(configuration["stack"], "tracing → metrics → file");
    assert_eq!(configuration["durability_tier"], "durable");
    assert_counts_match_the_tiny_workload(configuration);
    // The layers measured real work: every store call is one span and one counted call.
    let store_calls = configuration["store_calls"].as_u64().unwrap();
    let factory_calls = 2 * 3; // create_store and open_existing_store, per session
    let all_calls: u64 = configuration["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(store_calls, all_calls - factory_calls);
    assert_eq!(configuration["tracing_spans"], store_calls);
    assert_eq!(configuration["metrics_calls"], store_calls);
    assert!(report["comparisons"].as_array().unwrap().is_empty());
}

#[test]
fn compare_runs_every_configuration_and_reports_ratios_against_the_first() {
    let scratch = tempfile::tempdir().unwrap();
    let json = scratch.path().join("compare.json");
    strata()
        .args(["bench", "-q", "--compare", "memory", "file+metrics", "memory", "--json"])
        .arg(&json)
        .args(TINY)
        .assert()
        .success()
        .stdout(predicate::str::contains("file+metrics against memory: run time"))
        .stdout(predicate::str::contains("memory #2 against memory: run time"));
    let report = read_json(&json);
    let configurations = report["configurations"].as_array().unwrap();
    let labels: Vec<&str> = configurations.iter().map(|c| c["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["memory", "file+metrics", "memory #2"]);
    for configuration in configurations {
        assert_counts_match_the_tiny_workload(configuration);
    }
    assert_eq!(configurations[0]["durability_tier"], "inline");
    assert_eq!(configurations[0]["tracing_spans"], Value::Null);
    assert_eq!(configurations[1]["metrics_calls"], configurations[1]["store_calls"]);
    let comparisons = report["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2);
    assert_eq!(comparisons[0]["baseline"], "memory");
    assert_eq!(comparisons[0]["label"], "file+metrics");
    assert_eq!(comparisons[0]["operations"].as_array().unwrap().len(), 14);
    assert!(comparisons[0]["time_ratio"].as_f64().unwrap() > 0.0);
    assert!(comparisons[0]["operations"][5]["p50"].as_f64().unwrap() > 0.0);
}

#[test]
fn dir_keeps_each_configurations_store_and_never_reuses_one() {
    let scratch = tempfile::tempdir().unwrap();
    let run = || {
        strata()
            .args(["bench", "-q", "--sessions", "2", "--turns", "3", "--dir"])
            .arg(scratch.path())
            .assert()
    };
    run().success().stdout(predicate::str::contains("Store kept in"));
    let kept = scratch.path().join("1-file");
    for session in ["session-00000", "session-00001"] {
        assert!(kept.join(session).is_dir(), "{session} is kept in {}", kept.display());
    }
    run().code(2).stderr(
        predicate::str::is_match(
            "^error: .*1-file already exists; point --dir at another directory or remove it\n$",
        )
        .unwrap(),
    );
}

/// Runs `strata` with `args` and checks the exit status and that stderr is exactly one
/// `error: …` line containing `message`.
fn assert_one_line_error(args: &[&str], code: i32, message: &str) {
    let output = strata().args(args).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: ") && stderr.ends_with('\n'), "{args:?}: {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(stderr.contains(message), "{args:?}: {stderr:?} should contain {message:?}");
    assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
}

#[test]
fn bad_arguments_are_one_line_errors_with_status_2() {
    assert_one_line_error(
        &["bench", "--layers", "tracing,cache"],
        2,
        "unknown layer `cache`; expected one of: tracing, metrics",
    );
    assert_one_line_error(
        &["bench", "--backend", "disk"],
        2,
        "unknown backend `disk`; expected one of: file, memory",
    );
    assert_one_line_error(
        &["bench", "--compare", "file", "file+tracing+tracing"],
        2,
        "layer `tracing` is named twice",
    );
    assert_one_line_error(
        &["bench", "--layers", "metrics,metrics"],
        2,
        "layer `metrics` is named twice",
    );
    assert_one_line_error(&["bench", "--sessions", "0"], 2, "--sessions <N>");
    assert_one_line_error(
        &["bench", "--turn", "3"],
        2,
        "a similar argument exists: '--turns'; see 'strata bench --help'",
    );
    assert_one_line_error(
        &["bench", "--compare", "memory", "file", "--layers", "metrics"],
        2,
        "cannot be used with",
    );
    assert_one_line_error(
        &["bench", "--backend", "memory", "--dir", "."],
        2,
        "--dir is only used by the file backend",
    );
    assert_one_line_error(&["frobnicate"], 2, "unrecognized subcommand 'frobnicate'");
    assert_one_line_error(&["bench", "--trace-level", "loud"], 2, "--trace-level <LEVEL>");
}

#[test]
fn missing_directories_are_one_line_errors_with_status_1() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("no-such-dir");
    let missing = missing.to_str().unwrap();
    assert_one_line_error(
        &["bench", "--dir", missing],
        1,
        &format!(
            "directory {missing} does not exist; create it, or leave out --dir to use a temporary directory"
        ),
    );
    let json = format!("{missing}/out.json");
    assert_one_line_error(
        &["bench", "--backend", "memory", "--json", &json],
        1,
        &format!("JSON report {missing} does not exist"),
    );
    let file = scratch.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    assert_one_line_error(&["bench", "--dir", file.to_str().unwrap()], 1, "is not a directory");
    let html = scratch.path().to_str().unwrap();
    assert_one_line_error(
        &["bench", "--backend", "memory", "--report", html],
        2,
        "is a directory; give a file name",
    );
}

#[test]
fn help_documents_every_command_with_examples_and_the_exit_statuses() {
    strata()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("bench"))
        .stdout(predicate::str::contains("Exit status:"))
        .stdout(predicate::str::contains("3    the command ran, and found failures"));
    strata()
        .args(["bench", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("tracing → metrics → backend"))
        .stdout(predicate::str::contains("Prometheus recorder"))
        .stdout(predicate::str::contains("--compare <CONFIG>"));
    strata()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::diff(format!("strata {}\n", env!("CARGO_PKG_VERSION"))));
}
