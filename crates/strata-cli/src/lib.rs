//! `strata`: the command-line tool of Strata (this library is the binary's body; its
//! `main` calls [`main`]).
//!
//! ```text
//! strata bench [--backend file|memory] [--layers tracing,metrics] [--dir PATH]
//!              [--compare CONFIG CONFIG...] [--sessions N --turns T --concurrency C ...]
//!              [--json FILE] [--report FILE]
//! ```
//!
//! `strata bench` runs a realistic agent-session workload (see `strata bench --help` and the
//! [`bench::workload`] module) on a backend with layers stacked over it, or on several such
//! configurations interleaved in rounds (`--compare`), and prints a table per configuration
//! (throughput, p50, p95, p99 and max latency per operation, from HDR histograms) plus each
//! configuration's ratios against the first. `--json` writes the same figures for machines,
//! `--report` a self-contained HTML page with latency charts.
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
//!   3 the command ran and found failures (`bench`: operations failed unexpectedly; the
//!   reports are still written); 101 internal error (a bug).
//! - Backends and layers are entries of the tables in [`stack`]; the commands still to come
//!   (`inspect`, `verify`, `sweep`) are further variants of [`cli::Command`] with a module
//!   each, sharing these conventions and [`error::CliError`].
//!
//! # What `bench` installs for the layers
//!
//! The tracing layer is measured with a real `tracing-subscriber` that formats every span and
//! event up to `--trace-level` (default `debug`: every span) and discards the text; the
//! metrics layer with the Prometheus recorder (`metrics-exporter-prometheus`), with the
//! layer's documented buckets. The report says how many spans and calls they recorded, next
//! to the store calls made (see [`observe`]).
//!
//! # Dependencies and why
//!
//! - `strata` (facade, `full`): the backends and layers being measured.
//! - `clap` (derive, `wrap_help`): argument parsing, `--help`, `--version` and usage errors;
//!   the standard for Rust command lines.
//! - `indicatif`: the progress bar on stderr, drawn only on a terminal.
//! - `hdrhistogram`: latency percentiles with bounded relative error (3 significant digits)
//!   over any range, mergeable across worker tasks: what latency benchmarks use.
//! - `serde`, `serde_json`: the `--json` report.
//! - `tracing`, `tracing-subscriber`: the tool's diagnostics and the subscriber the tracing
//!   layer is measured with.
//! - `metrics-exporter-prometheus`: the production recorder the metrics layer is measured
//!   with (no HTTP listener).
//! - `tokio`: the multi-threaded runtime the sessions run on.
//! - `tempfile`: the default store directory, removed after the run.
//! - `thiserror`: [`error::CliError`].
//! - Tests only: `assert_cmd` (runs the built binary), `predicates` (assertions on its output).

pub mod bench;
pub mod cli;
pub mod error;
pub mod observe;
pub mod stack;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::error::one_line;

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
    };
    let observability = observe::install_subscriber(cli.verbosity.level(), store_level);
    let result = match &cli.command {
        Command::Bench(args) => bench::run(args, &observability, cli.verbosity.quiet()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error.to_string()));
            ExitCode::from(error.exit_code())
        }
    }
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
    let text = error.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    let message = lines.next().unwrap_or("invalid arguments").trim_start_matches("error: ");
    let tips = lines.filter_map(|line| line.strip_prefix("tip: "));
    let parts: Vec<&str> = std::iter::once(message).chain(tips).chain([help.as_str()]).collect();
    eprintln!("error: {}", one_line(&parts.join("; ")));
    ExitCode::from(2)
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
