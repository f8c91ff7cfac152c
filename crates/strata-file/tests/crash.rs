//! Crash harness: a child process commits in a loop and reports each acknowledged commit;
//! the parent SIGKILLs it at random moments, reopens the store, and checks that every
//! acknowledged commit is there, that no commit is half-applied, and that the store keeps
//! working. Two workloads: small commits over small segments (kills land anywhere, also in
//! compactions), and larger commits over tiny segments so that a background compaction is
//! running nearly all the time (the harness checks that kills did land in one). 50 kills each
//! by default; set `STRATA_CRASH_KILLS` for more.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use strata_core::RuntimePersistence;
use strata_file::{FileStore, FileStoreOptions};

use common::*;

const CHILD_ENV: &str = "STRATA_CRASH_CHILD_DIR";
const PAYLOAD_ENV: &str = "STRATA_CRASH_PAYLOAD";
const SESSION: &str = "crash";

/// Small segments, so that kills also land inside compactions.
fn options() -> FileStoreOptions {
    FileStoreOptions::default().with_compact_min_log_bytes(16 << 10)
}

/// Node payload bytes of the child's commits.
fn payload_len() -> usize {
    std::env::var(PAYLOAD_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

/// The child's side: not a test of its own (ignored; the parent starts it with `--ignored`).
#[test]
#[ignore = "child-process entry point, started by the parent test with --ignored"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else { return };
    run(async {
        let store = FileStore::open(&dir, options()).expect("child open");
        let mut revision = check_linear_history(&store).await;
        let mut out = std::io::stdout().lock();
        loop {
            revision += 1;
            let commit = nth_commit(SESSION, revision, payload_len());
            store.commit_runtime_state(commit).await.expect("commit");
            writeln!(out, "ack {revision}").and_then(|()| out.flush()).expect("report");
        }
    });
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let in_compaction = kill_rounds(200);
    println!("kills during a compaction: {in_compaction}");
}

#[test]
fn acknowledged_commits_survive_sigkill_during_background_compaction() {
    // 4 KiB nodes over 16 KiB segments: a compaction starts every few commits and copies a
    // graph that keeps growing, so one is nearly always running when the kill lands.
    let in_compaction = kill_rounds(4 << 10);
    assert!(in_compaction > 0, "no kill landed during a background compaction");
}

fn file_names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Log segments (`log.<generation>`; temporary files not counted).
fn log_segments(dir: &std::path::Path) -> usize {
    let segment =
        |name: &String| name.strip_prefix("log.").is_some_and(|g| g.parse::<u64>().is_ok());
    file_names(dir).iter().filter(|name| segment(name)).count()
}

/// True when `dir` shows a compaction under way: a file being written, or a sealed segment
/// not yet folded into a snapshot next to the live one and its spare.
fn compaction_under_way(dir: &std::path::Path) -> bool {
    file_names(dir).iter().any(|name| name.ends_with(".tmp")) || log_segments(dir) > 2
}

/// Runs the kill rounds with `payload` bytes per node; returns how many kills landed while
/// a compaction was under way.
fn kill_rounds(payload: usize) -> usize {
    let kills: usize =
        std::env::var("STRATA_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = 0;
    let mut in_compaction = 0;
    let mut segments_before = 1;
    for round in 0..kills {
        let mut process = child("crash_child", &[(CHILD_ENV, dir.path())])
            .env(PAYLOAD_ENV, payload.to_string())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                last = line.strip_prefix("ack ").and_then(|n| n.parse::<u64>().ok()).or(last);
            }
            last
        });
        std::thread::sleep(Duration::from_millis(fastrand::u64(5..60)));
        process.kill().unwrap(); // SIGKILL
        process.wait().unwrap();
        in_compaction += usize::from(compaction_under_way(dir.path()));
        // A compaction folds the whole chain and only one runs at a time, so a child grows the
        // chain by at most two segments over what it found (the segment its rotation switched
        // to, when no spare was ready, and the next spare); once one of its compactions
        // finished, the chain is at most the sealed segment being folded, the live one and
        // the spare prepared for the next rotation.
        let segments = log_segments(dir.path());
        let bound = 3.max(segments_before + 2);
        assert!(segments <= bound, "round {round}: {segments} log segments (bound {bound})");
        segments_before = segments;
        if let Some(last) = reader.join().unwrap() {
            acknowledged = last;
        }
        let revision = run(async {
            let store = FileStore::open(dir.path(), options()).expect("reopen after kill");
            check_linear_history(&store).await
        });
        assert!(
            revision == acknowledged || revision == acknowledged + 1,
            "round {round}: store at revision {revision}, {acknowledged} acknowledged"
        );
        acknowledged = revision;
    }
    run(async {
        let store = FileStore::open(dir.path(), options()).unwrap();
        let next = acknowledged + 1;
        store.commit_runtime_state(nth_commit(SESSION, next, 10)).await.expect("keeps working");
        assert_eq!(check_linear_history(&store).await, next);
        // However long the chain the kills left, one compaction folds it whole: the live
        // segment is left, and at most the spare prepared for the next rotation.
        store.compact().expect("compact after the kills");
        let left = log_segments(dir.path());
        assert!(left <= 2, "{left} segments left after a compaction");
        assert_eq!(check_linear_history(&store).await, next);
    });
    assert!(acknowledged > 0, "the child never acknowledged a commit");
    in_compaction
}
