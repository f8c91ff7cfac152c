//! Exclusion between processes: a second process opening a store gets `Locked` until the
//! first closes it.
//!
//! This test spawns child processes, so it lives alone in its own test binary: a child
//! forked while another test thread holds a store open briefly inherits that store's lock
//! (an `flock` belongs to the open file description, which the child shares until its
//! `exec` closes it), which would make that other test see a spurious `Locked`.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use strata_file::{FileStore, FileStoreOptions};

use common::*;

const LOCK_CHILD_ENV: &str = "STRATA_LOCK_CHILD_DIR";

/// The child's side of the lock test: prints the outcome of opening the store.
#[test]
#[ignore = "child-process entry point, started by the parent test with --ignored"]
fn lock_child() {
    let Some(dir) = std::env::var_os(LOCK_CHILD_ENV).map(PathBuf::from) else { return };
    match FileStore::open(&dir, FileStoreOptions::default()) {
        Ok(_) => println!("outcome opened"),
        Err(error) => println!("outcome {}", error.kind()),
    }
}

fn open_in_child(dir: &Path) -> String {
    let mut process = child("lock_child", &[(LOCK_CHILD_ENV, dir)]).spawn().unwrap();
    let mut out = String::new();
    process.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    process.wait().unwrap();
    out.lines().find_map(|line| line.strip_prefix("outcome ")).unwrap_or("nothing").to_owned()
}

#[test]
fn a_second_process_is_locked_out_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), FileStoreOptions::default()).unwrap();
    assert_eq!(open_in_child(dir.path()), "locked");
    drop(store);
    assert_eq!(open_in_child(dir.path()), "opened");
}
