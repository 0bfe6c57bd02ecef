//! `cargo xtask bench`: runs the criterion suites and writes `target/bench-report.md`.
//!
//! Every benchmark group holds a baseline whose name starts with `raw` and the Strongroom
//! variants of the same work; the report gives each variant's mean as a ratio of the
//! baseline measured in the same run. Only results this run wrote are reported: criterion
//! keeps every result it ever wrote under `target/criterion`, so a variant renamed or
//! removed since (or one from an experiment) would otherwise appear beside today's
//! figures as if measured with them.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::{root, Result};

/// Runs the benchmarks (`--quick`: short warm-up and measurement) and writes the report.
pub fn run(quick: bool) -> Result {
    let mut args = vec!["bench", "-p", "strongroom-benches", "--benches", "--"];
    if quick {
        args.extend(["--warm-up-time", "0.5", "--measurement-time", "1"]);
    }
    // The PostgreSQL comparison (Strongroom vs raw select vs pgcrypto) needs a server.
    let server = crate::postgres::TestServer::start()?;
    let started = SystemTime::now();
    crate::run_in(
        &root(),
        "cargo",
        &args,
        &[("STRONGROOM_TEST_POSTGRES_URL", &server.url)],
    )?;
    let mut report = report(&crate::target_dir().join("criterion"), started)?;
    // The gateway and the load test measure latency percentiles, outside criterion; the
    // load test runs on SQLite, then on PostgreSQL with one and with three server
    // instances (how far it scales, and where the audit chain's lock stops it).
    let seconds = if quick { "5" } else { "30" };
    let load = ["--seconds", seconds, "--clients", "64"];
    let postgres = |servers: &'static str| {
        let mut args = load.to_vec();
        args.extend(["--postgres", server.url.as_str(), "--servers", servers]);
        args
    };
    let (pg_one, pg_three) = (postgres("1"), postgres("3"));
    for (bin, args) in [
        (
            "gateway",
            &["--requests", "2000", "--clients", "64", "--seconds", "10"][..],
        ),
        (
            "gateway",
            &[
                "--requests",
                "500",
                "--upstream-delay-ms",
                "5",
                "--clients",
                "64",
                "--seconds",
                "10",
            ][..],
        ),
        ("load", &load[..]),
        ("load", &pg_one[..]),
        ("load", &pg_three[..]),
    ] {
        let mut command = vec![
            "run",
            "--release",
            "--quiet",
            "-p",
            "strongroom-benches",
            "--bin",
            bin,
            "--",
        ];
        command.extend_from_slice(args);
        let output = crate::capture(&root(), "cargo", &command)?;
        let _ = write!(
            report,
            "\n## {bin} {}\n\n```\n{output}```\n",
            args.join(" "),
        );
    }
    drop(server);
    let path = crate::target_dir().join("bench-report.md");
    std::fs::write(&path, &report).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{report}");
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// The table of every criterion result under `criterion` written at or after `since`.
fn report(criterion: &Path, since: SystemTime) -> Result<String> {
    let mut out = String::from("# Strongroom benchmark report\n\n");
    let _ = writeln!(out, "CPU: {}\n", cpu_model());
    out.push_str("| group | variant | mean | ratio to raw baseline |\n|---|---|---|---|\n");
    let mut groups: Vec<_> = std::fs::read_dir(criterion)
        .map_err(|e| format!("no criterion results in {}: {e}", criterion.display()))?
        .flatten()
        .filter(|e| e.path().is_dir() && e.file_name() != "report")
        .collect();
    groups.sort_by_key(std::fs::DirEntry::file_name);
    for group in groups {
        let mut variants: Vec<(String, f64)> = Vec::new();
        for variant in std::fs::read_dir(group.path())
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let name = variant.file_name().to_string_lossy().into_owned();
            if let Some(mean) = mean_ns(&variant.path(), since) {
                variants.push((name, mean));
                continue;
            }
            // Parameterised benchmarks (`variant/10000`): one row per parameter.
            for param in std::fs::read_dir(variant.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Some(mean) = mean_ns(&param.path(), since) {
                    variants.push((
                        format!("{name}/{}", param.file_name().to_string_lossy()),
                        mean,
                    ));
                }
            }
        }
        variants.sort_by(|a, b| a.0.cmp(&b.0));
        let baseline = variants
            .iter()
            .find(|(n, _)| n.starts_with("raw"))
            .map(|(_, m)| *m);
        for (name, mean) in &variants {
            // Without a raw baseline, a numeric parameter is an item count: show items/s.
            let per_second = name
                .rsplit_once('/')
                .and_then(|(_, n)| n.parse::<f64>().ok())
                .map(|n| format!("{:.0} items/s", n / (mean / 1e9)));
            let ratio = baseline.map_or_else(
                || per_second.unwrap_or_else(|| "—".to_owned()),
                |b| format!("{:.2}×", mean / b),
            );
            let _ = writeln!(
                out,
                "| {} | {name} | {} | {ratio} |",
                group.file_name().to_string_lossy(),
                human(*mean)
            );
        }
    }
    Ok(out)
}

/// How far a file's modification time may lag the clock: file systems stamp files from a
/// coarse clock (ext4: one kernel tick), so a file written just after `since` can carry a
/// slightly earlier time.
const FILE_CLOCK_SLACK: Duration = Duration::from_secs(1);

/// The mean of `variant`'s result, if this run (anything written at or after `since`)
/// measured it.
fn mean_ns(variant: &Path, since: SystemTime) -> Option<f64> {
    let estimates = variant.join("new/estimates.json");
    let written = std::fs::metadata(&estimates)
        .and_then(|m| m.modified())
        .ok()?;
    if written + FILE_CLOCK_SLACK < since {
        return None;
    }
    let text = std::fs::read_to_string(estimates).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(dir: &Path, group: &str, variant: &str, mean: f64) -> std::path::PathBuf {
        let new = dir.join(group).join(variant).join("new");
        std::fs::create_dir_all(&new).unwrap();
        let path = new.join("estimates.json");
        std::fs::write(&path, format!("{{\"mean\":{{\"point_estimate\":{mean}}}}}")).unwrap();
        path
    }

    #[test]
    fn a_result_left_by_an_earlier_run_is_not_reported() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let started = SystemTime::now();
        result(&dir, "get", "raw_select", 1000.0);
        result(&dir, "get", "strongroom_get", 2000.0);
        // A variant an earlier run measured (since renamed or removed): older than the run.
        let stale = result(&dir, "get", "old_variant", 10.0);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(started - Duration::from_hours(1))
            .unwrap();
        let table = report(&dir, started).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            table.contains("| get | strongroom_get | 2.00 µs | 2.00× |"),
            "{table}"
        );
        assert!(!table.contains("old_variant"), "{table}");
    }
}
