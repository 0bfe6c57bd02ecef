//! The sealed settings of auth methods: a superuser's to write, a login's to read.

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

/// What a login reads and records: the settings of auth methods, and the `login` event.
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

    /// A login that spends a credential kept in the setting `name` (see
    /// `Store::login_spending_setting`): false when it changed meanwhile.
    pub(crate) async fn spend(
        &self,
        actor: &str,
        name: &str,
        expected: &serde_json::Value,
        new: Option<&serde_json::Value>,
        method: &str,
        role: &str,
    ) -> strongroom_store::Result<bool> {
        let new = new.map(|v| v.to_string().into_bytes());
        self.store
            .with_actor(actor)
            .login_spending_setting(
                name,
                expected.to_string().as_bytes(),
                new.as_deref(),
                method,
                role,
            )
            .await
    }

    /// Records a successful login (never the credential).
    pub(crate) async fn record(
        &self,
        actor: &str,
        method: &str,
        role: &str,
    ) -> strongroom_store::Result<()> {
        self.store
            .with_actor(actor)
            .record_login(method, role)
            .await
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
}
