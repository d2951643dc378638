//! Overseer side by side with raw ractor, ractor-supervisor and kameo (issue 9).
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml                    # all, ~6.5 min
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- --quick         # smoke run
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- restart ask     # some scenarios
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- --json out.json
//! ```
//!
//! Six scenarios ([`scenarios::SCENARIOS`]), each run for every system in the same run, the
//! systems interleaved within each repetition, every run on a fresh 2-worker tokio runtime.
//! The report is printed as Markdown tables (median of the repetitions' figures, and the
//! ratio to the fastest peer) and written as JSON.
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![deny(unused_must_use, unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use serde::Serialize;

mod measure;
mod report;
mod scenarios;
mod systems;

use report::Table;
use scenarios::{Config, SCENARIOS};

const USAGE: &str = "\
usage: cargo run --release --manifest-path benches/peers/Cargo.toml -- [options] [filter...]

Runs Overseer side by side with raw ractor, ractor-supervisor and kameo and prints Markdown
tables. A filter keeps the scenarios whose key contains it:
  restart, storm, ask, spawn, governance, kill

options:
  --quick          fewer repetitions and smaller sizes (a smoke run)
  --reps <n>       repetitions of every measurement (default 5, 2 with --quick)
  --workers <n>    worker threads of every runtime (default 2; 1 keeps every task on one
                   worker, which takes the scheduler's placement out of the figures)
  --json <file>    where to write the JSON report (default: <target dir>/peers-report.json)
  --help           this text";

/// The command line.
#[derive(Debug)]
struct Options {
    config: Config,
    filters: Vec<String>,
    json: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut quick = false;
        let mut repetitions = None;
        let mut json = None;
        let mut filters = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--help" | "-h" => return Ok(None),
                "--quick" => quick = true,
                "--reps" => {
                    let value = args.next().ok_or("--reps needs a number")?;
                    let reps: usize = value
                        .parse()
                        .map_err(|_| format!("--reps: not a number: {value}"))?;
                    if reps == 0 {
                        return Err("--reps must be at least 1".to_string());
                    }
                    repetitions = Some(reps);
                }
                "--json" => json = Some(PathBuf::from(args.next().ok_or("--json needs a file")?)),
                "--workers" => {
                    let value = args.next().ok_or("--workers needs a number")?;
                    match value.parse::<usize>() {
                        Ok(workers) if workers > 0 => measure::set_worker_threads(workers),
                        _ => return Err(format!("--workers: not a positive number: {value}")),
                    }
                }
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                filter => {
                    if !SCENARIOS
                        .iter()
                        .any(|scenario| scenario.key.contains(filter))
                    {
                        return Err(format!("no scenario matches '{filter}'"));
                    }
                    filters.push(filter.to_string());
                }
            }
        }
        let mut config = if quick {
            Config::quick()
        } else {
            Config::full()
        };
        if let Some(repetitions) = repetitions {
            config.repetitions = repetitions;
        }
        Ok(Some(Self {
            config,
            filters,
            json,
        }))
    }

    fn selects(&self, key: &str) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|filter| key.contains(filter.as_str()))
    }
}

/// The machine the run was on, and the Overseer it measured.
#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    memory_gib: f64,
    os: String,
    rustc: String,
    /// The commit of the repository the Overseer crates were built from, and whether they had
    /// uncommitted changes when the run started.
    overseer: String,
    /// The 1-minute load average when the run started (other work on the machine skews
    /// every figure).
    load_at_start: String,
}

/// The 1-minute load average, from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The Overseer commit the harness was built against (it depends on `../..` by path), and
/// whether its code (`crates/`, `src/`, `Cargo.toml`) had uncommitted changes.
fn overseer_commit() -> String {
    let repository = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(["-C", repository])
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_string();
    };
    match git(&["status", "--porcelain", "--", "crates", "src", "Cargo.toml"]) {
        Some(changes) if changes.is_empty() => format!("commit {commit}"),
        _ => format!("commit {commit} with uncommitted changes in its crates"),
    }
}

impl Machine {
    fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            memory_gib: (memory_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            rustc,
            overseer: overseer_commit(),
            load_at_start: load_average(),
        }
    }
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report<'a> {
    command: String,
    machine: &'a Machine,
    load_at_end: String,
    repetitions: usize,
    quick: bool,
    seconds: f64,
    tables: &'a [Table],
}

/// Where the JSON report goes by default: `$CARGO_TARGET_DIR` if set, else this package's
/// `target/`.
fn default_json_path() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("peers-report.json")
}

/// Silences the panics the benchmarks inject (thousands of them), and only those.
fn silence_injected_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if message.is_some_and(|message| message.contains(systems::INJECTED_PANIC)) {
            return;
        }
        default_hook(info);
    }));
}

fn main() -> ExitCode {
    silence_injected_panics();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(scenarios::spawn::SUBCOMMAND) {
        return scenarios::spawn::child_main(&args[1..]);
    }
    let options = match Options::parse(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("{error}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };

    let started = Instant::now();
    let machine = Machine::read();
    let command = format!(
        "cargo run --release --manifest-path benches/peers/Cargo.toml{}",
        if args.is_empty() {
            String::new()
        } else {
            format!(" -- {}", args.join(" "))
        }
    );
    println!("## Side by side with ractor, ractor-supervisor and kameo\n");
    println!("```sh\n{command}\n```\n");
    println!(
        "Machine: {} vCPU ({}), {} GiB, {}, {}; load average {} at the start. Overseer at \
         {}. Every run on a fresh multi-thread tokio runtime with {} worker threads; {} \
         repetitions{}, each table giving their median (and in parentheses the lowest and \
         highest repetition) and its ratio to the fastest peer's.\n",
        machine.cpus,
        machine.cpu_model,
        machine.memory_gib,
        machine.os,
        machine.rustc,
        machine.load_at_start,
        machine.overseer,
        measure::worker_threads(),
        options.config.repetitions,
        if options.config.quick {
            " (--quick: smaller sizes)"
        } else {
            ""
        }
    );

    let mut tables = Vec::new();
    for scenario in SCENARIOS.iter().filter(|s| options.selects(s.key)) {
        let scenario_started = Instant::now();
        for table in (scenario.run)(&options.config) {
            println!("{}", table.markdown());
            tables.push(table);
        }
        eprintln!(
            "[{}] done in {:.1} s",
            scenario.key,
            scenario_started.elapsed().as_secs_f64()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let load_at_end = load_average();
    println!(
        "Total time of the run: {seconds:.0} s; load average {} at the start, {load_at_end} at \
         the end.",
        machine.load_at_start
    );

    let report = Report {
        command,
        machine: &machine,
        load_at_end,
        repetitions: options.config.repetitions,
        quick: options.config.quick,
        seconds,
        tables: &tables,
    };
    let path = options.json.unwrap_or_else(default_json_path);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    let written = serde_json::to_string_pretty(&report)
        .map_err(|error| error.to_string())
        .and_then(|json| std::fs::write(&path, json).map_err(|error| error.to_string()));
    match written {
        Ok(()) => eprintln!("JSON report: {}", path.display()),
        Err(error) => {
            eprintln!("could not write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let failed = tables
        .iter()
        .flat_map(|table| &table.rows)
        .any(|row| row.failure.is_some());
    if failed {
        eprintln!("some runs failed: see the tables");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
