//! The command line: global flags and one subcommand per job (`clap` derive). Every command
//! has `--help` with examples and [`EXIT_CODES`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tracing::level_filters::LevelFilter;

use crate::stack::{self, StackSpec};

/// The exit-status table, as a literal so that help texts can `concat!` it.
macro_rules! exit_codes {
    () => {
        "Exit status:
  0    success
  1    the command could not do its job (a missing directory, an unwritable report, a store
       that cannot be opened); one line on stderr says what to fix
  2    bad arguments (one line on stderr; see --help)
  3    the command ran, and found failures: `bench` saw operations fail unexpectedly (the
       reports are still written and count them)
  101  internal error: a bug in strata (please report it)"
    };
}

/// Exit statuses, shared by every command (shown under every command's help).
pub const EXIT_CODES: &str = exit_codes!();

/// Strata's command-line tool: benchmark store backends and layer stacks.
#[derive(Debug, Parser)]
#[command(name = "strata", version, propagate_version = true, after_help = TOP_HELP)]
pub struct Cli {
    /// Global flags: how much to say on stderr.
    #[command(flatten)]
    pub verbosity: Verbosity,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

const TOP_HELP: &str = concat!(
    "Examples:
  strata bench --compare file file+metrics file+tracing+metrics
  strata bench --help

",
    exit_codes!()
);

/// How much the tool says on stderr.
#[derive(Debug, Args)]
pub struct Verbosity {
    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace (default: warnings)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Only errors on stderr, and no progress bar (results still go to stdout)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

impl Verbosity {
    /// The level of the tool's own diagnostics on stderr.
    pub fn level(&self) -> LevelFilter {
        match (self.quiet, self.verbose) {
            (true, _) => LevelFilter::ERROR,
            (false, 0) => LevelFilter::WARN,
            (false, 1) => LevelFilter::INFO,
            (false, 2) => LevelFilter::DEBUG,
            (false, _) => LevelFilter::TRACE,
        }
    }

    /// True with `--quiet`.
    pub fn quiet(&self) -> bool {
        self.quiet
    }
}

/// The tool's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark backends and layer stacks on a realistic agent-session workload
    #[command(long_about = BENCH_ABOUT, after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
}

const BENCH_ABOUT: &str = "\
Benchmark backends and layer stacks on a realistic agent-session workload.

N sessions run T turns each, C sessions at a time. A session opens its store and saves its
metadata; then every turn enqueues the turn's inputs, claims them, sometimes records an
attachment intent, commits the turn (appended nodes with JSON payloads, a checkpoint, a usage
row, the claim's completion and the attachment id, under a turn stamp), and reloads the
active path. Every few turns the same commit is sent again (a retry after a lost reply: the
store answers from the stamp), a stale writer commits against an old revision (the store
must refuse it: an expected head-revision conflict), and maintenance runs (tombstone the
superseded drafts, vacuum, gc). At the end every session is reopened and its active path
loaded.

Each operation's latency goes into an HDR histogram; the table gives throughput, p50, p95,
p99 and max. Outcomes the workload provokes on purpose are counted as `expected`; any other
error, or a result that contradicts the workload (an empty claim, a wrong path), counts as
`failed` and makes the exit status 3.

The layers do real work: the tool installs a tracing-subscriber that records the tracing
layer's spans and events up to --trace-level (formatted in full, then discarded, so no I/O
is timed) and, when a configuration has the metrics layer, the Prometheus recorder; the
report shows how many spans and calls they recorded next to the store calls made.

With --compare, every configuration runs the same workload, interleaved in rounds (round r
runs the next slice of turns on each configuration in turn, starting with a different one
each round) so machine noise hits all alike; each is reported as a ratio against the first.";

const BENCH_EXAMPLES: &str = concat!(
    "Examples:
  strata bench                                  file store, default workload
  strata bench --backend memory --layers metrics,tracing
  strata bench --compare file file+metrics file+tracing+metrics --report bench.html
  strata bench --sessions 2 --turns 5000 --reload-every 100 --json big.json
  strata bench --dir /mnt/nvme/strata-bench     measure another disk (the data is kept)

",
    exit_codes!()
);

/// `strata bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The backend (listed in `--help` from the backend table).
    #[arg(long, value_name = "NAME", default_value = "file", help = stack::backends_help(),
          value_parser = parse_backend, help_heading = "Stack")]
    pub backend: String,

    /// The layers, as typed (listed in `--help` from the layer table).
    #[arg(long, value_name = "LIST", value_delimiter = ',', help = stack::layers_help(),
          value_parser = parse_layer, help_heading = "Stack")]
    pub layers: Vec<String>,

    /// Compare configurations in one run, each written BACKEND[+LAYER...] (e.g. `file`,
    /// `file+metrics`); ratios are against the first. Replaces --backend and --layers
    #[arg(long, value_name = "CONFIG", num_args = 2.., value_parser = StackSpec::parse,
          conflicts_with_all = ["backend", "layers"], help_heading = "Stack")]
    pub compare: Vec<StackSpec>,

    /// Directory for file-backend stores (must exist; each configuration gets a new
    /// subdirectory, kept after the run). Default: a temporary directory, removed at the end
    #[arg(long, value_name = "PATH", help_heading = "Stack")]
    pub dir: Option<PathBuf>,

    /// Level up to which the tracing layer's spans and events are recorded (formatted and
    /// discarded): off, error, warn, info, debug (every span) or trace
    #[arg(long, value_name = "LEVEL", default_value = "debug", help_heading = "Stack")]
    pub trace_level: LevelFilter,

    /// Sessions per configuration
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100_000),
          help_heading = "Workload")]
    pub sessions: u32,

    /// Turns per session
    #[arg(long, value_name = "T", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=10_000_000),
          help_heading = "Workload")]
    pub turns: u32,

    /// Sessions running at once (each on its own task)
    #[arg(long, value_name = "C", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000),
          help_heading = "Workload")]
    pub concurrency: u32,

    /// Rounds the turns are split into, at most one per turn (the interleaving of --compare)
    #[arg(long, value_name = "R", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000),
          help_heading = "Workload")]
    pub rounds: u32,

    /// Nodes each turn appends on the active path (plus one superseded draft beside it)
    #[arg(long, value_name = "K", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000),
          help_heading = "Workload")]
    pub nodes_per_turn: u32,

    /// Size of each node's JSON payload and each input's, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 740, value_parser = clap::value_parser!(u32).range(128..=16 << 20),
          help_heading = "Workload")]
    pub payload_bytes: u32,

    /// Queued inputs each turn enqueues and claims (joined into one claim)
    #[arg(long, value_name = "I", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1_000),
          help_heading = "Workload")]
    pub inputs_per_turn: u32,

    /// Size of the tool-state blob each turn's checkpoint writes, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(0..=64 << 20),
          help_heading = "Workload")]
    pub checkpoint_bytes: u32,

    /// Record an attachment intent (committed with the turn) every N turns; 0: never
    #[arg(long, value_name = "N", default_value_t = 3, help_heading = "Workload")]
    pub attachment_every: u32,

    /// Reload the active path every N turns; 0: never (the reopen at the end still loads it)
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Workload")]
    pub reload_every: u32,

    /// Send a turn's commit a second time every N turns (a retry after a lost reply); 0: never
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Workload")]
    pub replay_every: u32,

    /// Commit as a stale writer (expected head-revision conflict) every N turns; 0: never
    #[arg(long, value_name = "N", default_value_t = 25, help_heading = "Workload")]
    pub conflict_every: u32,

    /// Tombstone the superseded drafts, vacuum and gc every N turns; 0: never
    #[arg(long, value_name = "N", default_value_t = 20, help_heading = "Workload")]
    pub maintenance_every: u32,

    /// Write the results as JSON to FILE
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML page with latency charts to FILE
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,
}

impl BenchArgs {
    /// The configurations to run: the `--compare` list, or `--backend` with `--layers`.
    pub fn configurations(&self) -> Result<Vec<StackSpec>, String> {
        if self.compare.is_empty() {
            Ok(vec![StackSpec::new(&self.backend, &self.layers)?])
        } else {
            Ok(self.compare.clone())
        }
    }
}

fn parse_backend(name: &str) -> Result<String, String> {
    stack::backend(name).map(|backend| backend.name.to_owned())
}

fn parse_layer(name: &str) -> Result<String, String> {
    stack::layer(name.trim()).map(|layer| layer.name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn layers_typed_in_any_order_resolve_to_one_configuration() {
        let cli = Cli::try_parse_from(["strata", "bench", "--layers", "metrics,tracing"]).unwrap();
        let Command::Bench(args) = cli.command;
        let configurations = args.configurations().unwrap();
        assert_eq!(configurations.len(), 1);
        assert_eq!(configurations[0].to_string(), "file+tracing+metrics");
    }

    #[test]
    fn compare_takes_configurations_and_excludes_backend_and_layers() {
        let cli = Cli::try_parse_from(["strata", "bench", "--compare", "memory", "file+metrics"])
            .unwrap();
        let Command::Bench(args) = cli.command;
        let labels: Vec<String> =
            args.configurations().unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(labels, ["memory", "file+metrics"]);
        let both = ["strata", "bench", "--compare", "memory", "file", "--layers", "metrics"];
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn verbosity_maps_to_levels() {
        let level = |args: &[&str]| {
            let mut argv = vec!["strata"];
            argv.extend(args);
            argv.push("bench");
            Cli::try_parse_from(argv).unwrap().verbosity.level()
        };
        assert_eq!(level(&[]), LevelFilter::WARN);
        assert_eq!(level(&["-v"]), LevelFilter::INFO);
        assert_eq!(level(&["-vv"]), LevelFilter::DEBUG);
        assert_eq!(level(&["-q"]), LevelFilter::ERROR);
        assert!(Cli::try_parse_from(["strata", "-q", "-v", "bench"]).is_err());
    }
}
