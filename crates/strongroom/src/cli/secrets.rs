//! Arguments of the commands on single secrets: set, get, list, rm, versions, settings,
//! copy and move, history, rollback, verify, audit.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

use super::Target;

// Arguments of `strongroom set` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The secret's key.
    pub key: String,
    #[command(flatten)]
    pub target: Target,
    /// Human description.
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    /// Expire after this long (e.g. 90d, 12h).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Metadata, a JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Kind of secret (e.g. api_key, password).
    #[arg(long)]
    pub kind: Option<String>,
    /// Read the value from this file instead of stdin.
    #[arg(long)]
    pub value_file: Option<PathBuf>,
    /// Check-and-set: write only if the secret is at this version now (0: only if it does
    /// not exist); otherwise exit 8 and write nothing.
    #[arg(long, value_name = "VERSION")]
    pub cas: Option<u32>,
    /// JSON output (docs/cli.md, "JSON output").
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom get` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The secret's key.
    pub key: String,
    #[command(flatten)]
    pub target: Target,
}

// Arguments of `strongroom list` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this environment.
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Namespace (default `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only keys starting with this prefix.
    #[arg(long, short = 'p')]
    pub prefix: Option<String>,
    /// Only secrets in this state.
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom rm` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The secret's key.
    pub key: String,
    #[command(flatten)]
    pub target: Target,
    /// Soft-delete only this version (repeat for several): kept sealed, read by nobody
    /// until `undelete`. Without it, the secret and all its versions are deleted.
    #[arg(long = "version", value_name = "N")]
    pub versions: Vec<u32>,
    /// JSON output (docs/cli.md, "JSON output").
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom settings` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// The secret's key.
    pub key: String,
    #[command(flatten)]
    pub target: Target,
    /// Versions to keep for this secret (0: the server's STRONGROOM_HISTORY_DEPTH); older
    /// ones are trimmed at the next write.
    #[arg(long, value_name = "N")]
    pub max_versions: Option<u32>,
    /// Whether every write must name the version it expects (`set --cas N`).
    #[arg(long, value_name = "BOOL")]
    pub cas_required: Option<bool>,
    /// JSON output: `{"id","max_versions","cas_required"}`.
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom undelete` and `strongroom destroy` (help: the variants' docs).
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// The secret's key.
    pub key: String,
    #[command(flatten)]
    pub target: Target,
    /// The version (repeat for several).
    #[arg(long = "version", value_name = "N", required = true)]
    pub versions: Vec<u32>,
    /// JSON output: `{"id","changed":[...]}`.
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom cp` and `strongroom mv` (help: the variants' doc comments).
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The source key.
    pub source: String,
    /// The target key (default: the source key, so `--to-env` alone copies across envs).
    pub target: Option<String>,
    /// The source's env (default: the default env); exactly this env, no fallback.
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// The target's env (default: the source's).
    #[arg(long)]
    pub to_env: Option<String>,
    /// The source's namespace (default `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The target's namespace (default: the source's).
    #[arg(long)]
    pub to_namespace: Option<String>,
    /// Overwrite an existing target (a move deletes it first).
    #[arg(long)]
    pub force: bool,
    /// JSON output: `{"from","to","version"}`.
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom history` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The secret's key.
    pub key: String,
    #[command(flatten)]
    pub target: Target,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom rollback` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The secret's key.
    pub key: String,
    /// The version to restore.
    #[arg(long)]
    pub version: u32,
    #[command(flatten)]
    pub target: Target,
    /// JSON output (docs/cli.md, "JSON output").
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom verify` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The secret's key.
    pub key: String,
    #[command(flatten)]
    pub target: Target,
    /// JSON output (docs/cli.md, "JSON output").
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom audit` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    /// `verify`: walk the chain; exit 0 when intact, 1 at the first broken link.
    #[command(subcommand)]
    pub action: Option<AuditCommand>,
    /// Only this key.
    #[arg(long, short = 'k')]
    pub key: Option<String>,
    /// Only this environment.
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Only this namespace.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// How many events (at most 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the audit log: every event linked under the key, none missing, every stored
    /// version tied to the event that wrote it; exit 0 intact, 1 broken.
    Verify {
        /// Also prove that nothing up to this checkpoint (from `audit checkpoint`) was
        /// removed or changed.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<std::path::PathBuf>,
        /// JSON output: the verification (events, versions, head, broken_at).
        #[arg(long)]
        json: bool,
    },
    /// Print a keyed checkpoint of the log's head (JSON) to keep outside the database: a
    /// repository, a ticket, object storage.
    Checkpoint,
}

/// `--state` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    /// Readable.
    Active,
    /// Past expiry.
    Expired,
    /// The current version soft-deleted.
    Deleted,
    /// The current version destroyed.
    Destroyed,
}
