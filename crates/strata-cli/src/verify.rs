//! `strata verify`: every record's checksum and every reference of each session's store
//! ([`strata::file::inspect::verify`], read-only), then the bytes every committed attachment
//! manifest row names; each problem with its file and offset.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use strata::Bytes;
use strata::attachments::{AttachmentId, IntentId, encoding};
use strata::file::inspect::{self, StoreView};

use crate::cli::VerifyArgs;
use crate::error::CliError;
use crate::inspect::{TornTailReport, format_bytes, holder_name};
use crate::layout::Layout;

/// What `verify` found in one session.
#[derive(Debug, Serialize)]
pub struct SessionVerification {
    /// The session id.
    pub session: String,
    /// Its store directory.
    pub dir: String,
    /// Every problem, each once.
    pub problems: Vec<ProblemReport>,
    /// What the next open would cut off the live log segment (not a problem).
    pub torn_tail: Option<TornTailReport>,
    /// The process holding the store while it was checked, if any.
    pub held_by: Option<String>,
    /// Log records checked.
    pub records: u64,
    /// Node bodies checked.
    pub node_bodies: u64,
    /// Stamp bodies checked.
    pub stamp_bodies: u64,
    /// Blobs checked against their refs.
    pub blobs: u64,
    /// Committed attachments whose bytes were read and checked against their id.
    pub attachments: u64,
    /// Committed attachment rows not checked (their URI names no local file, or their id is
    /// not one the attachment layer writes).
    pub attachments_unchecked: u64,
}

/// One problem: where (a path, `path:offset` for damage in a file) and what.
#[derive(Debug, Serialize)]
pub struct ProblemReport {
    /// Where.
    pub location: String,
    /// What is wrong.
    pub detail: String,
}

/// Runs `strata verify`.
pub fn run(args: &VerifyArgs) -> Result<(), CliError> {
    let runtime = crate::runtime()?;
    let layout = runtime.block_on(Layout::find(&args.dir))?;
    let sessions = runtime.block_on(layout.session_dirs())?;
    drop(runtime);
    let mut attachments = AttachmentChecks::default();
    let found: Vec<SessionVerification> =
        sessions.iter().map(|(id, dir)| verify_session(id, dir, &mut attachments)).collect();
    let problems: usize = found.iter().map(|session| session.problems.len()).sum();
    let damaged = found.iter().filter(|session| !session.problems.is_empty()).count();
    let out = &mut std::io::stdout().lock();
    let written = if args.json {
        crate::inspect::write_json(out, &found)
    } else {
        write_report(out, &layout, &found)
    };
    written.map_err(CliError::io("write to", Path::new("stdout")))?;
    match problems {
        0 => Ok(()),
        _ => Err(CliError::Failures(format!(
            "{problems} problem(s) in {damaged} of {} session(s) of {}",
            found.len(),
            layout.dir.display()
        ))),
    }
}

fn verify_session(id: &str, dir: &Path, attachments: &mut AttachmentChecks) -> SessionVerification {
    let mut report = SessionVerification {
        session: id.to_owned(),
        dir: dir.display().to_string(),
        problems: Vec::new(),
        torn_tail: None,
        held_by: None,
        records: 0,
        node_bodies: 0,
        stamp_bodies: 0,
        blobs: 0,
        attachments: 0,
        attachments_unchecked: 0,
    };
    let verification = match inspect::verify(dir) {
        Ok(verification) => verification,
        Err(error) => {
            report
                .problems
                .push(ProblemReport { location: report.dir.clone(), detail: error.to_string() });
            return report;
        }
    };
    let files: Vec<&str> = verification.files.iter().map(|file| file.name.as_str()).collect();
    report.problems = verification
        .problems
        .iter()
        .map(|problem| ProblemReport {
            location: place(dir, &problem.location, &files),
            detail: problem.detail.clone(),
        })
        .collect();
    report.torn_tail = verification.torn_tail.as_ref().map(TornTailReport::from);
    report.held_by = holder_name(verification.holder);
    report.records = verification.records;
    report.node_bodies = verification.node_bodies;
    report.stamp_bodies = verification.stamp_bodies;
    report.blobs = verification.blobs;
    if let Some(view) = &verification.view {
        attachments.check(id, view, &mut report);
    }
    report
}

/// A problem's place: `<store dir>/<file>:<offset>` when it is in one of the store's files,
/// else the place as the verifier named it (`head`, `blob <ref>`).
fn place(dir: &Path, location: &str, files: &[&str]) -> String {
    let file = location.split(':').next().unwrap_or_default();
    if files.contains(&file) {
        format!("{}/{location}", dir.display())
    } else {
        location.to_owned()
    }
}

/// Checks of committed attachments' bytes, each content once (many rows may name it).
#[derive(Default)]
struct AttachmentChecks {
    /// Content checked: its file, and the problem found there, if any.
    done: HashMap<AttachmentId, Option<String>>,
}

impl AttachmentChecks {
    /// Checks the bytes of every committed manifest row of the session `id`.
    fn check(&mut self, id: &str, view: &StoreView, report: &mut SessionVerification) {
        for row in view.state().manifest().entries() {
            if row.committed_at_epoch_ms.is_none() {
                continue;
            }
            let (Some(intent), Some(path)) =
                (IntentId::parse(&row.attachment_id), row.canonical_uri.strip_prefix("file://"))
            else {
                report.attachments_unchecked += 1;
                continue;
            };
            report.attachments += 1;
            let content = intent.attachment_id().clone();
            let problem =
                self.done.entry(content.clone()).or_insert_with(|| check_file(path, &content));
            if let Some(detail) = problem {
                report.problems.push(ProblemReport {
                    location: path.to_owned(),
                    detail: format!(
                        "{detail} (the bytes of committed attachment row {} of session {id})",
                        row.attachment_id
                    ),
                });
            }
        }
    }
}

/// Reads the attachment file at `path` and checks it holds `id`'s bytes, as the attachment
/// store's `get` would; the problem, if any.
fn check_file(path: &str, id: &AttachmentId) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            encoding::decode(path, id, Bytes::from(bytes)).err().map(|error| error.to_string())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some("missing".into()),
        Err(error) => Some(format!("cannot read: {error}")),
    }
}

fn write_report(
    out: &mut impl Write,
    layout: &Layout,
    found: &[SessionVerification],
) -> std::io::Result<()> {
    let problems: usize = found.iter().map(|session| session.problems.len()).sum();
    writeln!(out, "verified {} session(s) in {}", found.len(), layout.dir.display())?;
    for session in found {
        let status = match session.problems.len() {
            0 => "ok".to_owned(),
            n => format!("{n} problem(s)"),
        };
        writeln!(
            out,
            "{}: {status} ({} log records, {} node and {} stamp bodies, {} blobs, {} attachments checked)",
            session.session,
            session.records,
            session.node_bodies,
            session.stamp_bodies,
            session.blobs,
            session.attachments
        )?;
        for problem in &session.problems {
            writeln!(out, "  {}: {}", problem.location, problem.detail)?;
        }
        if let Some(tail) = &session.torn_tail {
            writeln!(
                out,
                "  note: {}/{}:{}: torn tail of {} (an append never acknowledged): the next open \
                 discards it",
                session.dir,
                tail.file,
                tail.offset,
                format_bytes(tail.bytes)
            )?;
        }
        if let Some(holder) = &session.held_by {
            writeln!(out, "  note: open in {holder} while checked: its files at one instant")?;
        }
        if session.attachments_unchecked > 0 {
            writeln!(
                out,
                "  note: {} committed attachment rows not checked (no local file named)",
                session.attachments_unchecked
            )?;
        }
    }
    match problems {
        0 => writeln!(out, "OK: no problems"),
        n => writeln!(out, "FAILED: {n} problem(s)"),
    }
}
