//! The sealed settings of auth methods: a superuser's to write, a login's to read.

use strongroom_store::backend::LeaseRow;
use strongroom_store::Store;

use super::Secrets;

/// The sealed settings of auth methods (their configuration and roles): written by a
/// superuser ([`super::Scoped::auth_settings`]), read by logins, which have no caller yet
/// ([`Secrets::logins`]).
pub(crate) struct AuthSettings {
    store: Store,
}

impl AuthSettings {
    /// A superuser's door (see [`super::Scoped::auth_settings`]).
    pub(super) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The setting `name` as JSON (`None`: none).
    pub(crate) async fn get(
        &self,
        name: &str,
    ) -> strongroom_store::Result<Option<serde_json::Value>> {
        read_setting(&self.store, name).await
    }

    /// Writes (`Some`) or removes (`None`) the setting `name` (an `auth_config` event).
    pub(crate) async fn set(
        &self,
        name: &str,
        value: Option<&serde_json::Value>,
    ) -> strongroom_store::Result<()> {
        let bytes = value.map(|v| v.to_string().into_bytes());
        self.store.set_sealed_setting(name, bytes.as_deref()).await
    }
}

/// What a login reads: the settings of auth methods (its `login` event is written with
/// its token, `quotas::create_capped_login`).
pub(crate) struct Logins<'a> {
    store: &'a Store,
}

impl Logins<'_> {
    /// The setting `name` as JSON (`None`: none).
    pub(crate) async fn get(
        &self,
        name: &str,
    ) -> strongroom_store::Result<Option<serde_json::Value>> {
        read_setting(self.store, name).await
    }
}

/// The door of dynamic credentials: the engine's settings (connections, roles) as a
/// login reads them, and its leases. Whoever holds it acts on leases; the handlers check
/// the caller (a superuser, or the token that made the lease) before they use it.
pub(crate) struct LeaseDoor {
    store: Store,
}

impl LeaseDoor {
    /// The door, acting as `actor` in audit events.
    pub(super) fn new(store: Store) -> Self {
        Self { store }
    }

    /// The setting `name` as JSON (`None`: none).
    pub(crate) async fn setting(
        &self,
        name: &str,
    ) -> strongroom_store::Result<Option<serde_json::Value>> {
        read_setting(&self.store, name).await
    }

    /// Writes the current password of a static role (the setting
    /// `database/static-creds/NAME`, and no other: this door writes nothing else).
    pub(crate) async fn set_static_creds(
        &self,
        role: &str,
        value: Option<&serde_json::Value>,
    ) -> strongroom_store::Result<()> {
        let bytes = value.map(|v| v.to_string().into_bytes());
        self.store
            .set_sealed_setting(&format!("database/static-creds/{role}"), bytes.as_deref())
            .await
    }

    /// The door acting as `actor` in audit events.
    pub(crate) fn with_actor(&self, actor: &str) -> Self {
        Self {
            store: self.store.with_actor(actor),
        }
    }

    /// See [`Store::seal_lease`].
    pub(crate) fn seal(&self, id: &str, record: &[u8]) -> strongroom_store::Result<Vec<u8>> {
        self.store.seal_lease(id, record)
    }

    /// See [`Store::open_lease`].
    pub(crate) fn open(
        &self,
        row: &LeaseRow,
    ) -> strongroom_store::Result<strongroom_crypto::secrecy::SecretSlice<u8>> {
        self.store.open_lease(row)
    }

    /// See [`Store::record_lease`].
    pub(crate) async fn record(&self, row: LeaseRow) -> strongroom_store::Result<bool> {
        self.store.record_lease(row).await
    }

    /// See [`Store::update_lease`].
    pub(crate) async fn update(
        &self,
        expected: LeaseRow,
        new: LeaseRow,
        action: Option<strongroom_store::Action>,
    ) -> strongroom_store::Result<bool> {
        self.store.update_lease(expected, new, action).await
    }

    /// See [`Store::lease_row`].
    pub(crate) async fn row(&self, id: &str) -> strongroom_store::Result<Option<LeaseRow>> {
        self.store.lease_row(id).await
    }

    /// See [`Store::lease_rows`].
    pub(crate) async fn rows(&self, prefix: &str) -> strongroom_store::Result<Vec<LeaseRow>> {
        self.store.lease_rows(prefix).await
    }

    /// See [`Store::any_lease_due`].
    pub(crate) async fn any_due(
        &self,
        now: strongroom_store::Timestamp,
    ) -> strongroom_store::Result<bool> {
        self.store.any_lease_due(now).await
    }

    /// See [`Store::claim_due_leases`].
    pub(crate) async fn claim_due(
        &self,
        now: strongroom_store::Timestamp,
        claim_ms: i64,
        limit: u32,
    ) -> strongroom_store::Result<Vec<LeaseRow>> {
        self.store.claim_due_leases(now, claim_ms, limit).await
    }
}

async fn read_setting(
    store: &Store,
    name: &str,
) -> strongroom_store::Result<Option<serde_json::Value>> {
    use strongroom_crypto::secrecy::ExposeSecret as _;
    let Some(value) = store.sealed_setting(name).await? else {
        return Ok(None);
    };
    serde_json::from_slice(value.expose_secret())
        .map(Some)
        .map_err(|_| {
            strongroom_store::StoreError::InvalidInput(format!("the setting {name} is not JSON"))
        })
}

impl Secrets {
    /// The door of logins: reading auth methods' settings and recording logins.
    pub(crate) fn logins(&self) -> Logins<'_> {
        Logins { store: &self.store }
    }

    /// The door of dynamic credentials and their leases.
    pub(crate) fn lease_door(&self) -> LeaseDoor {
        LeaseDoor::new(self.store.clone())
    }
}
