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
       reports are still written and count them); `verify` found problems (each named on
       stdout with its file and offset); `sweep` could not read some sessions
  101  internal error: a bug in strata (please report it)"
    };
}

/// Exit statuses, shared by every command (shown under every command's help).
pub const EXIT_CODES: &str = exit_codes!();

/// Strata's command-line tool: benchmark store backends and layer stacks; inspect, verify and
/// sweep stores.
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
  strata bench --compare file file+cache file+full
  strata bench --compare file file+full --faults 0.05 --dir runs
  strata inspect runs/2-file-full --session session-00003
  strata verify runs/2-file-full
  strata sweep runs/2-file-full --grace 1h --dry-run

",
    exit_codes!()
);

/// How much the tool says on stderr.
#[derive(Debug, Args)]
pub struct Verbosity {
    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace (default: warnings; the
    /// libraries' events one level quieter: -v shows the warnings the layers log)
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
    /// Show what a store directory holds: sessions, heads, queues, manifests, files
    #[command(long_about = INSPECT_ABOUT, after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Check every record's checksum and every reference of a store directory, read-only
    #[command(long_about = VERIFY_ABOUT, after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Remove the bytes and manifest rows of attachments whose turn never committed
    #[command(long_about = SWEEP_ABOUT, after_help = SWEEP_EXAMPLES)]
    Sweep(SweepArgs),
}

/// What `inspect` and `verify` say about the directory they take.
macro_rules! layout_help {
    () => {
        "DIR is a data directory (sessions/ holding one directory per session, and
attachments/ holding the attachment store: what `strata bench --dir` writes for each
configuration, and the layout of an application that opens FileStoreFactory on DIR/sessions
and FileAttachmentStore on DIR/attachments), a directory of session directories, or one
session's directory."
    };
}

const INSPECT_ABOUT: &str = concat!(
    "Show what a store directory holds.

Without --session: one line per session with its head revision, nodes (live and tombstoned),
active path length, queued work (pending, claimed, claims past their lease), attachment
manifest (committed and uncommitted rows) and disk use; then the attachment store. With
--session: that session's head, checkpoint, usage, metadata, queued batches, manifest rows,
files (role and size each) and its active path as a tree, root first, with the branches off
the path (e.g. superseded drafts) under the node they branch from.

Read-only: it never takes a store's lock, never writes, never cuts a torn tail, and works
while another process has the store open (the view is the files at one instant; the holding
process is named).

",
    layout_help!()
);

const INSPECT_EXAMPLES: &str = concat!(
    "Examples:
  strata inspect runs/1-file
  strata inspect runs/1-file --session session-00000
  strata inspect runs/1-file --session session-00000 --path-nodes 0    the whole path
  strata inspect ./sessions --json > sessions.json

",
    exit_codes!()
);

const VERIFY_ABOUT: &str = concat!(
    "Check every record's checksum and every reference of a store directory, read-only.

For each session: every frame of every log segment (past any damage, so every damaged place
is named), the snapshot's sections and closing record, every node and stamp body the
snapshot names, and the references: the log chain the snapshot names, the body files its
sections point into, the head's active path and checkpoint blobs, the head's live-node count,
each blob's content hash. Then every committed attachment manifest row's bytes (the file its
URI names, checked against the content id). Each problem is printed with its file and offset;
a torn tail at the end of the live log segment (an append interrupted before it was
acknowledged) is reported as what the next open will discard, not as a problem.

Read-only, like inspect: it works while another process holds a store, without disturbing
it.

",
    layout_help!()
);

const VERIFY_EXAMPLES: &str = concat!(
    "Examples:
  strata verify runs/1-file
  strata verify ./sessions/session-00003
  strata verify runs/1-file --json > verify.json

",
    exit_codes!()
);

const SWEEP_ABOUT: &str = "\
Remove the bytes and manifest rows of attachments whose turn never committed.

Runs the orphan sweeper of strata-attachments over a data directory (DIR/sessions and
DIR/attachments): manifest rows still uncommitted after the grace period are forgotten, and
their bytes deleted unless another session's row still holds them (committed, or a fresh
intent). It opens each session's store to read and forget rows, so a session another process
holds cannot be read: it is listed, its rows are left for a later sweep, and the exit status
is 3. --dry-run reports what would be removed and changes nothing.

The grace period must exceed your longest turn (from an attachment's put to its turn's
commit): a row younger than that may still be committed.";

const SWEEP_EXAMPLES: &str = concat!(
    "Examples:
  strata sweep runs/1-file --grace 1h --dry-run
  strata sweep . --grace 30m
  strata sweep runs/1-file --grace 0s       every uncommitted row (only with no writer running)

",
    exit_codes!()
);

const BENCH_ABOUT: &str = "\
Benchmark backends and layer stacks on a realistic agent-session workload.

N sessions run T turns each, C sessions at a time. A session opens its store and saves its
metadata; then every turn enqueues the turn's inputs, claims them, sometimes puts an
attachment (real bytes through the attachment layer: a manifest intent, then the bytes in the
attachment store), commits the turn (appended nodes with JSON payloads, a checkpoint, a usage
row, the claim's completion and the attachment, under a turn stamp), and reloads the active
path. Every few turns the same commit is sent again (a retry after a lost reply: the store
answers from the stamp), a stale writer commits against an old revision (the store must
refuse it: an expected head-revision conflict), and maintenance runs (tombstone the
superseded drafts, vacuum, gc). At the end every session is reopened and its active path
loaded.

Each operation's latency goes into an HDR histogram; the table gives throughput, p50, p95,
p99 and max. Outcomes the workload provokes on purpose are counted as `expected`; any other
error, or a result that contradicts the workload (an empty claim, a wrong path), counts as
`failed` and makes the exit status 3.

Stacks are built as in production, through layered factories (one cache per session, one
limiter and one breaker for all sessions). The layers do real work: the tool installs a
tracing-subscriber that records the tracing layer's spans and events up to --trace-level
(formatted in full, then discarded, so no I/O is timed) and, when a configuration has a layer
that records metrics, the Prometheus recorder; the report shows what each layer recorded
(spans, counted calls, cache hits, retries, breaker transitions) next to the store calls made.

--faults RATE drills the policy layers: every store call gets a fault with probability RATE,
half refused before reaching the store (nothing applied), half applied and then failed (a
lost reply), reproducibly from --faults-seed. Faults the layers absorb are invisible to the
workload; the others are counted per operation as `faults` (the workload knew or learned
their effect: it sends keyed writes again and checks whether a failed claim applied) or
`ambiguous` (it could not: a claim applied whose reply was lost strands its batches). Neither
changes the exit status; a result contradicting the workload still does.

With --compare, every configuration runs the same workload, interleaved in rounds (round r
runs the next slice of turns on each configuration in turn, starting with a different one
each round) so machine noise hits all alike; each is reported as a ratio against the first.";

const BENCH_EXAMPLES: &str = concat!(
    "Examples:
  strata bench --compare file file+cache file+full      plain, cached, recommended stack
  strata bench --backend memory --layers metrics,tracing
  strata bench --compare file file+retry file+full --faults 0.05 --report drill.html
  strata bench --sessions 2 --turns 5000 --reload-every 100 --json big.json
  strata bench --dir /mnt/nvme/strata-bench     measure another disk (the data is kept)

file+full is file with every layer, the recommended stack:
  tracing → metrics → cache → retry → timeout → limit → breaker → file

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
    /// `file+cache`, `file+full`); ratios are against the first. Replaces --backend and
    /// --layers
    #[arg(long, value_name = "CONFIG", num_args = 2.., value_parser = StackSpec::parse,
          conflicts_with_all = ["backend", "layers"], help_heading = "Stack")]
    pub compare: Vec<StackSpec>,

    /// Directory for file-backend stores (must exist; each configuration gets a new data
    /// directory in it, ROOT/N-LABEL with sessions/ and attachments/, kept after the run
    /// for inspect, verify and sweep). Default: a temporary directory, removed at the end
    #[arg(long, value_name = "PATH", help_heading = "Stack")]
    pub dir: Option<PathBuf>,

    /// Drill the policy layers: every store call gets a fault with this probability (0 < RATE
    /// <= 1), half refused before the store, half lost replies
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Stack")]
    pub faults: Option<f64>,

    /// Seed of the fault drill's generator (the same seed and calls give the same faults)
    #[arg(
        long,
        value_name = "SEED",
        default_value_t = 1,
        requires = "faults",
        help_heading = "Stack"
    )]
    pub faults_seed: u64,

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

    /// Put an attachment (committed with the turn) every N turns; 0: never
    #[arg(long, value_name = "N", default_value_t = 3, help_heading = "Workload")]
    pub attachment_every: u32,

    /// Size of each attachment, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 10, value_parser = clap::value_parser!(u32).range(64..=32 << 20),
          help_heading = "Workload")]
    pub attachment_bytes: u32,

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

/// `strata inspect` arguments.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The directory: a data directory, a directory of session directories, or one session's
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Show this session in detail (its active path as a tree)
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// Nodes of the active path to show, the leaf's end (0: all)
    #[arg(long, value_name = "N", default_value_t = 40, requires = "session")]
    pub path_nodes: usize,

    /// Write JSON to stdout instead of the tables
    #[arg(long)]
    pub json: bool,
}

/// `strata verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The directory: a data directory, a directory of session directories, or one session's
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Write JSON to stdout instead of the report
    #[arg(long)]
    pub json: bool,
}

/// `strata sweep` arguments.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The data directory (DIR/sessions and DIR/attachments)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// How long a row stays uncommitted before it counts as an orphan: 90s, 30m, 1h, 0s…
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,

    /// Report what would be removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
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
    stack::layer_name(name.trim())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 1.0 => Ok(rate),
        _ => Err(format!("`{text}` is not a probability above 0 and at most 1 (e.g. 0.05)")),
    }
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
        let Command::Bench(args) = cli.command else { panic!("bench") };
        let configurations = args.configurations().unwrap();
        assert_eq!(configurations.len(), 1);
        assert_eq!(configurations[0].to_string(), "file+tracing+metrics");
        let cli = Cli::try_parse_from(["strata", "bench", "--layers", "full"]).unwrap();
        let Command::Bench(args) = cli.command else { panic!("bench") };
        assert_eq!(args.configurations().unwrap()[0].to_string(), "file+full");
    }

    #[test]
    fn compare_takes_configurations_and_excludes_backend_and_layers() {
        let cli = Cli::try_parse_from(["strata", "bench", "--compare", "memory", "file+metrics"])
            .unwrap();
        let Command::Bench(args) = cli.command else { panic!("bench") };
        let labels: Vec<String> =
            args.configurations().unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(labels, ["memory", "file+metrics"]);
        let both = ["strata", "bench", "--compare", "memory", "file", "--layers", "metrics"];
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn fault_rates_are_probabilities_and_the_seed_needs_the_drill() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["strata", "bench"];
            argv.extend(args);
            Cli::try_parse_from(argv)
        };
        let Command::Bench(args) = parse(&["--faults", "0.05"]).unwrap().command else {
            panic!("bench")
        };
        assert_eq!((args.faults, args.faults_seed), (Some(0.05), 1));
        for bad in ["0", "1.5", "-0.1", "often"] {
            assert!(parse(&["--faults", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--faults-seed", "7"]).is_err(), "a seed without the drill");
    }

    #[test]
    fn sweep_takes_a_grace_period_as_a_duration() {
        let cli = Cli::try_parse_from(["strata", "sweep", "d", "--grace", "90m", "--dry-run"]);
        let Command::Sweep(args) = cli.unwrap().command else { panic!("sweep") };
        assert_eq!(args.grace, std::time::Duration::from_secs(5400));
        assert!(args.dry_run);
        assert!(Cli::try_parse_from(["strata", "sweep", "d"]).is_err(), "--grace is required");
        assert!(Cli::try_parse_from(["strata", "sweep", "d", "--grace", "soon"]).is_err());
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
