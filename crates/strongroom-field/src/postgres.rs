//! `tokio-postgres` conversions: `Encrypted<T>` and `Deterministic<T>` are `bytea`.

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

use crate::{Deterministic, Encrypted};

macro_rules! postgres_bytea {
    ($name:ident) => {
        impl<T> ToSql for $name<T> {
            fn to_sql(
                &self,
                _ty: &Type,
                out: &mut BytesMut,
            ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
                out.extend_from_slice(self.as_sealed());
                Ok(IsNull::No)
            }

            fn accepts(ty: &Type) -> bool {
                *ty == Type::BYTEA
            }

            to_sql_checked!();
        }

        impl<'a, T> FromSql<'a> for $name<T> {
            fn from_sql(
                _ty: &Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                Ok($name::from_sealed(raw.to_vec())?)
            }

            fn accepts(ty: &Type) -> bool {
                *ty == Type::BYTEA
            }
        }
    };
}

postgres_bytea!(Encrypted);
postgres_bytea!(Deterministic);
