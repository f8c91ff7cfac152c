//! `strata inspect` and `strata verify` on a store another process holds open: a clear
//! answer (the store as its files are, the holding process named), and the holder
//! undisturbed.
//!
//! The holder is this test binary started again as a child process, so this test lives
//! alone in its own binary (a child forked while another test thread holds a store open
//! would briefly share that store's lock).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use strata::file::{FileStoreFactory, FileStoreOptions};
use strata::{
    GraphCommitDelta, RuntimeCommit, RuntimePersistence, SessionStoreFactory, SessionStoreRequest,
};

use common::*;

const HOLDER_ENV: &str = "STRATA_CLI_HOLDER_DIR";

fn commit(revision: u64) -> RuntimeCommit {
    RuntimeCommit {
        session_id: "held".into(),
        expected_head_revision: Some(revision),
        graph: GraphCommitDelta::Append { nodes: Vec::new(), leaf_node_id: None },
        ..Default::default()
    }
}

/// The child: holds session `held` open, commits twice, says so, waits for its stdin to
/// close, commits once more and reports the revision.
#[test]
#[ignore = "child-process entry point, started by the parent test with --ignored"]
fn holder_child() {
    let Some(dir) = std::env::var_os(HOLDER_ENV).map(PathBuf::from) else { return };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    runtime.unwrap().block_on(async {
        let factory =
            FileStoreFactory::open(dir.join("sessions"), FileStoreOptions::default()).unwrap();
        let store = factory.create_store(SessionStoreRequest::new("held")).await.unwrap();
        store.commit_runtime_state(commit(0)).await.unwrap();
        store.commit_runtime_state(commit(1)).await.unwrap();
        println!("ready");
        std::io::stdout().flush().unwrap();
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let result = store.commit_runtime_state(commit(2)).await.unwrap();
        println!("done {}", result.head_revision);
    });
}

#[test]
fn a_store_another_process_holds_is_inspected_and_verified_without_disturbing_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(data.join("sessions")).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "holder_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env(HOLDER_ENV, &data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!((&mut out).lines().map(Result::unwrap).any(|line| line == "ready"));

    let holder = format!("open in process {}", child.id());
    let dir = data.to_str().unwrap();
    strata()
        .args(["verify", dir])
        .assert()
        .success()
        .stdout(predicates::str::contains("held: ok"))
        .stdout(predicates::str::contains(format!("note: {holder} while checked")));
    let inspected = strata().args(["inspect", dir, "--json"]).output().unwrap();
    assert!(inspected.status.success());
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(inspected["sessions"][0]["revision"], 2);
    assert_eq!(inspected["sessions"][0]["held_by"], format!("process {}", child.id()));
    strata()
        .args(["inspect", dir])
        .assert()
        .success()
        .stdout(predicates::str::contains(format!("note: held is {holder}")));
    // Sweeping needs the stores themselves: the held one is named and left alone.
    std::fs::create_dir_all(data.join("attachments")).unwrap();
    let stdout = assert_one_line_error(
        &["sweep", dir, "--grace", "0s"],
        3,
        "1 session(s) could not be read",
    );
    assert!(stdout.contains("could not read session held: store at"), "{stdout}");

    drop(child.stdin.take());
    let rest: Vec<String> = out.lines().map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    assert!(rest.iter().any(|line| line == "done 3"), "the holder committed on: {rest:?}");
}
