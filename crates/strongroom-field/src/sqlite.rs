//! `rusqlite` conversions: `Encrypted<T>` and `Deterministic<T>` are BLOBs.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::{Deterministic, Encrypted};

macro_rules! sqlite_blob {
    ($name:ident) => {
        impl<T> ToSql for $name<T> {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Blob(self.as_sealed())))
            }
        }

        impl<T> FromSql for $name<T> {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let bytes = value.as_blob()?;
                $name::from_sealed(bytes.to_vec()).map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

sqlite_blob!(Encrypted);
sqlite_blob!(Deterministic);
