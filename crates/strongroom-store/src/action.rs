//! What an audit event records happened: the actions, their stored names, and which of
//! them hand out a plaintext or write a value.

use serde::Serialize;

/// What happened, in an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A secret was created.
    Create,
    /// A secret's value was replaced.
    Update,
    /// A secret was deleted.
    Delete,
    /// A secret was rolled back to an older version.
    Rollback,
    /// A secret's data key was re-wrapped under another KEK.
    Rotate,
    /// Description, metadata, kind or expiry changed.
    MetadataUpdate,
    /// An expired secret was removed by cleanup.
    ExpiredCleanup,
    /// A plaintext value was read (through the HTTP API).
    Read,
    /// A plaintext value was injected into an upstream request by the gateway (it went
    /// upstream in a header, not back to the client).
    GatewayRead,
    /// A value was re-sealed under its version-bound context by the schema-4 upgrade.
    Reseal,
    /// Source side of a copy: its value was copied on the server (never handed out).
    CopyOut,
    /// Target side of a copy: a version written with the source's value.
    CopyIn,
    /// Source side of a move: the secret left this identity (with its history).
    MoveOut,
    /// Target side of a move: the secret and its kept versions arrived, re-sealed; the
    /// versions are tied to this event.
    MoveIn,
    /// A plaintext value was read through the Vault-compatible API (`/v1`).
    VaultRead,
    /// One version was soft-deleted (kept sealed, unreadable until undeleted).
    VersionDelete,
    /// A soft-deleted version was made readable again.
    VersionUndelete,
    /// One version's sealed bytes were erased for good.
    VersionDestroy,
    /// An API token was created (the key field holds its name; never its secret).
    TokenCreate,
    /// An API token was revoked (the key field holds its name).
    TokenRevoke,
    /// A token row from before keyed tags was tagged under the key, at the first open
    /// with the key after the upgrade (the key field holds its name).
    TokenTag,
    /// A token's expiry was moved by a renewal (the key field holds its name).
    TokenRenew,
    /// An auth method's configuration was written (the key field holds the setting's
    /// name; never its content).
    AuthConfig,
    /// A login through an auth method (env: the method's path, key: the role).
    Login,
    /// A dynamic credential was issued under a lease (key: the lease id; never a password).
    LeaseIssue,
    /// A lease was renewed (key: the lease id).
    LeaseRenew,
    /// A lease ended and its login was dropped (key: the lease id).
    LeaseRevoke,
    /// A static role's password was rotated (key: its schedule's id; never a password).
    PasswordRotate,
}

impl Action {
    /// Whether the event records a plaintext handed out (a read or a gateway use).
    pub fn is_plaintext_use(self) -> bool {
        matches!(self, Self::Read | Self::GatewayRead | Self::VaultRead)
    }

    /// Whether the event writes a value (a version is tied to such an event).
    pub fn writes_value(self) -> bool {
        matches!(
            self,
            Self::Create
                | Self::Update
                | Self::Rollback
                | Self::Reseal
                | Self::CopyIn
                | Self::MoveIn
        )
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Rollback => "rollback",
            Self::Rotate => "rotate",
            Self::MetadataUpdate => "metadata_update",
            Self::ExpiredCleanup => "expired_cleanup",
            Self::Read => "read",
            Self::GatewayRead => "gateway_read",
            Self::Reseal => "reseal",
            Self::CopyOut => "copy_out",
            Self::CopyIn => "copy_in",
            Self::MoveOut => "move_out",
            Self::MoveIn => "move_in",
            Self::VaultRead => "vault_read",
            Self::VersionDelete => "version_delete",
            Self::VersionUndelete => "version_undelete",
            Self::VersionDestroy => "version_destroy",
            Self::TokenCreate => "token_create",
            Self::TokenRevoke => "token_revoke",
            Self::TokenTag => "token_tag",
            Self::TokenRenew => "token_renew",
            Self::AuthConfig => "auth_config",
            Self::Login => "login",
            Self::LeaseIssue => "lease_issue",
            Self::LeaseRenew => "lease_renew",
            Self::LeaseRevoke => "lease_revoke",
            Self::PasswordRotate => "password_rotate",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Create,
            Self::Update,
            Self::Delete,
            Self::Rollback,
            Self::Rotate,
            Self::MetadataUpdate,
            Self::ExpiredCleanup,
            Self::Read,
            Self::GatewayRead,
            Self::Reseal,
            Self::CopyOut,
            Self::CopyIn,
            Self::MoveOut,
            Self::MoveIn,
            Self::VaultRead,
            Self::VersionDelete,
            Self::VersionUndelete,
            Self::VersionDestroy,
            Self::TokenCreate,
            Self::TokenRevoke,
            Self::TokenTag,
            Self::TokenRenew,
            Self::AuthConfig,
            Self::Login,
            Self::LeaseIssue,
            Self::LeaseRenew,
            Self::LeaseRevoke,
            Self::PasswordRotate,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }
}
