//! Authorization as a type. Handlers never hold the store: [`crate::AppState`] keeps it
//! inside [`Secrets`], whose field is private to this module, and the only ways to it are
//!
//! - [`Secrets::caller`]: the store as one principal may use it ([`Scoped`]). Each of its
//!   doors — [`Scoped::read`], [`Scoped::write`], [`Scoped::delete`], [`Scoped::list`],
//!   [`Scoped::list_env`], [`Scoped::transfer`], [`Scoped::use_env`] — checks the
//!   capability its operations need and returns a grant that offers exactly those
//!   operations on exactly that secret;
//! - [`Secrets::superuser`]: the whole store, for a superuser principal only;
//! - non-secret views: the configuration, readiness, counters.
//!
//! So a handler that forgets to authorize does not compile (a `compile_fail` doctest on
//! [`Secrets`] shows it), and the check is written once per capability, here: scopes that
//! narrow to keys will change [`Principal`]'s methods and nothing else.

use std::marker::PhantomData;

mod settings;

pub(crate) use settings::{AuthSettings, LeaseDoor};

use strongroom_store::tokens::{Capability, Principal};
use strongroom_store::{
    Action, ListQuery, MetaUpdate, Page, PendingRead, RotationStatus, Secret, SecretId, SecretInfo,
    SecretSettings, SetRequest, Store, StoreConfig, StoreStats, VersionInfo, WriteOutcome,
};

use crate::ApiError;

/// A refusal: the capability missing and where. Every surface renders it its own way
/// (the native API's 403 names the capability; `/v1` says Vault's "permission denied").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    /// What the caller lacks, in words (`` the `read` capability on default/prod ``).
    pub(crate) what: String,
}

impl Denied {
    fn missing(capability: Capability, place: impl core::fmt::Display) -> Self {
        Self {
            what: format!("the `{capability}` capability on {place}"),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ApiError::forbidden(format!("this token lacks {}", denied.what))
    }
}

/// The secrets store as the HTTP surfaces may reach it: through a principal.
///
/// ```compile_fail,E0616
/// # fn handler(secrets: &strongroom_server::Secrets) {
/// // The store is not reachable without a caller: there is no field or method for it.
/// let _store = &secrets.store;
/// # }
/// ```
#[derive(Clone)]
pub struct Secrets {
    store: Store,
}

impl core::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Secrets")
            .field("store", &self.store)
            .finish()
    }
}

impl From<Store> for Secrets {
    fn from(store: Store) -> Self {
        Self { store }
    }
}

impl Secrets {
    /// The store as `caller` may use it; its actor in audit events is the caller's.
    pub(crate) fn caller<'a>(&self, caller: &'a Principal) -> Scoped<'a> {
        Scoped {
            store: self.store.with_actor(&caller.actor()),
            caller,
        }
    }

    /// The whole store, acting as `caller`, for a superuser only (audit, rotation status).
    pub(crate) fn superuser(&self, caller: &Principal) -> Result<Store, ApiError> {
        if caller.superuser {
            Ok(self.store.with_actor(&caller.actor()))
        } else {
            Err(ApiError::forbidden("this route needs a superuser token"))
        }
    }

    /// The store's policy (names, default env, fallback chains): not secret.
    pub(crate) fn config(&self) -> &StoreConfig {
        self.store.config()
    }

    /// Readiness, naming the part that fails.
    pub(crate) async fn check_ready(&self) -> Result<(), (&'static str, String)> {
        self.store.check_ready().await
    }

    /// Write-transaction counters, for metrics.
    pub(crate) fn stats(&self) -> StoreStats {
        self.store.stats()
    }

    /// The audit chain's head sequence number, for metrics.
    pub(crate) async fn audit_head(&self) -> strongroom_store::Result<i64> {
        self.store.audit_head().await
    }

    /// Values per KEK version, for metrics.
    pub(crate) async fn rotation_status(&self) -> strongroom_store::Result<RotationStatus> {
        self.store.rotation_status().await
    }
}

/// The store as one principal may use it: every door checks a capability.
pub(crate) struct Scoped<'a> {
    store: Store,
    caller: &'a Principal,
}

/// Capability markers of a [`Grant`].
pub(crate) enum Read {}
/// See [`Read`].
pub(crate) enum Write {}
/// See [`Read`].
pub(crate) enum Delete {}
/// See [`Read`].
pub(crate) enum List {}

/// What a caller may do to one secret: the operations of capability `C`, and the
/// attributes (never a value) every grant may see.
pub(crate) struct Grant<'s, C> {
    store: &'s Store,
    caller: &'s Principal,
    id: SecretId,
    capability: PhantomData<C>,
}

impl Scoped<'_> {
    /// The store's policy.
    pub(crate) fn config(&self) -> &StoreConfig {
        self.store.config()
    }

    /// An identity with defaults applied and names checked (no authorization: a name).
    pub(crate) fn secret_id(
        &self,
        namespace: Option<&str>,
        env: Option<&str>,
        key: &str,
    ) -> strongroom_store::Result<SecretId> {
        self.store.secret_id(namespace, env, key)
    }

    /// The sealed settings of auth methods, for a superuser to write.
    pub(crate) fn auth_settings(&self) -> Result<AuthSettings, Denied> {
        if self.caller.superuser {
            Ok(AuthSettings::new(self.store.clone()))
        } else {
            Err(Denied {
                what: "a superuser token (auth methods are an operator's settings)".into(),
            })
        }
    }

    /// Whether the caller may do `capability` on the secret `key` of `namespace`/`env`
    /// (for filtering what an answer shows; the doors below are the checks).
    pub(crate) fn may(
        &self,
        capability: Capability,
        namespace: &str,
        env: &str,
        key: &str,
    ) -> bool {
        self.caller.may_key(capability, namespace, env, key)
    }

    /// The one check of a capability on one secret: a scope on its env, or one narrowed to
    /// keys that match its key.
    fn grant<C>(&self, capability: Capability, id: &SecretId) -> Result<Grant<'_, C>, Denied> {
        if self
            .caller
            .may_key(capability, &id.namespace, &id.env, &id.key)
        {
            Ok(Grant {
                store: &self.store,
                caller: self.caller,
                id: id.clone(),
                capability: PhantomData,
            })
        } else {
            Err(Denied::missing(
                capability,
                format!("{}/{}", id.namespace, id.env),
            ))
        }
    }

    /// Values of `id` (`read`).
    pub(crate) fn read(&self, id: &SecretId) -> Result<Grant<'_, Read>, Denied> {
        self.grant(Capability::Read, id)
    }

    /// New values and attributes of `id` (`write`).
    pub(crate) fn write(&self, id: &SecretId) -> Result<Grant<'_, Write>, Denied> {
        self.grant(Capability::Write, id)
    }

    /// Deleting `id` or its versions (`delete`).
    pub(crate) fn delete(&self, id: &SecretId) -> Result<Grant<'_, Delete>, Denied> {
        self.grant(Capability::Delete, id)
    }

    /// Names and metadata of `id` (`list`).
    pub(crate) fn list(&self, id: &SecretId) -> Result<Grant<'_, List>, Denied> {
        self.grant(Capability::List, id)
    }

    /// Listing `namespace` (`env` only, or every env: `list` there, or on every env).
    pub(crate) fn list_env(
        &self,
        namespace: &str,
        env: Option<&str>,
    ) -> Result<EnvListing<'_>, Denied> {
        let allowed = match env {
            Some(env) => self.caller.may(Capability::List, namespace, env),
            None => self.caller.may_in_all_envs(Capability::List, namespace),
        };
        if !allowed {
            let place = match env {
                Some(env) => format!("{namespace}/{env}"),
                None => format!("every env of {namespace} (pass ?env= for one the token may list)"),
            };
            return Err(Denied::missing(Capability::List, place));
        }
        Ok(EnvListing {
            store: &self.store,
            namespace: namespace.to_owned(),
            env: env.map(str::to_owned),
        })
    }

    /// The envs of `namespace` that hold secrets and that the caller may list (a root
    /// listing shows only those; names only).
    pub(crate) async fn listable_envs(
        &self,
        namespace: &str,
    ) -> strongroom_store::Result<std::collections::BTreeSet<String>> {
        Ok(self
            .listable_secrets(namespace, "")
            .await?
            .into_keys()
            .collect())
    }

    /// Every secret of `namespace` whose key starts with `prefix` (empty: all) in the envs
    /// the caller may list, by env: one scan of the namespace, whatever its envs.
    pub(crate) async fn listable_secrets(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> strongroom_store::Result<std::collections::BTreeMap<String, Vec<SecretInfo>>> {
        let mut by_env: std::collections::BTreeMap<String, Vec<SecretInfo>> =
            std::collections::BTreeMap::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .list(ListQuery {
                    namespace: Some(namespace.to_owned()),
                    prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                    limit: Some(500),
                    cursor,
                    ..ListQuery::default()
                })
                .await?;
            for info in page.items {
                if self.caller.may(Capability::List, namespace, &info.env) {
                    by_env.entry(info.env.clone()).or_default().push(info);
                }
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(by_env);
            }
        }
    }

    /// Injecting the values of `namespace`/`env` into a gateway route's request (`use`):
    /// the store the gateway resolves the route's templates from.
    pub(crate) fn use_env(
        &self,
        namespace: &str,
        env: &str,
        route: &str,
    ) -> Result<&Store, Denied> {
        if self.caller.may(Capability::Use, namespace, env) {
            Ok(&self.store)
        } else {
            Err(Denied::missing(
                Capability::Use,
                format!("{namespace}/{env} (gateway route {route})"),
            ))
        }
    }

    /// A copy or move of `from` to `to` (docs/api.md, "Copy and move"): `read` at the
    /// source, or `use` alone when the target is out of the caller's reach (it may neither
    /// read nor use it, directly or through an env that falls back to it), so a value the
    /// caller may not read never becomes readable or usable by it; `write` at the target;
    /// a move also `delete` at the source, and a forced move at the target.
    pub(crate) fn transfer(
        &self,
        from: &SecretId,
        to: &SecretId,
        moving: bool,
        force: bool,
    ) -> Result<Transfer<'_>, Denied> {
        let caller = self.caller;
        if !caller.may_key(Capability::Read, &from.namespace, &from.env, &from.key) {
            if !caller.may_key(Capability::Use, &from.namespace, &from.env, &from.key) {
                return Err(Denied::missing(
                    Capability::Read,
                    format!("{}/{} (or `use`)", from.namespace, from.env),
                ));
            }
            let chain = |env: &str| self.store.config().chain(env);
            let in_reach = [Capability::Read, Capability::Use]
                .into_iter()
                .any(|cap| caller.reaches(cap, &to.namespace, &to.env, &to.key, chain));
            if in_reach {
                return Err(Denied {
                    what: format!(
                        "the `read` capability on {}/{}: with `use` alone a value may go only \
                         where this token can neither read nor use it, and it may reach {}/{}",
                        from.namespace, from.env, to.namespace, to.env
                    ),
                });
            }
        }
        let need = |capability: Capability, id: &SecretId| {
            if caller.may_key(capability, &id.namespace, &id.env, &id.key) {
                Ok(())
            } else {
                Err(Denied::missing(
                    capability,
                    format!("{}/{}", id.namespace, id.env),
                ))
            }
        };
        need(Capability::Write, to)?;
        if moving {
            need(Capability::Delete, from)?;
            if force {
                need(Capability::Delete, to)?;
            }
        }
        Ok(Transfer {
            store: &self.store,
            from: from.clone(),
            to: to.clone(),
            force,
        })
    }

    /// Hands out the values of reads obtained through read grants, each recorded as
    /// `action` first (the store's audited-read rule).
    pub(crate) async fn commit_reads(
        &self,
        reads: Vec<PendingRead>,
        action: Action,
    ) -> strongroom_store::Result<Vec<Secret>> {
        self.store.commit_reads(reads, action).await
    }
}

impl<C> Grant<'_, C> {
    /// Its versions (metadata, no value).
    pub(crate) async fn history(&self) -> strongroom_store::Result<Vec<VersionInfo>> {
        self.store.history(&self.id).await
    }

    /// Its own settings.
    pub(crate) async fn settings(&self) -> strongroom_store::Result<SecretSettings> {
        self.store.settings(&self.id).await
    }

    /// Attributes written before its first value (Vault's metadata-first writes).
    pub(crate) async fn pending_attributes(
        &self,
    ) -> strongroom_store::Result<Option<serde_json::Value>> {
        self.store.pending_attributes(&self.id).await
    }

    /// Its attributes (no value), or `None` when it does not exist.
    pub(crate) async fn info(&self) -> strongroom_store::Result<Option<SecretInfo>> {
        self.store.info(&self.id).await
    }
}

impl Grant<'_, Read> {
    /// The value the caller's env serves, falling back only through envs the caller may
    /// read too (a fallback read needs `read` on the env that serves).
    pub(crate) async fn get_in_scope(&self) -> strongroom_store::Result<PendingRead> {
        let (caller, namespace, key) =
            (self.caller, self.id.namespace.clone(), self.id.key.clone());
        self.store
            .get_within(&self.id, |env| {
                caller.may_key(Capability::Read, &namespace, env, &key)
            })
            .await
    }

    /// Exactly this env's current value.
    pub(crate) async fn get_exact(&self) -> strongroom_store::Result<PendingRead> {
        self.store.get_exact(&self.id).await
    }

    /// One kept version.
    pub(crate) async fn get_version(&self, version: u32) -> strongroom_store::Result<PendingRead> {
        self.store.get_version(&self.id, version).await
    }
}

impl Grant<'_, Write> {
    /// A new value (and attributes).
    pub(crate) async fn set(&self, request: SetRequest) -> strongroom_store::Result<WriteOutcome> {
        self.store.set(&self.id, request).await
    }

    /// Attributes without the value.
    pub(crate) async fn update_meta(
        &self,
        update: MetaUpdate,
    ) -> strongroom_store::Result<SecretInfo> {
        self.store.update_meta(&self.id, update).await
    }

    /// A kept version made current again.
    pub(crate) async fn rollback(&self, version: u32) -> strongroom_store::Result<WriteOutcome> {
        self.store.rollback(&self.id, version).await
    }

    /// Soft-deleted versions made readable again.
    pub(crate) async fn undelete_versions(
        &self,
        versions: &[u32],
    ) -> strongroom_store::Result<Vec<u32>> {
        self.store.undelete_versions(&self.id, versions).await
    }

    /// Its own settings replaced.
    pub(crate) async fn set_settings(
        &self,
        settings: SecretSettings,
    ) -> strongroom_store::Result<()> {
        self.store.set_settings(&self.id, settings).await
    }

    /// Attributes kept until its first value, or removed.
    pub(crate) async fn set_pending_attributes(
        &self,
        attributes: Option<&serde_json::Value>,
    ) -> strongroom_store::Result<()> {
        self.store
            .set_pending_attributes(&self.id, attributes)
            .await
    }
}

impl Grant<'_, Delete> {
    /// The secret and every version.
    pub(crate) async fn delete(&self) -> strongroom_store::Result<()> {
        self.store.delete(&self.id).await
    }

    /// Versions soft-deleted.
    pub(crate) async fn delete_versions(
        &self,
        versions: &[u32],
    ) -> strongroom_store::Result<Vec<u32>> {
        self.store.delete_versions(&self.id, versions).await
    }

    /// Versions destroyed for good.
    pub(crate) async fn destroy_versions(
        &self,
        versions: &[u32],
    ) -> strongroom_store::Result<Vec<u32>> {
        self.store.destroy_versions(&self.id, versions).await
    }

    /// Attributes kept for it before a first value, removed.
    pub(crate) async fn clear_pending_attributes(&self) -> strongroom_store::Result<()> {
        self.store.set_pending_attributes(&self.id, None).await
    }
}

/// Listing one env of a namespace, or all of them.
pub(crate) struct EnvListing<'s> {
    store: &'s Store,
    namespace: String,
    env: Option<String>,
}

impl EnvListing<'_> {
    /// A page of the listing; the namespace and env are the granted ones, whatever
    /// `query` says.
    pub(crate) async fn page(
        &self,
        query: ListQuery,
    ) -> strongroom_store::Result<Page<SecretInfo>> {
        self.store
            .list(ListQuery {
                namespace: Some(self.namespace.clone()),
                env: self.env.clone(),
                ..query
            })
            .await
    }

    /// Every secret of the listing whose key starts with `prefix` (empty: all), read a
    /// page of 500 at a time.
    pub(crate) async fn all(&self, prefix: &str) -> strongroom_store::Result<Vec<SecretInfo>> {
        let mut items = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .page(ListQuery {
                    prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                    limit: Some(500),
                    cursor,
                    ..ListQuery::default()
                })
                .await?;
            items.extend(page.items);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(items);
            }
        }
    }
}

/// A granted copy or move.
pub(crate) struct Transfer<'s> {
    store: &'s Store,
    from: SecretId,
    to: SecretId,
    force: bool,
}

impl Transfer<'_> {
    /// Copies the source's current value to the target.
    pub(crate) async fn copy(&self) -> strongroom_store::Result<WriteOutcome> {
        self.store.copy(&self.from, &self.to, self.force).await
    }

    /// Moves the source, with its history, to the target.
    pub(crate) async fn move_to(&self) -> strongroom_store::Result<WriteOutcome> {
        self.store.move_to(&self.from, &self.to, self.force).await
    }
}
