//! Command-line grammar (clap). Names are the spec's contract.

use clap::{Args, Parser, Subcommand};

mod envs;
mod operations;
mod secrets;

pub use envs::{
    ExportArgs, ExportFormat, FileArgs, FileCommand, ImportArgs, LockArgs, LockCommand, RunArgs,
};
pub use operations::{
    AuthArgs, AuthCommand, AuthRoleCommand, BackupArgs, BackupCommand, CleanupArgs,
    CompletionsArgs, DbArgs, DbCommand, DoctorArgs, InitArgs, KeygenArgs, KeysArgs, KeysCommand,
    LeaseArgs, LeaseCommand, LoginArgs, LoginMethod, ManArgs, MigrateArgs, RestoreArgs, RotateArgs,
    ServeArgs, TokenArgs, TokenCommand,
};
pub use secrets::{
    AuditArgs, AuditCommand, GetArgs, HistoryArgs, ListArgs, RmArgs, RollbackArgs, SetArgs,
    SettingsArgs, StateArg, TransferArgs, VerifyArgs, VersionArgs,
};

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
    /// Log in to a server with an auth method and print a token that expires (for scripts).
    Login(LoginArgs),
    /// Auth methods (jwt, kubernetes, approle): enable, disable, list, configure, roles.
    Auth(AuthArgs),
    /// Dynamic PostgreSQL logins: connections, roles, creds.
    Db(DbArgs),
    /// Leases of dynamic credentials: list, renew, revoke.
    Lease(LeaseArgs),
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
