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

/// The subcommands: one argument struct each, with its own `run`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a new random master key (64 hex characters).
    Keygen(KeygenArgs),
    /// Set a secret; the value is read from stdin (or --value-file), never from arguments.
    Set(SetArgs),
    /// Print a secret's value exactly as stored (fallback applies).
    Get(GetArgs),
    /// List secrets, masked.
    List(ListArgs),
    /// Delete a secret and its versions.
    Rm(RmArgs),
    /// Show or change a secret's own settings: how many versions to keep, and whether
    /// every write must name the version it expects (check-and-set).
    Settings(SettingsArgs),
    /// Make soft-deleted versions readable again (`--version N`, repeatable).
    Undelete(VersionArgs),
    /// Erase versions' sealed bytes for good (`--version N`, repeatable); audited.
    Destroy(VersionArgs),
    /// Copy a secret's value to another key, env or namespace on the server (re-sealed;
    /// never printed).
    Cp(TransferArgs),
    /// Move (rename) a secret with its history to another key, env or namespace.
    Mv(TransferArgs),
    /// Show a secret's kept versions.
    History(HistoryArgs),
    /// Make an older version current again (as a new version).
    Rollback(RollbackArgs),
    /// Check a candidate (from stdin) against a secret; exit 0 on match, 1 otherwise.
    Verify(VerifyArgs),
    /// Show audit events, newest first (`audit verify`: check the tamper-evident chain).
    Audit(AuditArgs),
    /// Re-wrap every value under the active key (first entry of STRONGROOM_KEYS).
    Rotate(RotateArgs),
    /// Import secrets: from PocketBase (`--from pocketbase SOURCE`) or a dotenv file
    /// (`--format dotenv FILE`).
    Import(ImportArgs),
    /// Export secrets: PocketBase rows (sealed), or plaintext dotenv/JSON (needs --plaintext).
    Export(ExportArgs),
    /// Run a command with an env's secrets (after fallback) as environment variables.
    Run(RunArgs),
    /// Pin what an env serves now (versions and keyed hashes, no plaintext) for
    /// `run --lock`; `lock diff FILE` shows which keys moved since.
    Lock(LockArgs),
    /// An encrypted file of secrets for a repository.
    File(FileArgs),
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Manage API tokens.
    Token(TokenArgs),
    /// Remove expired secrets and old audit events.
    Cleanup(CleanupArgs),
    /// Copy the database consistently while it runs (`backup verify FILE`: check a copy).
    Backup(BackupArgs),
    /// Restore a backup into the configured database, which must be empty.
    Restore(RestoreArgs),
    /// Create or upgrade the database schema (run as the schema's owner; no key needed).
    Migrate(MigrateArgs),
    /// Where each key lives and how many values it seals (`keys status`); never a key.
    Keys(KeysArgs),
    /// Create the database's key ring inside an HSM (`--pkcs11`); refuses to overwrite one.
    Init(InitArgs),
    /// Check configuration, keys, database, permissions, TLS, clock, gateway and the audit
    /// chain; one line per check with a fix for each failure (exit 0 when none fails).
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Write man pages for strongroom and every subcommand into a directory.
    #[command(hide = true)]
    Man(ManArgs),
}

// Arguments of `strongroom backup` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    /// `verify FILE`: open a copy, check the audit chain and every value; print none.
    #[command(subcommand)]
    pub action: Option<BackupCommand>,
    /// The file to write (must not exist; created 0600).
    pub file: Option<std::path::PathBuf>,
}

/// `backup` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Check a backup: its audit chain verifies and every value opens with the configured
    /// keys (the file is not modified; no value is printed). Exit 0 whole, 7 broken.
    Verify {
        /// The backup file.
        file: std::path::PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

// Arguments of `strongroom restore` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (from `strongroom backup`).
    pub file: std::path::PathBuf,
}

// Arguments of `strongroom keys` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// What to show.
    #[command(subcommand)]
    pub action: KeysCommand,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Each key version: fingerprint, active or not, where it comes from (variable, file,
    /// systemd credential), values and kept versions it seals; versions the database uses
    /// but the configuration lacks show as "not configured".
    Status {
        /// JSON output: an array of {version, fingerprint, active, source, current_values, kept_versions}.
        #[arg(long)]
        json: bool,
    },
}

// Arguments of `strongroom init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Generate the first key with the HSM's random number generator and store the ring in
    /// the database wrapped by the HSM key `STRONGROOM_PKCS11_KEY` (created, non-extractable,
    /// when missing).
    #[arg(long, required = true)]
    pub pkcs11: bool,
}

// Arguments of `strongroom migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// JSON output: {"backend", "schema_version"}.
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// JSON output: an array of {check, status, detail, fix}.
    #[arg(long)]
    pub json: bool,
}

// Arguments of `strongroom completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

// Arguments of the hidden `strongroom man` (used by `cargo xtask man`).
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write the pages.
    pub out: std::path::PathBuf,
}

// Arguments of `strongroom keygen` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Print base64 instead of hex.
    #[arg(long)]
    pub base64: bool,
}

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

// Arguments of `strongroom rotate` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Only values under this key version.
    #[arg(long)]
    pub from_version: Option<u32>,
    /// Values per transaction.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// With an HSM (PKCS#11): first add a ring version generated by the HSM's random number
    /// generator (the ring re-wrapped in the database), then rotate every value to it.
    #[arg(long)]
    pub new_key: bool,
    /// JSON output (docs/cli.md, "JSON output").
    #[arg(long)]
    pub json: bool,
}

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

// Arguments of `strongroom serve` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // each bool is one independent command-line flag
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub bind: std::net::SocketAddr,
    /// Zero-setup development mode: a key and an admin token under ./.strongroom/.
    #[arg(long)]
    pub dev: bool,
    /// Gateway routes (TOML or JSON), mounted under /gateway/ROUTE/...
    /// (default: STRONGROOM_GATEWAY_CONFIG).
    #[arg(long)]
    pub gateway_config: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics at /metrics, for superuser tokens (default:
    /// STRONGROOM_METRICS=true).
    #[arg(long)]
    pub metrics: bool,
    /// Also serve /metrics without a token on this address, for a scraper (implies
    /// --metrics); bind it where only the scraper reaches.
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM); reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on an address other than loopback (behind a TLS-terminating
    /// proxy): tokens and values would otherwise cross the network in the clear.
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_no_tls: bool,
    /// Do not serve the web console at /_/ (it is on by default).
    #[arg(long)]
    pub no_console: bool,
}

// Arguments of `strongroom token` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TokenCommand,
}

// Arguments of `strongroom cleanup` (its help text is the variant's doc comment).
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Remove secrets expired longer ago than this.
    #[arg(long, default_value = "30d")]
    pub retention: String,
    /// Remove audit events older than this.
    #[arg(long, default_value = "180d")]
    pub events_retention: String,
    /// JSON output (docs/cli.md, "JSON output").
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
        /// `NAMESPACE/ENV[:CAP,...]` this token may reach (`*` for any part); capabilities
        /// from list, read, write, delete, use (none given: all five). Repeat for several.
        #[arg(long, required_unless_present = "superuser")]
        scope: Vec<String>,
        /// JSON output: {"name","id","superuser","scopes","token"} (the token shown once).
        #[arg(long)]
        json: bool,
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
    /// Plaintext `KEY='value'` lines (double quotes, with only `\\` and `\"` escaped, when
    /// the value holds `'`); a value no quoting keeps the same for `sh` and python-dotenv
    /// is refused, naming its key (docs/cli.md).
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
    /// The current version soft-deleted.
    Deleted,
    /// The current version destroyed.
    Destroyed,
}
