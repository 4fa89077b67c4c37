//! Our `Value` to and from the `mysql` crate's.

use crate::db::Value;
use chrono::{Datelike, NaiveDate, Timelike};
use mysql::consts::ColumnType;

pub(super) fn to_mysql(v: &Value) -> mysql::Value {
    match v {
        Value::Null => mysql::Value::NULL,
        Value::Int(i) => mysql::Value::Int(*i),
        Value::Float(f) => mysql::Value::Double(*f),
        Value::Text(s) => mysql::Value::Bytes(s.clone().into_bytes()),
        Value::Date(d) => {
            mysql::Value::Date(d.year() as u16, d.month() as u8, d.day() as u8, 0, 0, 0, 0)
        }
        Value::Timestamp(t) => mysql::Value::Date(
            t.year() as u16,
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.and_utc().timestamp_subsec_micros(),
        ),
    }
}

pub(super) fn from_mysql(v: mysql::Value, column: ColumnType) -> Value {
    match v {
        mysql::Value::NULL => Value::Null,
        mysql::Value::Int(i) => Value::Int(i),
        mysql::Value::UInt(u) => i64::try_from(u).map_or(Value::Float(u as f64), Value::Int),
        mysql::Value::Float(f) => Value::Float(f.into()),
        mysql::Value::Double(f) => Value::Float(f),
        mysql::Value::Bytes(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
        mysql::Value::Date(y, mo, d, h, mi, s, us) => {
            let date = NaiveDate::from_ymd_opt(y.into(), mo.into(), d.into());
            match (date, column) {
                (Some(date), ColumnType::MYSQL_TYPE_DATE) => Value::Date(date),
                (Some(date), _) => date
                    .and_hms_micro_opt(h.into(), mi.into(), s.into(), us)
                    .map_or(Value::Null, Value::Timestamp),
                // A zero date ('0000-00-00') has no calendar value.
                (None, _) => Value::Null,
            }
        }
        mysql::Value::Time(neg, d, h, mi, s, _) => Value::Text(format!(
            "{}{}:{mi:02}:{s:02}",
            if neg { "-" } else { "" },
            d * 24 + u32::from(h)
        )),
    }
}
