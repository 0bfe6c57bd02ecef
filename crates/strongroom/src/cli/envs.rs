//! Arguments of the commands on whole envs and files: import, export, run, lock, file.

use clap::{Args, Subcommand, ValueEnum};

// Arguments of `strongroom import` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["from", "format"])))]
pub struct ImportArgs {
    /// The system to import from.
    #[arg(long = "from", value_enum)]
    pub from: Option<ImportSource>,
    /// The file format to import.
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// `sqlite://PATH/data.db` or `postgres://...` (PocketBase; `env:VARIABLE` or
    /// `file:PATH` reads the URL from there, so no password shows in `ps`), or a dotenv FILE.
    pub source: String,
    /// Env to import a dotenv file into.
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Namespace to import into (default `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace secrets that already exist (default: skip them).
    #[arg(long)]
    pub overwrite: bool,
    /// JSON output (docs/cli.md, "JSON output").
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom export` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The format to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write to this file (dotenv/json default: stdout; pocketbase: an SQL script).
    #[arg(long, conflicts_with = "database")]
    pub out: Option<std::path::PathBuf>,
    /// Write into this PocketBase database: `sqlite://PATH/data.db`, `postgres://...` (no
    /// password in it: `env:VARIABLE` or `file:PATH` instead), upserting by `(key, env)`.
    #[arg(long)]
    pub database: Option<String>,
    /// Only this env (dotenv/json: the env's view after fallback).
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Namespace (default `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Confirm a plaintext export (dotenv, json); each value read is an audit event.
    #[arg(long)]
    pub plaintext: bool,
    /// Fail (exit 5, nothing done) if any secret is expired, deleted or destroyed, instead
    /// of leaving it out with a warning.
    #[arg(long)]
    pub strict: bool,
}

// Arguments of `strongroom run` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Environment (default: the default env).
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Namespace (default `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only secrets whose key starts with this prefix.
    #[arg(long)]
    pub only: Option<String>,
    /// Pass a secret whose name is on the denylist (LD_*, PATH, NODE_OPTIONS, ...;
    /// docs/security.md). Repeat for each name; STRONGROOM_* can never be passed.
    #[arg(long = "allow-name", value_name = "NAME")]
    pub allow_name: Vec<String>,
    /// Inject exactly the versions of this lock file (from `strongroom lock`); fail before
    /// starting the command if any is gone or differs from its hash.
    #[arg(long, value_name = "FILE", conflicts_with = "only")]
    pub lock: Option<std::path::PathBuf>,
    /// Replace every injected value (6 bytes or longer) in the command's stdout and stderr
    /// with `***`. On by default when `CI` is set (to anything but empty, 0 or false).
    #[arg(long, conflicts_with = "no_mask")]
    pub mask: bool,
    /// Pass the command's output through untouched, even when `CI` is set.
    #[arg(long)]
    pub no_mask: bool,
    /// Fail (exit 5, nothing done) if any secret is expired, deleted or destroyed, instead
    /// of leaving it out with a warning.
    #[arg(long)]
    pub strict: bool,
    /// A dynamic database login for the command: `NAME=database/creds/ROLE` sets
    /// `NAME_USERNAME` and `NAME_PASSWORD`, renews the lease while the command runs and
    /// revokes it when the command ends (also on SIGINT/SIGTERM). Repeatable.
    #[arg(long = "dynamic", value_name = "NAME=database/creds/ROLE")]
    pub dynamic: Vec<String>,
    /// The command and its arguments, after `--`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

// Arguments of `strongroom lock` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LockArgs {
    /// `diff FILE`: which keys moved since the lock was written.
    #[command(subcommand)]
    pub action: Option<LockCommand>,
    /// Environment (default: the default env); fallback applies.
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Namespace (default `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only secrets whose key starts with this prefix.
    #[arg(long)]
    pub only: Option<String>,
    /// Fail (exit 5, nothing done) if any secret is expired, deleted or destroyed, instead
    /// of leaving it out with a warning.
    #[arg(long)]
    pub strict: bool,
}

/// `lock` subcommands.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Compare a lock with what its env serves now: one line per key that changed, was
    /// added or was removed (exit 0 either way; `--exit-code` exits 1 on a change).
    Diff {
        /// The lock file (from `strongroom lock`).
        file: std::path::PathBuf,
        /// Exit 1 when anything moved.
        #[arg(long)]
        exit_code: bool,
        /// JSON output: `{"changed":[...],"added":[...],"removed":[...]}`.
        #[arg(long)]
        json: bool,
    },
}

// Arguments of `strongroom file` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct FileArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: FileCommand,
}

/// `file` subcommands.
#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Write the secrets to an encrypted, diff-friendly file you can commit.
    Export {
        /// The file to write.
        path: std::path::PathBuf,
        /// Only this env.
        #[arg(long, short = 'e')]
        env: Option<String>,
        /// Namespace (default `default`).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Fail (exit 5, nothing written) if any secret is expired, deleted or destroyed,
        /// instead of leaving it out with a warning.
        #[arg(long)]
        strict: bool,
    },
    /// Merge an encrypted file into the store (newer wins; conflicts are reported).
    Import {
        /// The file to read.
        path: std::path::PathBuf,
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// JSON output (docs/cli.md, "JSON output").
        #[arg(long)]
        json: bool,
    },
}

/// Where `import` reads from.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportSource {
    /// PocketBase's `_secrets` table (key in `PB_MASTER_KEY`).
    Pocketbase,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// PocketBase's `_secrets` rows, sealed under `PB_MASTER_KEY`.
    Pocketbase,
    /// Plaintext `KEY='value'` lines (double quotes, with only `\\` and `\"` escaped, when
    /// the value holds `'`); a value no quoting keeps the same for `sh` and python-dotenv
    /// is refused, naming its key (docs/cli.md).
    Dotenv,
    /// Plaintext `{"KEY": "value"}`.
    Json,
}

/// File formats `import` reads.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportFormat {
    /// `KEY=value` lines (quotes, `export `, multi-line values).
    Dotenv,
}
