//! `strata`: the command-line tool of Strata (this library is the binary's body; its
//! `main` calls [`main`]).
//!
//! ```text
//! strata bench   [--backend file|memory] [--layers LIST | --compare CONFIG CONFIG...]
//!                [--faults RATE] [--dir ROOT] [--json FILE] [--report FILE] [workload flags]
//! strata inspect DIR [--session ID [--path-nodes N]] [--json]
//! strata verify  DIR [--json]
//! strata sweep   DIR --grace DURATION [--dry-run]
//! ```
//!
//! - `strata bench` runs a realistic agent-session workload (see `strata bench --help` and the
//!   [`bench::workload`] module) on a backend with layers stacked over it, or on several such
//!   configurations interleaved in rounds (`--compare file file+cache file+full`), and prints
//!   a table per configuration (throughput, p50, p95, p99 and max latency per operation, from
//!   HDR histograms) plus each configuration's ratios against the first. `--json` writes the
//!   same figures for machines, `--report` a self-contained HTML page with latency charts.
//!   `--faults RATE` drills the policy layers ([`stack`] says what it injects).
//! - `strata inspect` ([`inspect`]) shows what a store directory holds, `strata verify`
//!   ([`verify`]) checks every record's checksum and every reference; both read-only, also
//!   while another process holds the store (`strata_file::inspect`).
//! - `strata sweep` ([`sweep`]) runs the orphan-attachment sweeper over a data directory.
//!
//! The directories they read and write are described in [`layout`]: a data directory holds
//! `sessions/` (the file store's factory root) and `attachments/` (a file attachment store);
//! `strata bench --dir ROOT` leaves one per configuration.
//!
//! # Conventions
//!
//! - Every command has `--help` with examples; `--version` prints the version.
//! - `-v`/`-vv`/`-vvv` raise the level of the diagnostics on stderr (info, debug, trace;
//!   default warnings), `--quiet` lowers it to errors and hides the progress bar. Results go to
//!   stdout.
//! - A failure is one line on stderr, `error: …`, naming what to fix; no backtrace. Exit
//!   statuses (also under `strata --help`): 0 success; 1 the command could not do its job
//!   (missing directory, unwritable report, store that cannot be opened); 2 bad arguments;
//!   3 the command ran and found failures (`bench`: operations failed unexpectedly, the
//!   reports are still written; `verify`: problems, each named; `inspect`: a session it could
//!   not read; `sweep`: sessions it could not read); 101 internal error (a bug).
//! - Backends and layers are entries of the tables in [`stack`]; each command is a variant of
//!   [`cli::Command`] with a module of its own, sharing these conventions and
//!   [`error::CliError`].
//!
//! # What `bench` installs for the layers
//!
//! The tracing layer is measured with a real `tracing-subscriber` that formats every span and
//! event up to `--trace-level` (default `debug`: every span) and discards the text; the layers
//! that record metrics (metrics, cache, retry, timeout, limit, breaker) with the Prometheus
//! recorder (`metrics-exporter-prometheus`), with the metrics layer's documented buckets. The
//! report says what they recorded (spans, counted calls, cache hits, retries, breaker
//! transitions), next to the store calls made (see [`observe`]).
//!
//! # Dependencies and why
//!
//! - `strata` (facade, `full`): the backends, layers and attachment stores being measured,
//!   and the file store's read-only inspection.
//! - `clap` (derive, `wrap_help`): argument parsing, `--help`, `--version` and usage errors;
//!   the standard for Rust command lines.
//! - `indicatif`: the progress bar on stderr, drawn only on a terminal.
//! - `hdrhistogram`: latency percentiles with bounded relative error (3 significant digits)
//!   over any range, mergeable across worker tasks: what latency benchmarks use.
//! - `humantime`: `sweep --grace` durations (`90s`, `30m`, `1h`) parsed and printed the way
//!   people write them.
//! - `serde`, `serde_json`: the JSON outputs; payload previews in `inspect`.
//! - `tracing`, `tracing-subscriber`: the tool's diagnostics and the subscriber the tracing
//!   layer is measured with.
//! - `metrics-exporter-prometheus`: the production recorder the metrics-recording layers are
//!   measured with (no HTTP listener).
//! - `tokio`: the multi-threaded runtime the sessions run on, and the one the other commands
//!   list sessions and sweep on.
//! - `tempfile`: the default store directory, removed after the run.
//! - `thiserror`: [`error::CliError`].
//! - Tests only: `assert_cmd` (runs the built binary), `predicates` (assertions on its output).

pub mod bench;
pub mod cli;
pub mod error;
pub mod inspect;
pub mod layout;
pub mod observe;
pub mod stack;
pub mod sweep;
pub mod verify;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use tracing::level_filters::LevelFilter;

use crate::cli::{Cli, Command};
use crate::error::{CliError, one_line};

/// Runs the command line of this process: parses it, installs the diagnostics, runs the
/// command, and turns its outcome into the documented exit status.
pub fn main() -> ExitCode {
    report_panics_in_one_line();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let store_level = match &cli.command {
        Command::Bench(args) => args.trace_level,
        Command::Inspect(_) | Command::Verify(_) | Command::Sweep(_) => LevelFilter::OFF,
    };
    let observability = observe::install_subscriber(cli.verbosity.level(), store_level);
    let result = match &cli.command {
        Command::Bench(args) => bench::run(args, &observability, cli.verbosity.quiet()),
        Command::Inspect(args) => inspect::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Sweep(args) => sweep::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error.to_string()));
            ExitCode::from(error.exit_code())
        }
    }
}

/// A runtime for the commands other than `bench` (listing sessions, sweeping): one thread,
/// plus tokio's blocking pool for the file work.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::Internal(format!("cannot start the async runtime: {error}")))
}

/// Help and version go to stdout (exit 0); a usage error becomes one line: clap's message,
/// its tip if it has one, and which `--help` to read (exit 2).
fn usage_error(error: &clap::Error) -> ExitCode {
    let help = match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let commands: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|command| command.get_name().to_owned())
                .collect();
            eprintln!("error: name a command ({}); see 'strata --help'", commands.join(", "));
            return ExitCode::from(2);
        }
        _ => format!("see '{} --help'", typed_command()),
    };
    eprintln!("error: {}", one_line(&format!("{}; {help}", clap_message(error))));
    ExitCode::from(2)
}

/// clap's message for `error` in one line: its first line, the lines that go with it (the
/// arguments a "not provided" error lists), and its tips, without the usage block.
fn clap_message(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let mut lines =
        text.lines().map(str::trim).filter(|line| !line.is_empty()).take_while(|line| {
            !line.starts_with("Usage:") && !line.starts_with("For more information")
        });
    let mut message =
        lines.next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_owned();
    for line in lines {
        match line.strip_prefix("tip: ") {
            Some(tip) => message.push_str(&format!("; {tip}")),
            None => message.push_str(&format!(" {line}")),
        }
    }
    message
}

/// `strata` followed by the subcommand named on the command line, if any (`strata bench`).
fn typed_command() -> String {
    let command = Cli::command();
    let known = |word: &str| command.get_subcommands().any(|sub| sub.get_name() == word);
    match std::env::args().skip(1).find(|word| known(word)) {
        Some(subcommand) => format!("strata {subcommand}"),
        None => "strata".to_owned(),
    }
}

/// A panic (a bug) prints one line instead of a backtrace hint; the exit status stays 101.
fn report_panics_in_one_line() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic");
        let place = info.location().map_or(String::new(), |location| format!(" at {location}"));
        eprintln!(
            "error: internal error (a bug in strata, please report it): {}{place}",
            one_line(message)
        );
    }));
}
