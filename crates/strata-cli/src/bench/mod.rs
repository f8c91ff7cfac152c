//! `strata bench`: runs the agent-session [workload] on each configuration, interleaved in
//! rounds, and reports what it measured ([report] for the table and JSON, [html] for the
//! page).
//!
//! Rounds: the turns are split into `--rounds` slices; round `r` runs slice `r` on every
//! configuration, one configuration at a time, starting with configuration `r mod n`. Every
//! configuration thus sees its sessions at the same sizes in the same round, and a burst of
//! machine noise lands on one slice of one configuration rather than on a whole
//! configuration. A configuration's time is the sum of its slices' wall times.
//!
//! Within a slice, `--concurrency` worker tasks take sessions from a shared list and run the
//! slice's turns of each; every worker records into its own [`Recorder`], merged afterwards.

pub mod html;
pub mod report;
pub mod stats;
pub mod workload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use metrics_exporter_prometheus::PrometheusHandle;
use strata::DurabilityTier;

use self::report::BenchReport;
use self::stats::Recorder;
use self::workload::{Session, Workload};
use crate::cli::BenchArgs;
use crate::error::{self, CliError};
use crate::layout::Layout;
use crate::observe::{self, Observability};
use crate::stack::{self, FaultDrill, OpenStack, StackOptions, StackSpec};

/// One configuration being benchmarked.
pub struct Configuration {
    /// Unique label: the canonical spec, with `#2`, `#3` … on repeats.
    pub label: String,
    /// The backend and layers.
    pub spec: StackSpec,
    /// The resolved order, outermost first, the workload's layers included.
    pub order: String,
    /// Its data directory, when it has one.
    pub dir: Option<PathBuf>,
    /// The tier its factory reports.
    pub tier: DurabilityTier,
    /// What was measured.
    pub recorder: Recorder,
    /// Wall time of its slices, summed.
    pub elapsed: Duration,
    /// Spans the tracing layer recorded during its slices (when it has the layer).
    pub tracing_spans: Option<u64>,
    /// Calls its metrics layer recorded, read from the recorder (when it has the layer).
    pub metrics_calls: Option<u64>,
    /// What its other layers recorded, read from the recorder (counter name → total).
    pub layer_counters: Vec<(&'static str, u64)>,
    stack: Arc<OpenStack>,
    sessions: Vec<Session>,
}

impl Configuration {
    /// Sessions a failure stopped.
    pub fn sessions_stopped(&self) -> u64 {
        self.sessions.iter().filter(|session| session.stopped()).count() as u64
    }

    /// Faults the drill injected, by operation, and the calls that reached it (with
    /// `--faults`).
    pub fn faults_injected(&self) -> Option<(Vec<(&'static str, u64)>, u64)> {
        self.stack.faults_injected()
    }
}

/// Runs `strata bench`.
pub fn run(args: &BenchArgs, observability: &Observability, quiet: bool) -> Result<(), CliError> {
    let specs = args.configurations().map_err(CliError::Usage)?;
    let workload = workload_from(args);
    if let Some(path) = &args.json {
        error::require_writable_file("JSON report", path)?;
    }
    if let Some(path) = &args.report {
        error::require_writable_file("HTML report", path)?;
    }
    let (root, _temporary) = data_root(args, &specs)?;
    let recorder = specs
        .iter()
        .any(observe::records_metrics)
        .then(observe::install_recorder)
        .transpose()
        .map_err(CliError::Internal)?;

    if report::BUILD == "debug" {
        tracing::warn!("this is a debug build, its figures say little: build with --release");
    }
    let mut configurations = open_configurations(&specs, root.as_ref(), &workload)?;
    for configuration in &configurations {
        let place = configuration
            .dir
            .as_ref()
            .map_or(String::new(), |dir| format!(", data in {}", dir.display()));
        tracing::info!("configuration {}: {}{place}", configuration.label, configuration.order);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::Internal(format!("cannot start the async runtime: {error}")))?;
    let progress = progress_bar(&workload, configurations.len(), quiet);
    observability.console().set_progress_bar(Some(progress.clone()));
    let outcome =
        runtime.block_on(run_rounds(&mut configurations, &workload, &progress, observability));
    progress.finish_and_clear();
    observability.console().set_progress_bar(None);
    outcome?;
    if let Some(handle) = &recorder {
        read_recorder(&mut configurations, handle);
    }
    drop(runtime);

    let report = BenchReport::new(&workload, &configurations, args.dir.is_some());
    match report.write_table(&mut std::io::stdout().lock()) {
        // A reader that stopped early (`| head`) still gets the files below.
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(CliError::io("write to", std::path::Path::new("stdout"))(error));
        }
        _ => {}
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).expect("the report serializes");
        std::fs::write(path, json).map_err(CliError::io("write the JSON report to", path))?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, html::render(&report))
            .map_err(CliError::io("write the HTML report to", path))?;
    }
    match report.first_failure() {
        Some(first) if report.failed > 0 => Err(CliError::Failures(format!(
            "{} operation(s) failed unexpectedly; first: {first}",
            report.failed
        ))),
        _ => Ok(()),
    }
}

fn workload_from(args: &BenchArgs) -> Workload {
    Workload {
        sessions: args.sessions,
        turns: args.turns,
        concurrency: args.concurrency,
        rounds: args.rounds.min(args.turns),
        nodes_per_turn: args.nodes_per_turn,
        payload_bytes: args.payload_bytes,
        inputs_per_turn: args.inputs_per_turn,
        checkpoint_bytes: args.checkpoint_bytes,
        attachment_every: args.attachment_every,
        attachment_bytes: args.attachment_bytes,
        reload_every: args.reload_every,
        replay_every: args.replay_every,
        conflict_every: args.conflict_every,
        maintenance_every: args.maintenance_every,
        faults: args.faults.map(|rate| FaultDrill { rate, seed: args.faults_seed }),
    }
}

/// The directory the file-backed configurations live under: `--dir` (which must exist), or
/// a temporary directory removed when the returned guard drops. `None` when no configuration
/// keeps files.
fn data_root(
    args: &BenchArgs,
    specs: &[StackSpec],
) -> Result<(Option<PathBuf>, Option<tempfile::TempDir>), CliError> {
    let uses_dir = specs.iter().any(|spec| spec.backend().uses_dir);
    match (&args.dir, uses_dir) {
        (Some(_), false) => Err(CliError::Usage(
            "--dir is only used by the file backend, and no configuration uses it".into(),
        )),
        (Some(dir), true) => {
            error::require_dir(
                "directory",
                dir,
                "create it, or leave out --dir to use a temporary directory",
            )?;
            Ok((Some(dir.clone()), None))
        }
        (None, true) => {
            let temporary = tempfile::Builder::new()
                .prefix("strata-bench-")
                .tempdir()
                .map_err(CliError::io("create a temporary directory in", &std::env::temp_dir()))?;
            Ok((Some(temporary.path().to_path_buf()), Some(temporary)))
        }
        (None, false) => Ok((None, None)),
    }
}

fn open_configurations(
    specs: &[StackSpec],
    root: Option<&PathBuf>,
    workload: &Workload,
) -> Result<Vec<Configuration>, CliError> {
    let options =
        StackOptions { attachments: workload.writes_attachments(), faults: workload.faults };
    let mut configurations = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let repeats = specs[..index].iter().filter(|earlier| *earlier == spec).count();
        let label = match repeats {
            0 => spec.to_string(),
            n => format!("{spec} #{}", n + 1),
        };
        let layout = match root {
            Some(root) if spec.backend().uses_dir => {
                Some(Layout::create(&stack::data_dir(root, index, &label))?)
            }
            _ => None,
        };
        let stack = spec.open(&label, layout.as_ref(), &options)?;
        configurations.push(Configuration {
            order: spec.resolved_order(&options),
            label,
            spec: spec.clone(),
            dir: layout.map(|layout| layout.dir),
            tier: stack.durability_tier(),
            recorder: Recorder::default(),
            elapsed: Duration::ZERO,
            tracing_spans: spec.has_layer("tracing").then_some(0),
            metrics_calls: None,
            layer_counters: Vec::new(),
            stack: Arc::new(stack),
            sessions: (0..workload.sessions).map(Session::new).collect(),
        });
    }
    Ok(configurations)
}

fn progress_bar(workload: &Workload, configurations: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let total = u64::from(workload.sessions) * u64::from(workload.turns) * configurations as u64;
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} turns ({eta} left) {msg}",
    )
    .expect("the template is valid");
    bar.set_style(style);
    bar
}

async fn run_rounds(
    configurations: &mut [Configuration],
    workload: &Workload,
    progress: &ProgressBar,
    observability: &Observability,
) -> Result<(), CliError> {
    let count = configurations.len();
    let workload = Arc::new(workload.clone());
    for round in 0..workload.rounds {
        let turns = slice(workload.turns, workload.rounds, round);
        for step in 0..count {
            let configuration = &mut configurations[(round as usize + step) % count];
            progress.set_message(format!(
                "round {}/{}: {}",
                round + 1,
                workload.rounds,
                configuration.label
            ));
            let spans_before = observability.store_spans();
            let start = Instant::now();
            run_slice(configuration, &workload, turns.clone(), progress).await?;
            configuration.elapsed += start.elapsed();
            if let Some(spans) = &mut configuration.tracing_spans {
                *spans += observability.store_spans() - spans_before;
            }
        }
    }
    Ok(())
}

/// Turns `[start, end)` of round `round` out of `rounds` over `turns` turns.
fn slice(turns: u32, rounds: u32, round: u32) -> std::ops::Range<u32> {
    let bound = |round: u32| (u64::from(turns) * u64::from(round) / u64::from(rounds)) as u32;
    bound(round)..bound(round + 1)
}

/// Runs `turns` of every session of `configuration` on `--concurrency` worker tasks.
async fn run_slice(
    configuration: &mut Configuration,
    workload: &Arc<Workload>,
    turns: std::ops::Range<u32>,
    progress: &ProgressBar,
) -> Result<(), CliError> {
    let pending = Arc::new(Mutex::new(std::mem::take(&mut configuration.sessions)));
    let workers = workload.concurrency.min(workload.sessions);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let pending = Arc::clone(&pending);
        let stack = Arc::clone(&configuration.stack);
        let workload = Arc::clone(workload);
        let turns = turns.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let mut recorder = Recorder::default();
            let mut done = Vec::new();
            loop {
                let next = pending.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let Some(mut session) = next else { break };
                session
                    .run(&stack, &workload, turns.clone(), &mut recorder, || progress.inc(1))
                    .await;
                done.push(session);
            }
            (recorder, done)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (recorder, done) = joined
            .map_err(|error| CliError::Internal(format!("a benchmark task failed: {error}")))?;
        configuration.recorder.merge(&recorder);
        configuration.sessions.extend(done);
    }
    // Keep the session order stable from round to round.
    configuration.sessions.sort_by(|a, b| a.id().cmp(b.id()));
    Ok(())
}

/// Reads back what each configuration's layers recorded: the metrics layer's calls, and the
/// other layers' counters (cache hits, retries, breaker transitions…).
fn read_recorder(configurations: &mut [Configuration], handle: &PrometheusHandle) {
    let rendering = observe::render(handle);
    for configuration in configurations {
        let label = &configuration.label;
        if configuration.spec.has_layer("metrics") {
            configuration.metrics_calls = Some(observe::counter(
                &rendering,
                strata::layers::metrics::names::OPERATIONS,
                label,
            ));
        }
        configuration.layer_counters = observe::layer_counters(&configuration.spec)
            .map(|name| (name, observe::counter(&rendering, name, label)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn rounds_are_at_most_one_per_turn() {
        let cli = crate::cli::Cli::try_parse_from(["strata", "bench", "--turns", "3"]).unwrap();
        let crate::cli::Command::Bench(args) = cli.command else { panic!("bench") };
        assert_eq!((args.rounds, workload_from(&args).rounds), (10, 3));
    }

    #[test]
    fn slices_cover_every_turn_once() {
        for (turns, rounds) in [(10, 3), (7, 7), (150, 5), (1, 1)] {
            let covered: Vec<u32> =
                (0..rounds).flat_map(|round| slice(turns, rounds, round)).collect();
            assert_eq!(covered, (0..turns).collect::<Vec<_>>());
            assert!((0..rounds).all(|round| !slice(turns, rounds, round).is_empty()));
        }
    }
}
