//! Command tests of `strata bench` (the built binary, on temporary directories): the JSON
//! report's counts against the workload, the layers and the fault drill, `--compare`, `--dir`
//! (and what inspect and verify find there), and one-line errors with the documented exit
//! statuses.

mod common;

use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;

use common::*;

/// A small workload where every periodic step happens, and happens a known number of times.
const TINY: [&str; 22] = [
    "--sessions",
    "3",
    "--turns",
    "7",
    "--rounds",
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
    "--attachment-bytes",
    "512",
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

/// The counts a run of [`TINY`] must report: 3 sessions × 7 turns, no fault drill.
fn assert_counts_match_the_tiny_workload(configuration: &Value) {
    let (sessions, turns) = (3, 7);
    let every = |n| sessions * (turns / n);
    let expected = [
        ("create_store", sessions, 0),
        ("save_session_meta", sessions, 0),
        ("enqueue_queued_work", sessions * turns * 2, 0),
        ("claim_ready_queued_work", sessions * turns, 0),
        ("list_pending_queued_work", 0, 0),
        ("attachment.put", every(2), 0),
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
        for outcome in ["faulted", "ambiguous", "failed"] {
            assert_eq!(op[outcome], 0, "{label}: {outcome} calls of {name}");
        }
        let latency = &op["latency_ns"];
        if calls == 0 {
            assert_eq!(*latency, Value::Null);
            continue;
        }
        assert!(latency["p50"].as_u64().unwrap() <= latency["max"].as_u64().unwrap());
        assert_eq!(latency["percentiles"].as_array().unwrap().len(), 8);
    }
    let totals = &configuration["totals"];
    assert_eq!(totals["turns"], sessions * turns);
    // Three path nodes and one draft per turn; the drafts of turns 0–4 are maintained.
    assert_eq!(totals["nodes_appended"], sessions * turns * 4);
    assert_eq!(totals["node_payload_bytes"], sessions * turns * 4 * 740);
    assert_eq!(totals["batches_completed"], sessions * turns * 2);
    assert_eq!(totals["attachments_put"], every(2));
    assert_eq!(totals["attachment_bytes"], every(2) * 512);
    assert_eq!(totals["attachments_committed"], every(2));
    assert_eq!(
        (&totals["attachments_abandoned"], &totals["batches_stranded"]),
        (&0.into(), &0.into())
    );
    assert_eq!(totals["usage_rows"], sessions * turns);
    assert_eq!(totals["nodes_tombstoned"], sessions * 5);
    assert_eq!(totals["nodes_vacuumed"], sessions * 5);
    // The gc after turn 4 keeps the head's blobs and deletes the four turns' before it
    // (a tool-state and an execution-state blob each).
    assert_eq!(totals["blobs_collected"], sessions * 8);
    assert_eq!(configuration["failed"], 0);
    assert_eq!(configuration["faults"], Value::Null);
    assert!(configuration["seconds"].as_f64().unwrap() > 0.0);
}

/// Every call of every operation has exactly one outcome, and none failed.
fn assert_outcomes_add_up_and_none_failed(configuration: &Value) {
    for op in configuration["operations"].as_array().unwrap() {
        let sum: u64 = ["ok", "expected", "faulted", "ambiguous", "failed"]
            .iter()
            .map(|outcome| op[outcome].as_u64().unwrap())
            .sum();
        assert_eq!(op["calls"].as_u64().unwrap(), sum, "{}", op["name"]);
        assert_eq!(op["failed"], 0, "{}: {}", op["name"], configuration["failures"]);
    }
}

#[test]
fn bench_at_tiny_sizes_writes_a_json_report_whose_counts_match_the_workload() {
    let scratch = tempfile::tempdir().unwrap();
    let json = scratch.path().join("bench.json");
    strata()
        .args(["bench", "--layers", "cache,metrics,tracing", "--json"])
        .arg(&json)
        .args(TINY)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "file+tracing+metrics+cache (attachments → tracing → metrics → cache → file, durable)",
        ))
        .stdout(predicate::str::contains("commit_runtime_state.stale"))
        .stdout(predicate::str::contains("Cache layer: "));
    let report = read_json(&json);
    assert_eq!(report["tool"], "strata bench");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["workload"]["sessions"], 3);
    assert_eq!(report["workload"]["attachment_bytes"], 512);
    let configurations = report["configurations"].as_array().unwrap();
    assert_eq!(configurations.len(), 1);
    let configuration = &configurations[0];
    assert_eq!(configuration["label"], "file+tracing+metrics+cache");
    assert_eq!(configuration["stack"], "attachments → tracing → metrics → cache → file");
    assert_eq!(configuration["durability_tier"], "durable");
    assert_counts_match_the_tiny_workload(configuration);
    // The layers measured real work: every store call is one span and one counted call. The
    // store calls are the workload's, plus the attachment layer's (an intent per put, a
    // commit_refs after each commit that carried one).
    let store_calls = configuration["store_calls"].as_u64().unwrap();
    let factory_calls = 2 * 3; // create_store and open_existing_store, per session
    let puts = operation(configuration, "attachment.put")["calls"].as_u64().unwrap();
    let all_calls: u64 = configuration["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(store_calls, all_calls - factory_calls - puts + 2 * puts);
    assert_eq!(configuration["tracing_spans"], store_calls);
    assert_eq!(configuration["metrics_calls"], store_calls);
    // The cache counted every session read it saw as a hit or a miss.
    let reads = ["load_session.active_path", "load_session.after_reopen"]
        .map(|name| operation(configuration, name)["calls"].as_u64().unwrap());
    let counters = &configuration["layer_counters"];
    let (hits, misses) = (
        counters["strata_store_cache_hits_total"].as_u64().unwrap(),
        counters["strata_store_cache_misses_total"].as_u64().unwrap(),
    );
    assert_eq!(hits + misses, reads.iter().sum::<u64>());
    assert!(hits > 0, "reloads after a commit are served from the cache");
    assert!(report["comparisons"].as_array().unwrap().is_empty());
}

#[test]
fn compare_runs_every_configuration_and_reports_ratios_against_the_first() {
    let scratch = tempfile::tempdir().unwrap();
    let json = scratch.path().join("compare.json");
    strata()
        .args(["bench", "-q", "--compare", "memory", "file+full", "memory", "--json"])
        .arg(&json)
        .args(TINY)
        .assert()
        .success()
        .stdout(predicate::str::contains("file+full against memory: run time"))
        .stdout(predicate::str::contains("memory #2 against memory: run time"))
        .stdout(predicate::str::contains(
            "full = every layer, the recommended stack: tracing+metrics+cache+retry+timeout+limit+breaker",
        ));
    let report = read_json(&json);
    let configurations = report["configurations"].as_array().unwrap();
    let labels: Vec<&str> = configurations.iter().map(|c| c["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["memory", "file+full", "memory #2"]);
    for configuration in configurations {
        assert_counts_match_the_tiny_workload(configuration);
    }
    assert_eq!(configurations[0]["durability_tier"], "inline");
    assert_eq!(configurations[0]["tracing_spans"], Value::Null);
    let full = &configurations[1];
    assert_eq!(
        full["stack"],
        "attachments → tracing → metrics → cache → retry → timeout → limit → breaker → file"
    );
    assert_eq!(full["metrics_calls"], full["store_calls"]);
    let counters = &full["layer_counters"];
    for name in [
        "strata_store_retries_total",
        "strata_store_timeouts_total",
        "strata_store_limiter_rejections_total",
        "strata_store_circuit_transitions_total",
    ] {
        assert_eq!(counters[name], 0, "{name}: nothing failed, nothing to do");
    }
    let comparisons = report["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2);
    assert_eq!(comparisons[0]["baseline"], "memory");
    assert_eq!(comparisons[0]["label"], "file+full");
    // Every operation both called (the drill's claim check is never needed here).
    assert_eq!(comparisons[0]["operations"].as_array().unwrap().len(), 14);
    assert!(comparisons[0]["time_ratio"].as_f64().unwrap() > 0.0);
    assert!(comparisons[0]["operations"][5]["p50"].as_f64().unwrap() > 0.0);
}

#[test]
fn under_the_fault_drill_the_counts_add_up_and_the_stores_hold_what_was_acknowledged() {
    let scratch = tempfile::tempdir().unwrap();
    let json = scratch.path().join("drill.json");
    let runs = scratch.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    strata()
        .args([
            "bench",
            "-q",
            "--compare",
            "file",
            "file+full",
            "--faults",
            "0.1",
            "--faults-seed",
            "5",
        ])
        .args(["--concurrency", "1", "--dir"])
        .arg(&runs)
        .arg("--json")
        .arg(&json)
        .args(TINY)
        .assert()
        .success()
        .stdout(predicate::str::contains("faults  ambiguous  failed"))
        .stdout(predicate::str::contains("Fault drill: "));
    let report = read_json(&json);
    assert_eq!(report["workload"]["faults"]["rate"], 0.1);
    assert_eq!(report["failed"], 0);
    let (sessions, turns) = (3u64, 7u64);
    for configuration in report["configurations"].as_array().unwrap() {
        let label = configuration["label"].as_str().unwrap();
        assert_outcomes_add_up_and_none_failed(configuration);
        let faults = &configuration["faults"];
        let injected = faults["injected"].as_u64().unwrap();
        let by_operation: u64 =
            faults["by_operation"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(injected, by_operation);
        assert!(injected > 0, "{label}: the drill injected faults");
        let surfaced = faults["surfaced"].as_u64().unwrap();
        let ops = configuration["operations"].as_array().unwrap();
        let counted: u64 = ops
            .iter()
            .map(|op| op["faulted"].as_u64().unwrap() + op["ambiguous"].as_u64().unwrap())
            .sum();
        assert_eq!(surfaced, counted, "{label}");
        if label == "file" {
            assert!(surfaced > 0, "without layers, the workload sees the faults");
        } else {
            assert!(surfaced < injected, "{label}: the layers absorbed faults");
            assert_eq!(faults["sessions_stopped"], 0, "{label}: retry keeps every session going");
        }
        if configuration["sessions_stopped"] != 0 {
            continue;
        }
        // Every session ran to its end: each turn committed once, each input enqueued once,
        // each turn's claim either held its inputs (completed by the commit) or stranded them.
        let totals = &configuration["totals"];
        assert_eq!(totals["turns"], sessions * turns, "{label}");
        assert_eq!(operation(configuration, "commit_runtime_state")["ok"], sessions * turns);
        assert_eq!(operation(configuration, "enqueue_queued_work")["ok"], sessions * turns * 2);
        let claims = operation(configuration, "claim_ready_queued_work");
        let (claimed, stranded) =
            (claims["ok"].as_u64().unwrap(), claims["ambiguous"].as_u64().unwrap());
        assert_eq!(claimed + stranded, sessions * turns, "{label}");
        assert_eq!(totals["batches_completed"], 2 * claimed);
        assert_eq!(totals["batches_stranded"], 2 * stranded);
        let put = |name: &str| totals[name].as_u64().unwrap();
        assert_eq!(put("attachments_put") + put("attachments_abandoned"), sessions * (turns / 2));
        assert_eq!(put("attachments_committed"), put("attachments_put"));

        // What inspect finds in the data directory matches what the stores acknowledged.
        let dir = configuration["dir"].as_str().unwrap();
        strata().args(["verify", dir]).assert().success();
        let output = strata().args(["inspect", dir, "--json"]).output().unwrap();
        let inspected: Value = serde_json::from_slice(&output.stdout).unwrap();
        let stored = inspected["sessions"].as_array().unwrap();
        let sum = |field: &str| stored.iter().map(|s| s[field].as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum("revision"), sessions * turns, "{label}: one revision per turn");
        assert_eq!(sum("claimed_batches"), 2 * stranded, "{label}: stranded batches stay held");
        assert_eq!(sum("pending_batches"), 0, "{label}");
        assert_eq!(sum("committed_attachments"), put("attachments_committed"), "{label}");
    }
}

#[test]
fn dir_keeps_each_configurations_data_directory_and_never_reuses_one() {
    let scratch = tempfile::tempdir().unwrap();
    let run = || {
        strata()
            .args(["bench", "-q", "--sessions", "2", "--turns", "3", "--dir"])
            .arg(scratch.path())
            .assert()
    };
    run().success().stdout(predicate::str::contains("Data kept in"));
    let kept = scratch.path().join("1-file");
    for session in ["session-00000", "session-00001"] {
        let store = kept.join("sessions").join(session);
        assert!(store.is_dir(), "{session} is kept in {}", store.display());
    }
    assert!(kept.join("attachments").join("objects").is_dir(), "the attachment store is kept");
    run().code(2).stderr(
        predicate::str::is_match(
            "^error: .*1-file already exists; point --dir at another directory or remove it\n$",
        )
        .unwrap(),
    );
}

#[test]
fn bad_arguments_are_one_line_errors_with_status_2() {
    assert_one_line_error(
        &["bench", "--layers", "tracing,cahce"],
        2,
        "unknown layer `cahce`; expected one of: tracing, metrics, cache, retry, timeout, limit, breaker, or full",
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
    assert_one_line_error(&["bench", "--layers", "full,retry"], 2, "layer `retry` is named twice");
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
    assert_one_line_error(
        &["bench", "--faults", "1.5"],
        2,
        "is not a probability above 0 and at most 1",
    );
    assert_one_line_error(&["bench", "--faults-seed", "3"], 2, "--faults <RATE>");
    assert_one_line_error(&["bench", "--attachment-bytes", "8"], 2, "--attachment-bytes <BYTES>");
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
        .stdout(predicate::str::contains("inspect"))
        .stdout(predicate::str::contains("verify"))
        .stdout(predicate::str::contains("sweep"))
        .stdout(predicate::str::contains("Exit status:"))
        .stdout(predicate::str::contains("3    the command ran, and found failures"));
    let help = strata().args(["bench", "--help"]).output().unwrap();
    assert!(help.status.success());
    // Help text is wrapped to the terminal: compare it with its whitespace folded.
    let help =
        String::from_utf8(help.stdout).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "Examples:",
        "outermost first: tracing → metrics → cache → retry → timeout → limit → breaker → backend",
        "file+full = file with tracing, metrics, cache, retry, timeout, limit, breaker",
        "Prometheus recorder",
        "--faults <RATE>",
        "--compare <CONFIG>",
    ] {
        assert!(help.contains(expected), "{expected:?} in {help}");
    }
    for command in ["inspect", "verify", "sweep"] {
        strata()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"))
            .stdout(predicate::str::contains("Exit status:"))
            .stdout(predicate::str::contains("data directory"));
    }
    strata()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::diff(format!("strata {}\n", env!("CARGO_PKG_VERSION"))));
}
