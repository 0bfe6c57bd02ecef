//! `cargo xtask docs`: every shell block of `README.md` and `docs/*.md`, run as written.
//!
//! The blocks of one file run in order, in one `bash` session (so an `export` carries on),
//! in a scratch directory under the target directory, with the built `strongroom` first on
//! `PATH`. A block is run unless an HTML comment directly above its fence says otherwise
//! (invisible on GitHub):
//!
//! - `<!-- docs-run: skip: REASON -->` — not run; the reason is required.
//! - `<!-- docs-run: before: SHELL -->` — hidden setup run just before the block.
//! - `<!-- docs-run: server: ARGS -->` — `strongroom ARGS` runs in the background during
//!   the block (started, waited for on `127.0.0.1:8090/api/health`, stopped after).
//! - `<!-- docs-run: postgres -->` — the block runs in a subshell with
//!   `STRONGROOM_DATABASE_URL` and `RESTORE_URL` naming fresh databases on a throw-away
//!   PostgreSQL server, whose client tools are on `PATH`.
//!
//! `cargo …` inside a block is the repository's cargo (`--manifest-path`), so the README's
//! `cargo build -p strongroom` works from the scratch directory.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use crate::{root, Result};

/// One shell block and what its markers ask for.
#[derive(Debug, Default)]
struct Block {
    file: String,
    line: usize,
    code: String,
    skip: Option<String>,
    before: Vec<String>,
    server: Option<String>,
    postgres: bool,
}

/// Runs every block; fails naming the first block that failed.
pub fn run() -> Result {
    let repo = root();
    let mut files = vec![repo.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo.join("docs"))
        .map_err(|e| format!("docs/: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut blocks_by_file = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = file
            .strip_prefix(&repo)
            .unwrap_or(file)
            .display()
            .to_string();
        blocks_by_file.push((name.clone(), parse(&name, &text)?));
    }
    let needs_postgres = blocks_by_file
        .iter()
        .flat_map(|(_, b)| b)
        .any(|b| b.postgres && b.skip.is_none());
    let server = if needs_postgres {
        Some(crate::postgres::TestServer::start()?)
    } else {
        None
    };
    crate::run(
        "cargo",
        &["build", "--quiet", "--locked", "-p", "strongroom"],
    )?;
    let scratch_root = crate::target_dir().join("docs-run");
    let _ = std::fs::remove_dir_all(&scratch_root);
    let (mut ran, mut skipped) = (0, 0);
    for (name, blocks) in &blocks_by_file {
        if blocks.is_empty() {
            continue;
        }
        let scratch = scratch_root.join(name.replace(['/', '.'], "_"));
        std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
        // `$PWD/target/debug/strongroom` (the README's alias) is the built binary.
        std::os::unix::fs::symlink(crate::target_dir(), scratch.join("target"))
            .map_err(|e| e.to_string())?;
        let mut script = prelude();
        for block in blocks {
            if let Some(reason) = &block.skip {
                eprintln!(
                    "xtask: docs {}:{} skipped: {reason}",
                    block.file, block.line
                );
                skipped += 1;
                continue;
            }
            ran += 1;
            script.push_str(&step(block, server.as_ref())?);
        }
        script.push_str("trap - ERR\n");
        let log = scratch.join("docs-run.log");
        let output = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(&scratch)
            .env_clear()
            .envs(kept_environment())
            .env("REPO", &repo)
            .env("CARGO_TARGET_DIR", crate::target_dir())
            .output()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let _ = std::fs::write(&log, &text);
        if !output.status.success() {
            return Err(format!(
                "a documented command failed ({}):\n{text}\n(log: {})",
                output.status,
                log.display()
            ));
        }
        eprintln!("xtask: docs {name}: every block ran");
    }
    drop(server);
    eprintln!("xtask: docs: {ran} shell blocks ran as written, {skipped} skipped with a reason");
    Ok(())
}

/// The environment a reader's shell would have: no `STRONGROOM_*` or `PB_*` variables.
fn kept_environment() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| {
            [
                "PATH",
                "HOME",
                "USER",
                "LANG",
                "TERM",
                "CARGO_HOME",
                "RUSTUP_HOME",
                "TMPDIR",
            ]
            .contains(&name.as_str())
        })
        .collect()
}

/// Strict mode, aliases (the README defines one), the built binary on `PATH`, `cargo` as
/// the repository's, and a trap naming the failing block.
fn prelude() -> String {
    "set -eo pipefail\n\
     shopt -s expand_aliases\n\
     export PATH=\"$CARGO_TARGET_DIR/debug:$PATH\"\n\
     cargo() { command cargo \"$1\" --manifest-path \"$REPO/Cargo.toml\" \"${@:2}\"; }\n\
     trap 'echo \"docs-run: FAILED in $DOCS_BLOCK (script line $LINENO)\" >&2' ERR\n"
        .to_owned()
}

/// The script of one block: markers, then the block as written.
fn step(block: &Block, server: Option<&crate::postgres::TestServer>) -> Result<String> {
    let mut script = format!(
        "DOCS_BLOCK='{}:{}'\necho \"docs-run: $DOCS_BLOCK\" >&2\n",
        block.file, block.line
    );
    if !block.postgres {
        for before in &block.before {
            let _ = writeln!(script, "{before}");
        }
    }
    if let Some(args) = &block.server {
        let _ = write!(
            script,
            "strongroom {args} > docs-run-server.log 2>&1 &\nDOCS_SERVER=$!\n\
             for _ in $(seq 100); do curl -fs http://127.0.0.1:8090/api/health > /dev/null && break; sleep 0.1; done\n"
        );
    }
    if block.postgres {
        let server = server.ok_or("a postgres block without a server")?;
        let url = |name: &str| {
            format!(
                "{}/{name}",
                server.url.rsplit_once('/').map_or("", |(b, _)| b)
            )
        };
        let suffix = format!("{}_{}", block.line, std::process::id());
        let (db, restore) = (format!("docs_{suffix}"), format!("docs_restore_{suffix}"));
        let _ = write!(
            script,
            "(\nexport PATH=\"{bin}:$PATH\"\n\
             psql -q -v ON_ERROR_STOP=1 '{admin}' -c 'CREATE DATABASE {db}' -c 'CREATE DATABASE {restore}'\n\
             export STRONGROOM_DATABASE_URL='{db_url}' RESTORE_URL='{restore_url}'\n{before}\n{code}\n)\n",
            before = block.before.join("\n"),
            bin = server.bin_dir().display(),
            admin = server.url,
            db_url = url(&db),
            restore_url = url(&restore),
            code = block.code
        );
    } else {
        script.push_str(&block.code);
        script.push('\n');
    }
    if block.server.is_some() {
        script.push_str("kill \"$DOCS_SERVER\"; wait \"$DOCS_SERVER\" || true\n");
    }
    Ok(script)
}

/// The shell blocks of one Markdown file, with their markers.
fn parse(file: &str, text: &str) -> Result<Vec<Block>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        // Fences may be indented (inside a list item); the code loses that indentation.
        let indent = lines[index].len() - lines[index].trim_start().len();
        let Some(lang) = lines[index].trim_start().strip_prefix("```") else {
            index += 1;
            continue;
        };
        let start = index;
        let end = (start + 1..lines.len())
            .find(|&i| lines[i].trim_start().starts_with("```"))
            .ok_or_else(|| format!("{file}:{}: unclosed code block", start + 1))?;
        index = end + 1;
        if !matches!(lang.trim(), "sh" | "bash" | "shell") {
            continue;
        }
        let mut block = Block {
            file: file.to_owned(),
            line: start + 1,
            code: lines[start + 1..end]
                .iter()
                .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
                .collect::<Vec<_>>()
                .join("\n"),
            ..Block::default()
        };
        let mut above = start;
        while above > 0 {
            let Some(marker) = lines[above - 1]
                .trim()
                .strip_prefix("<!-- docs-run:")
                .and_then(|m| m.strip_suffix("-->"))
            else {
                break;
            };
            above -= 1;
            let marker = marker.trim();
            if let Some(reason) = marker.strip_prefix("skip:") {
                if reason.trim().is_empty() {
                    return Err(format!(
                        "{file}:{}: a skipped block needs a reason",
                        start + 1
                    ));
                }
                block.skip = Some(reason.trim().to_owned());
            } else if let Some(before) = marker.strip_prefix("before:") {
                block.before.insert(0, before.trim().to_owned());
            } else if let Some(args) = marker.strip_prefix("server:") {
                block.server = Some(args.trim().to_owned());
            } else if marker == "postgres" {
                block.postgres = true;
            } else {
                return Err(format!(
                    "{file}:{}: unknown docs-run marker {marker:?}",
                    above + 1
                ));
            }
        }
        blocks.push(block);
    }
    Ok(blocks)
}
