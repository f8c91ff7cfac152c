//! Crash tests: a child process writes attachments through the layer over the durable file
//! backend and the file attachment store, and is SIGKILLed between an intent and its bytes,
//! between the bytes and the commit, or after the commit. After a sweep, every committed
//! attachment is readable and no other bytes, references, temporary files or rows remain.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use strata_attachments::*;
use strata_core::ManualClock;
use strata_testkit::START_MS;

use common::*;

const DIR_ENV: &str = "STRATA_ATTACHMENT_CRASH_DIR";
const POINT_ENV: &str = "STRATA_ATTACHMENT_CRASH_POINT";
const SESSION: &str = "s1";
const COMMITTED: &[u8] = b"committed before the crash";
const LAST: &[u8] = b"written when the process dies";

/// Where the child stops and waits to be killed: right after the last put's intent, put or commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// The last put recorded its intent and reference; its bytes are not written.
    Intent,
    /// The last put returned; its turn has not committed.
    Put,
    /// The last put's turn committed.
    Commit,
}

impl Point {
    const ALL: [Point; 3] = [Point::Intent, Point::Put, Point::Commit];

    fn name(self) -> &'static str {
        match self {
            Point::Intent => "after-intent",
            Point::Put => "after-put",
            Point::Commit => "after-commit",
        }
    }
}

/// The child's side: not a test of its own (ignored; the parent starts it with `--ignored`).
#[test]
#[ignore = "child-process entry point, started by the parent test with --ignored"]
fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_ENV).map(PathBuf::from) else { return };
    let point = std::env::var(POINT_ENV).expect("crash point");
    let point = *Point::ALL.iter().find(|p| p.name() == point).expect("known crash point");
    run(async {
        let gated = Arc::new(Gated::new(Arc::new(file_attachments(&dir))));
        let world = World::file_over(&dir, ManualClock::new(START_MS), gated.clone());
        let store = world.open(SESSION).await;
        world.put(SESSION, COMMITTED).await;
        commit(&*store, SESSION).await;
        if point == Point::Intent {
            let (reached, _release) = gated.arm(Pause::BeforePut);
            let _put = tokio::spawn(async move { world.put(SESSION, LAST).await });
            reached.await.expect("put reached the store");
            println!("at {}", point.name());
            return std::future::pending().await;
        }
        world.put(SESSION, LAST).await;
        if point == Point::Commit {
            commit(&*store, SESSION).await;
        }
        println!("at {}", point.name());
        drop(world);
        std::future::pending::<()>().await;
    });
}

fn child(dir: &Path, point: Point) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args([
        "--exact",
        "crash_child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ]);
    command.env(DIR_ENV, dir).env(POINT_ENV, point.name());
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    command
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn a_sweep_after_a_crash_keeps_every_committed_attachment_and_nothing_else() {
    for point in Point::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut process = child(dir.path(), point).spawn().unwrap();
        let stdout = BufReader::new(process.stdout.take().unwrap());
        let reached =
            stdout.lines().map_while(Result::ok).any(|line| line == format!("at {}", point.name()));
        process.kill().unwrap(); // SIGKILL
        process.wait().unwrap();
        assert!(reached, "{point:?}: the child never reached the crash point");

        let aged = ManualClock::new(START_MS);
        let world = World::file(dir.path(), aged);
        world.age();
        let report = run_sweep(&world);
        let committed = AttachmentId::of(COMMITTED);
        let last = AttachmentId::of(LAST);
        let last_committed = point == Point::Commit;
        run(async {
            assert!(world.readable(&committed).await, "{point:?}: the committed attachment");
            assert_eq!(
                world.readable(&last).await,
                last_committed,
                "{point:?}: the last attachment"
            );
            assert!(world.uncommitted(SESSION).await.is_empty(), "{point:?}: rows left");
        });
        let expected_deleted = if point == Point::Put { vec![last.clone()] } else { vec![] };
        assert_eq!(report.deleted, expected_deleted, "{point:?}: {report:?}");
        let expected_rows = usize::from(!last_committed);
        assert_eq!(report.forgotten_rows.len(), expected_rows, "{point:?}: {report:?}");

        let root = dir.path().join("attachments");
        let mut expected: Vec<String> = [&committed]
            .into_iter()
            .chain(last_committed.then_some(&last))
            .map(|id| format!("objects/{}/{}", id.shard(), id.hex()))
            .collect();
        expected.sort();
        let stored: Vec<String> =
            files(&root).into_iter().filter(|f| !f.starts_with("refs/")).collect();
        assert_eq!(stored, expected, "{point:?}: no orphan bytes, trash or temporary files");
        let references = files(&root.join("refs"));
        assert_eq!(references.len(), 1 + usize::from(last_committed), "{point:?}: {references:?}");
    }
}

fn run_sweep(world: &World) -> SweepReport {
    run(world.sweeper().sweep()).expect("sweep")
}
