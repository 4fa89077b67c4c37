//! Our `Value` to and from PostgreSQL: parameters go out as untyped text, columns come back
//! decoded by type.

use crate::db::Value;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use postgres::types::{Format, FromSql, IsNull, ToSql, Type};
use std::error::Error as StdError;

/// Sends our `Value` as whatever type the server inferred for the parameter.
#[derive(Debug)]
pub(super) struct PgParam<'a>(pub(super) &'a Value);

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for PgParam<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let text = match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Text(s) => s.clone(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            // UTC: a timestamptz reads the zone, a timestamp ignores it.
            Value::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string(),
        };
        out.extend_from_slice(text.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    postgres::types::to_sql_checked!();
}

/// Decodes PostgreSQL's binary NUMERIC (base-10000 digits), as SUM() returns it: an integer when it
/// has no fractional part, else a float.
fn numeric(raw: &[u8]) -> Result<Value, BoxError> {
    let word = |i: usize| -> Result<i16, BoxError> {
        let b = raw.get(i..i + 2).ok_or("truncated numeric")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign) = (word(0)?, word(2)?, word(4)? as u16);
    if sign == 0xC000 {
        return Ok(Value::Null); // NaN
    }
    let mut value = 0f64;
    for i in 0..ndigits.max(0) as usize {
        let digit = f64::from(word(8 + 2 * i)?);
        value += digit * 10000f64.powi(i32::from(weight) - i as i32);
    }
    if sign == 0x4000 {
        value = -value;
    }
    Ok(if value.fract() == 0.0 && value.abs() < 9.0e15 {
        Value::Int(value as i64)
    } else {
        Value::Float(value)
    })
}

/// Reads any column we use into our `Value`.
pub(super) struct PgCell(pub(super) Value);

impl<'a> FromSql<'a> for PgCell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let v = match *ty {
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
            Type::JSON | Type::JSONB => {
                Value::Text(serde_json::Value::from_sql(ty, raw)?.to_string())
            }
            Type::UUID => Value::Text(uuid::Uuid::from_sql(ty, raw)?.to_string()),
            Type::DATE => Value::Date(NaiveDate::from_sql(ty, raw)?),
            Type::TIMESTAMP => Value::Timestamp(NaiveDateTime::from_sql(ty, raw)?),
            Type::TIMESTAMPTZ => Value::Timestamp(DateTime::<Utc>::from_sql(ty, raw)?.naive_utc()),
            Type::NUMERIC => numeric(raw)?,
            _ if <String as FromSql>::accepts(ty) => Value::Text(String::from_sql(ty, raw)?),
            _ => {
                return Err(format!(
                    "column type {ty} is not supported; cast it to text or bigint in the query"
                )
                .into())
            }
        };
        Ok(PgCell(v))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(PgCell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
