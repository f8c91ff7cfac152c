//! `strata sweep`: the orphan-attachment sweeper (`strata_attachments::Sweeper`) over a data
//! directory, and its report.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use strata::attachments::{FileAttachmentOptions, FileAttachmentStore, SweepReport, Sweeper};
use strata::file::{FileStoreFactory, FileStoreOptions};

use crate::cli::SweepArgs;
use crate::error::CliError;
use crate::layout::{Layout, Sessions};

/// Runs `strata sweep`.
pub fn run(args: &SweepArgs) -> Result<(), CliError> {
    let runtime = crate::runtime()?;
    let layout = runtime.block_on(Layout::find_data_dir(&args.dir))?;
    let (Sessions::Root(sessions), Some(attachments)) = (&layout.sessions, &layout.attachments)
    else {
        unreachable!("a data directory has both halves");
    };
    let factory =
        FileStoreFactory::open(sessions, FileStoreOptions::default()).map_err(|source| {
            CliError::Store {
                context: format!("cannot open the sessions in {}", sessions.display()),
                source,
            }
        })?;
    let store = FileAttachmentStore::open(attachments, FileAttachmentOptions::default()).map_err(
        |source| CliError::Attachments {
            context: format!("cannot open the attachment store in {}", attachments.display()),
            source,
        },
    )?;
    let mut sweeper =
        Sweeper::new(Arc::new(factory), Arc::new(store)).with_grace_period(args.grace);
    if args.dry_run {
        sweeper = sweeper.dry_run();
    }
    let report = runtime.block_on(sweeper.sweep()).map_err(|source| CliError::Attachments {
        context: format!("the sweep of {} stopped", layout.dir.display()),
        source,
    })?;
    let out = &mut std::io::stdout().lock();
    write_report(out, &layout, args, &report)
        .map_err(CliError::io("write to", Path::new("stdout")))?;
    match report.unreadable_sessions.len() {
        0 => Ok(()),
        n => Err(CliError::Failures(format!(
            "{n} session(s) could not be read (listed above); their rows are left for a later sweep"
        ))),
    }
}

fn write_report(
    out: &mut impl Write,
    layout: &Layout,
    args: &SweepArgs,
    report: &SweepReport,
) -> std::io::Result<()> {
    let (mode, forget, delete, remove) = if report.dry_run {
        ("dry run, nothing changed", "would forget", "would delete", "would remove")
    } else {
        ("", "forgot", "deleted", "removed")
    };
    let mode = if mode.is_empty() { String::new() } else { format!(", {mode}") };
    writeln!(
        out,
        "sweep of {} (grace {}{mode})",
        layout.dir.display(),
        humantime::format_duration(args.grace)
    )?;
    writeln!(
        out,
        "read {} session(s): {} uncommitted manifest row(s), {} past the grace period",
        report.sessions,
        report.uncommitted_rows,
        report.forgotten_rows.len() + report.foreign_rows
    )?;
    writeln!(
        out,
        "{forget} {} row(s); {delete} the bytes of {} attachment(s); kept {} still held by \
         another row; restored {} from the trash; {remove} {} reference(s)",
        report.forgotten_rows.len(),
        report.deleted.len(),
        report.kept.len(),
        report.restored.len(),
        report.references_removed
    )?;
    for row in &report.forgotten_rows {
        writeln!(out, "  {} {}: {}", row.session_id, row.attachment_id, row.canonical_uri)?;
    }
    if report.foreign_rows > 0 {
        writeln!(
            out,
            "left alone: {} stale row(s) not written by the attachment layer",
            report.foreign_rows
        )?;
    }
    for (session, error) in &report.unreadable_sessions {
        writeln!(out, "could not read session {session}: {error}")?;
    }
    Ok(())
}
