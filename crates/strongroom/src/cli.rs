//! Command-line grammar (clap). Names are the spec's contract.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Encrypted secrets with environments, versions, audit and key rotation.
///
/// Configuration comes from STRONGROOM_* environment variables (see docs/cli.md).
#[derive(Debug, Parser)]
#[command(name = "strongroom", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where a secret lives.
#[derive(Debug, Args)]
pub struct Target {
    /// Environment (default: STRONGROOM_DEFAULT_ENV, else `global`).
    #[arg(long, short = 'e')]
    pub env: Option<String>,
    /// Namespace (default `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a new random master key (64 hex characters).
    Keygen {
        /// Print base64 instead of hex.
        #[arg(long)]
        base64: bool,
    },
    /// Set a secret; the value is read from stdin (or --value-file), never from arguments.
    Set {
        /// The secret's key.
        key: String,
        #[command(flatten)]
        target: Target,
        /// Human description.
        #[arg(long, short = 'd')]
        description: Option<String>,
        /// Expire after this long (e.g. 90d, 12h).
        #[arg(long)]
        ttl: Option<String>,
        /// Metadata, a JSON object.
        #[arg(long)]
        metadata: Option<String>,
        /// Kind of secret (e.g. api_key, password).
        #[arg(long)]
        kind: Option<String>,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        value_file: Option<PathBuf>,
    },
    /// Print a secret's value exactly as stored (fallback applies).
    Get {
        /// The secret's key.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// List secrets, masked.
    List {
        /// Only this environment.
        #[arg(long, short = 'e')]
        env: Option<String>,
        /// Namespace (default `default`).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Only keys starting with this prefix.
        #[arg(long, short = 'p')]
        prefix: Option<String>,
        /// Only secrets in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Delete a secret and its versions.
    Rm {
        /// The secret's key.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Show a secret's kept versions.
    History {
        /// The secret's key.
        key: String,
        #[command(flatten)]
        target: Target,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Make an older version current again (as a new version).
    Rollback {
        /// The secret's key.
        key: String,
        /// The version to restore.
        #[arg(long)]
        version: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Check a candidate (from stdin) against a secret; exit 0 on match, 1 otherwise.
    Verify {
        /// The secret's key.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Show audit events, newest first (`audit verify`: check the tamper-evident chain).
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        /// `verify`: walk the chain; exit 0 when intact, 1 at the first broken link.
        #[command(subcommand)]
        action: Option<AuditCommand>,
        /// Only this key.
        #[arg(long, short = 'k')]
        key: Option<String>,
        /// Only this environment.
        #[arg(long, short = 'e')]
        env: Option<String>,
        /// Only this namespace.
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// How many events (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Re-wrap every value under the active key (first entry of STRONGROOM_KEYS).
    Rotate {
        /// Only values under this key version.
        #[arg(long)]
        from_version: Option<u32>,
        /// Values per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
    },
    /// Import secrets: from PocketBase (`--from pocketbase SOURCE`) or a dotenv file
    /// (`--format dotenv FILE`).
    #[command(group(clap::ArgGroup::new("kind").required(true).args(["from", "format"])))]
    Import {
        /// The system to import from.
        #[arg(long = "from", value_enum)]
        from: Option<ImportSource>,
        /// The file format to import.
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// `sqlite://PATH/data.db` or `postgres://...` (PocketBase; `env:VARIABLE` or
        /// `file:PATH` reads the URL from there, so no password shows in `ps`), or a dotenv FILE.
        source: String,
        /// Env to import a dotenv file into.
        #[arg(long, short = 'e')]
        env: Option<String>,
        /// Namespace to import into (default `default`).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace secrets that already exist (default: skip them).
        #[arg(long)]
        overwrite: bool,
    },
    /// Export secrets: PocketBase rows (sealed), or plaintext dotenv/JSON (needs --plaintext).
    Export {
        /// The format to write.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write to this file (dotenv/json default: stdout; pocketbase: an SQL script).
        #[arg(long, conflicts_with = "database")]
        out: Option<std::path::PathBuf>,
        /// Write into this PocketBase database (`sqlite://PATH/data.db`).
        #[arg(long)]
        database: Option<String>,
        /// Only this env (dotenv/json: the env's view after fallback).
        #[arg(long, short = 'e')]
        env: Option<String>,
        /// Namespace (default `default`).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Confirm a plaintext export (dotenv, json); each value read is an audit event.
        #[arg(long)]
        plaintext: bool,
    },
    /// Run a command with an env's secrets (after fallback) as environment variables.
    Run {
        /// Environment (default: the default env).
        #[arg(long, short = 'e')]
        env: Option<String>,
        /// Namespace (default `default`).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Only secrets whose key starts with this prefix.
        #[arg(long)]
        only: Option<String>,
        /// Pass a secret whose name is on the denylist (LD_*, PATH, NODE_OPTIONS, ...;
        /// docs/security.md). Repeat for each name; STRONGROOM_* can never be passed.
        #[arg(long = "allow-name", value_name = "NAME")]
        allow_name: Vec<String>,
        /// The command and its arguments, after `--`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// An encrypted file of secrets for a repository.
    File {
        /// What to do.
        #[command(subcommand)]
        action: FileCommand,
    },
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        bind: std::net::SocketAddr,
        /// Zero-setup development mode: a key and an admin token under ./.strongroom/.
        #[arg(long)]
        dev: bool,
        /// Gateway routes (TOML or JSON), mounted under /gateway/ROUTE/...
        /// (default: STRONGROOM_GATEWAY_CONFIG).
        #[arg(long)]
        gateway_config: Option<std::path::PathBuf>,
    },
    /// Manage API tokens.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Remove expired secrets and old audit events.
    Cleanup {
        /// Remove secrets expired longer ago than this.
        #[arg(long, default_value = "30d")]
        retention: String,
        /// Remove audit events older than this.
        #[arg(long, default_value = "180d")]
        events_retention: String,
    },
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
    },
    /// Print a keyed checkpoint of the log's head (JSON) to keep outside the database: a
    /// repository, a ticket, object storage.
    Checkpoint,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed once and stored only as a hash.
    Create {
        /// A unique name (the audit actor of its requests).
        #[arg(long)]
        name: String,
        /// Reach every namespace and env, and the admin routes.
        #[arg(long, conflicts_with = "scope")]
        superuser: bool,
        /// `NAMESPACE/ENV` this token may reach (`*` for any); repeat for several.
        #[arg(long, required_unless_present = "superuser")]
        scope: Vec<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name; it stops working at once.
    Revoke {
        /// The token's name.
        name: String,
    },
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
    },
    /// Merge an encrypted file into the store (newer wins; conflicts are reported).
    Import {
        /// The file to read.
        path: std::path::PathBuf,
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Where `import` reads from.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportSource {
    /// PocketBase's `_secrets` table (key in `PB_MASTER_KEY`).
    Pocketbase,
}

/// File formats `import` reads.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportFormat {
    /// `KEY=value` lines (quotes, `export `, multi-line values).
    Dotenv,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// PocketBase's `_secrets` rows, sealed under `PB_MASTER_KEY`.
    Pocketbase,
    /// Plaintext `KEY="value"` lines.
    Dotenv,
    /// Plaintext `{"KEY": "value"}`.
    Json,
}

/// `--state` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    /// Readable.
    Active,
    /// Past expiry.
    Expired,
}
