//! The read-only view and the verifier on a store another process holds and keeps writing
//! to, compactions included: every view is whole, the owner is never disturbed, and the lock
//! holder is named.
//!
//! This test spawns a child process, so it lives alone in its own test binary (see
//! `tests/lock.rs` for why).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata_core::{RuntimePersistence, StoreError};
use strata_file::inspect::{Holder, StoreView, verify};
use strata_file::{FileStore, FileStoreOptions};

use common::*;

const HOLDER_CHILD_ENV: &str = "STRATA_INSPECT_HOLDER_DIR";

/// The child: holds the store and commits (compacting every few kilobytes) until its stdin
/// closes, then prints how many commits it made.
#[test]
#[ignore = "child-process entry point, started by the parent test with --ignored"]
fn holder_child() {
    let Some(dir) = std::env::var_os(HOLDER_CHILD_ENV).map(PathBuf::from) else { return };
    let options = FileStoreOptions::default().with_compact_min_log_bytes(16 << 10);
    let store = FileStore::open(&dir, options).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = Arc::clone(&stop);
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stopper.store(true, Ordering::SeqCst);
    });
    println!("ready");
    std::io::stdout().flush().unwrap();
    let commits = run(async {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            store.commit_runtime_state(nth_commit("s", n, 500)).await.unwrap();
        }
        n
    });
    println!("done {commits}");
}

#[test]
fn a_store_another_process_writes_is_viewed_and_verified_without_disturbing_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = child("holder_child", &[(HOLDER_CHILD_ENV, dir.path())])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let ready = (&mut out).lines().map(Result::unwrap).find(|line| line == "ready");
    assert!(ready.is_some(), "the child opened the store");

    assert_eq!(
        FileStore::open(dir.path(), FileStoreOptions::default()).err().map(|e| e.kind()),
        Some(StoreError::Locked { path: String::new() }.kind()),
        "the child holds the store"
    );
    let mut last_revision = 0;
    for _ in 0..25 {
        let verification = verify(dir.path()).unwrap();
        assert!(verification.is_ok(), "{:?}", verification.problems);
        assert_eq!(verification.holder, Holder::Process(child.id()));
        let view = StoreView::open(dir.path()).unwrap();
        let revision = view.state().head().map_or(0, |head| head.revision);
        assert!(revision >= last_revision, "{revision} after {last_revision}");
        last_revision = revision;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    drop(child.stdin.take());
    // Read to the end: a closed pipe would fail the child's last writes.
    let rest: Vec<String> = out.lines().map(Result::unwrap).collect();
    let done = rest.iter().find_map(|line| line.strip_prefix("done ")?.parse::<u64>().ok());
    assert!(child.wait().unwrap().success());
    let commits = done.expect("the child committed to the end, undisturbed");
    assert!(commits > last_revision, "the child kept committing while it was inspected");
    let closed = verify(dir.path()).unwrap();
    assert!(closed.is_ok(), "{:?}", closed.problems);
    assert_eq!(closed.holder, Holder::Nobody);
    assert_eq!(closed.view.unwrap().state().head().unwrap().revision, commits);
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    run(async { assert_eq!(check_linear_history(&store).await, commits) });
}
