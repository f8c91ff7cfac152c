//! Command tests of `strata inspect`, `strata verify` and `strata sweep` (the built binary)
//! on a data directory a scripted session wrote through the library: what inspect shows,
//! verify on the good store and on corrupted copies (a log record, the snapshot, a body
//! file, a missing attachment), sweep and its dry run, and one-line errors.

mod common;

use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;
use strata::file::format::{FILE_HEADER_LEN, FRAME_HEADER_LEN, SECTION_HEADER_LEN, frame_at};

use common::*;

fn json(args: &[&str]) -> Value {
    let output = strata().args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the JSON output parses")
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The newest log segment of the store in `dir`: the live one.
fn live_segment(dir: &Path) -> String {
    let generation = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
        .filter_map(|name| name.strip_prefix("log.")?.parse::<u64>().ok())
        .max()
        .expect("a store has a log segment");
    format!("log.{generation}")
}

#[test]
fn inspect_shows_what_a_scripted_session_wrote() {
    let root = tempfile::tempdir().unwrap();
    let data = scripted_data_dir(root.path());
    let overview = json(&["inspect", path(&data.dir), "--json"]);
    let sessions = overview["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert_eq!(session["session"], SESSION);
    assert_eq!(session["revision"], 3);
    assert_eq!(session["live_nodes"], 6);
    assert_eq!(session["tombstoned_nodes"], 0);
    assert_eq!(session["active_path"], 5, "u1 a1 u2 a2 u3: the draft is off the path");
    assert_eq!((&session["pending_batches"], &session["claimed_batches"]), (&1.into(), &1.into()));
    assert_eq!(session["expired_claims"], 0);
    assert_eq!(session["committed_attachments"], 1);
    assert_eq!(session["uncommitted_attachments"], 1);
    assert_eq!(session["held_by"], Value::Null);
    assert_eq!(overview["attachments"]["attachments"], 2);

    // The same in detail, and the path as a tree with the draft under its parent.
    let detail = json(&["inspect", path(&data.dir), "--session", SESSION, "--json"]);
    assert_eq!(detail["head"]["leaf_node_id"], "u3");
    assert_eq!(detail["meta"]["session_name"], "scripted session");
    let path_ids: Vec<&str> =
        detail["path"].as_array().unwrap().iter().map(|n| n["node_id"].as_str().unwrap()).collect();
    assert_eq!(path_ids, ["u1", "a1", "u2", "a2", "u3"]);
    assert_eq!(detail["path"][2]["branches"], serde_json::json!(["draft"]));
    let roles: Vec<&str> =
        detail["files"].as_array().unwrap().iter().map(|f| f["role"].as_str().unwrap()).collect();
    assert!(roles.contains(&"snapshot") && roles.contains(&"body file"), "{roles:?}");
    strata()
        .args(["inspect", path(&data.dir), "--session", SESSION, "--path-nodes", "0"])
        .assert()
        .success()
        .stdout(predicate::str::contains("head: revision 3, leaf u3"))
        .stdout(predicate::str::contains("● u2"))
        .stdout(predicate::str::contains("user: fix the parser"))
        .stdout(predicate::str::contains("└─ draft (off the path)"))
        .stdout(predicate::str::contains("queue: 1 pending, 1 claimed, 0 expired claims"))
        .stdout(predicate::str::contains("attachments: 1 committed, 1 uncommitted"));
    // The factory root and the session directory itself are accepted too.
    let by_root = json(&["inspect", path(&data.dir.join("sessions")), "--json"]);
    assert_eq!(by_root["sessions"][0]["revision"], 3);
    let by_dir = json(&["inspect", path(&data.session_dir), "--json"]);
    assert_eq!(by_dir["sessions"][0]["session"], SESSION);
}

#[test]
fn verify_passes_on_a_good_store_and_names_the_file_and_offset_of_damage() {
    let root = tempfile::tempdir().unwrap();
    let data = scripted_data_dir(root.path());
    strata()
        .args(["verify", path(&data.dir)])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{SESSION}: ok")))
        .stdout(predicate::str::contains("1 attachments checked"))
        .stdout(predicate::str::ends_with("OK: no problems\n"));

    // A damaged copy: exit 3, the problem's file and offset on stdout, one line on stderr.
    let damaged = |name: &str, damage: &dyn Fn(&Path)| -> String {
        let copy = root.path().join(name);
        copy_tree(&data.dir, &copy);
        let session_dir = copy.join("sessions").join(SESSION);
        damage(&session_dir);
        let stdout = assert_one_line_error(
            &["verify", path(&copy)],
            3,
            &format!("1 problem(s) in 1 of 1 session(s) of {}", copy.display()),
        );
        assert!(stdout.ends_with("FAILED: 1 problem(s)\n"), "{stdout}");
        stdout
    };

    let live = live_segment(&data.session_dir);
    let log = std::fs::read(data.session_dir.join(&live)).unwrap();
    let (_, second) = frame_at(&log, FILE_HEADER_LEN).unwrap();
    let stdout = damaged("log-record", &|dir| {
        flip(&dir.join(&live), FILE_HEADER_LEN + FRAME_HEADER_LEN + 1)
    });
    let expected = format!(
        "{live}:{FILE_HEADER_LEN}: record payload checksum mismatch, followed by a valid record at offset {second}"
    );
    assert!(stdout.contains(&expected), "{stdout}");

    let table = FILE_HEADER_LEN + SECTION_HEADER_LEN;
    let stdout = damaged("snapshot", &|dir| flip(&dir.join("snapshot"), table + 3));
    assert!(
        stdout.contains(&format!("/snapshot:{table}: graph table checksum mismatch")),
        "{stdout}"
    );

    let bodies = std::fs::read_dir(&data.session_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .find(|name| name.starts_with("bodies."))
        .unwrap();
    let stdout = damaged("body", &|dir| flip(&dir.join(&bodies), FILE_HEADER_LEN + 2));
    assert!(
        stdout.contains(&format!("/{bodies}:{FILE_HEADER_LEN}: body checksum mismatch")),
        "{stdout}"
    );

    // The committed attachment's bytes gone (the manifest row names the original's file).
    std::fs::remove_file(&data.committed).unwrap();
    let stdout = assert_one_line_error(&["verify", path(&data.dir)], 3, "1 problem(s)");
    let expected =
        format!("{}: missing (the bytes of committed attachment row", data.committed.display());
    assert!(stdout.contains(&expected), "{stdout}");
}

#[test]
fn verify_reports_a_torn_tail_as_what_the_next_open_discards_not_as_a_problem() {
    let root = tempfile::tempdir().unwrap();
    let data = scripted_data_dir(root.path());
    let live = live_segment(&data.session_dir);
    let log_path = data.session_dir.join(&live);
    let mut log = std::fs::read(&log_path).unwrap();
    let mut end = FILE_HEADER_LEN;
    while let Ok((_, next)) = frame_at(&log, end) {
        end = next;
    }
    log[end..end + 5].copy_from_slice(b"half ");
    std::fs::write(&log_path, &log).unwrap();
    strata()
        .args(["verify", path(&data.dir)])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{live}:{end}: torn tail of")))
        .stdout(predicate::str::contains("the next open discards it"));
    assert_eq!(std::fs::read(&log_path).unwrap(), log, "verify changed nothing");
}

#[test]
fn sweep_removes_orphans_keeps_committed_attachments_and_a_dry_run_removes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = scripted_data_dir(root.path());
    let dir = path(&data.dir);
    // Younger than the grace period: nothing is an orphan yet.
    strata()
        .args(["sweep", dir, "--grace", "1h"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 uncommitted manifest row(s), 0 past the grace period"));
    strata()
        .args(["sweep", dir, "--grace", "0s", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("dry run, nothing changed"))
        .stdout(predicate::str::contains(
            "would forget 1 row(s); would delete the bytes of 1 attachment(s)",
        ));
    assert!(data.orphan.exists() && data.committed.exists(), "the dry run removed nothing");
    assert_eq!(json(&["inspect", dir, "--json"])["sessions"][0]["uncommitted_attachments"], 1);

    strata()
        .args(["sweep", dir, "--grace", "0s"])
        .assert()
        .success()
        .stdout(predicate::str::contains("forgot 1 row(s); deleted the bytes of 1 attachment(s)"));
    assert!(!data.orphan.exists(), "the orphan's bytes are gone");
    assert!(data.committed.exists(), "the committed attachment is kept");
    let after = json(&["inspect", dir, "--json"]);
    assert_eq!(after["sessions"][0]["uncommitted_attachments"], 0);
    assert_eq!(after["sessions"][0]["committed_attachments"], 1);
    assert_eq!(after["attachments"]["attachments"], 1);
    strata().args(["verify", dir]).assert().success();
}

#[test]
fn bad_arguments_and_missing_directories_are_one_line_errors() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    for command in ["inspect", "verify"] {
        assert_one_line_error(
            &[command, path(&missing)],
            1,
            &format!("directory {} does not exist", missing.display()),
        );
        assert_one_line_error(&[command, path(root.path())], 2, "holds no strata store");
    }
    assert_one_line_error(&["sweep", path(&missing), "--grace", "1h"], 1, "does not exist");
    assert_one_line_error(&["sweep", path(root.path())], 2, "--grace <DURATION>");
    assert_one_line_error(&["sweep", path(root.path()), "--grace", "soon"], 2, "--grace");
    assert_one_line_error(&["inspect"], 2, "<DIR>");
    assert_one_line_error(&["inspect", ".", "--path-nodes", "3"], 2, "--session");

    let data = scripted_data_dir(root.path());
    let sessions = data.dir.join("sessions");
    assert_one_line_error(
        &["sweep", path(&sessions), "--grace", "1h"],
        2,
        "is not a data directory",
    );
    assert_one_line_error(
        &["inspect", path(&data.dir), "--session", "nope"],
        2,
        &format!("no session `nope` in {}; it holds: {SESSION}", data.dir.display()),
    );
    // A bench root holding data directories says which to give.
    let bench_root = root.path().to_str().unwrap();
    assert_one_line_error(
        &["verify", bench_root],
        2,
        "it holds the data directories data: give one of them",
    );
}
