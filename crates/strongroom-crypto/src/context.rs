//! Associated data: where a ciphertext belongs.

/// The context a value is sealed for, bound into the AEAD's associated data.
///
/// A context is a domain label followed by parts, each encoded as a 4-byte big-endian
/// length and its bytes, so `("ab", "c")` and `("a", "bc")` never collide. A ciphertext
/// sealed for one context fails authentication in any other.
///
/// ```
/// use strongroom_crypto::Context;
/// let a = Context::secret("default", "prod", "DB_URL");
/// let b = Context::secret("default", "prod", "DB_URL2");
/// assert_ne!(a.as_bytes(), b.as_bytes());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Context {
    encoded: Vec<u8>,
}

impl Context {
    /// A context with a domain label and no parts yet.
    pub fn new(domain: &str) -> Self {
        let mut context = Self {
            encoded: Vec::with_capacity(64),
        };
        context.push_part(domain.as_bytes());
        context
    }

    /// Appends one part (builder style).
    #[must_use]
    pub fn with(mut self, part: impl AsRef<[u8]>) -> Self {
        self.push_part(part.as_ref());
        self
    }

    /// The context of a layer-3 stored secret: `(namespace, env, key)`.
    pub fn secret(namespace: &str, env: &str, key: &str) -> Self {
        Self::new("secret").with(namespace).with(env).with(key)
    }

    /// The context of one version of a layer-3 stored secret: `(namespace, env, key,
    /// secret id, version)`. The secret id is random per secret (a delete and re-create
    /// changes it) and the version is the 4-byte big-endian version number, so a sealed
    /// value copied over another version's row, or into a re-created secret, fails.
    pub fn secret_version(
        namespace: &str,
        env: &str,
        key: &str,
        secret_id: &str,
        version: u32,
    ) -> Self {
        Self::new("secret-version")
            .with(namespace)
            .with(env)
            .with(key)
            .with(secret_id)
            .with(version.to_be_bytes())
    }

    /// The context of a layer-2 encrypted field: `(table, column, row id)`.
    pub fn field(table: &str, column: &str, row_id: impl AsRef<[u8]>) -> Self {
        Self::new("field").with(table).with(column).with(row_id)
    }

    /// The canonical encoding, as used in associated data.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    fn push_part(&mut self, part: &[u8]) {
        let len = u32::try_from(part.len()).expect("context parts are far below 4 GiB");
        self.encoded.extend_from_slice(&len.to_be_bytes());
        self.encoded.extend_from_slice(part);
    }
}

impl core::fmt::Debug for Context {
    // Contexts hold names (namespace, env, key, table), never values; still, keep the
    // output compact and unambiguous.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Context(")?;
        f.write_str(&hex::encode(&self.encoded))?;
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_context_encodes_as_documented() {
        // docs/format.md, vector `envelope-3`.
        let context =
            super::Context::secret_version("default", "prod", "API_KEY", "k3q9z0a1b2c3d4e", 2);
        assert_eq!(
            hex::encode(context.as_bytes()),
            "0000000e7365637265742d76657273696f6e0000000764656661756c740000000470726f64000000074150495f4b45590000000f6b3371397a306131623263336434650000000400000002"
        );
    }
}
