//! `COPY … FROM stdin` as `pg_dump` writes it (text format: tab-separated fields, `\N` for NULL,
//! backslash escapes) turned into one parameterised INSERT per row, so it runs through any session.

use crate::db::Value;

/// The INSERT for `COPY target FROM stdin` (`target` being `table` or `table (columns)`), or why
/// the COPY is not one we read.
pub(crate) fn insert_sql(head: &str, fields: usize) -> Result<String, String> {
    let upper = head.to_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let from = upper
        .rfind(" FROM ")
        .filter(|_| words.last() == Some(&"STDIN"));
    let Some(from) = from else {
        return Err(
            "only `COPY … FROM stdin` in text format (as pg_dump writes it) can be loaded".into(),
        );
    };
    let target = head["COPY".len()..from].trim();
    let marks = vec!["?"; fields].join(", ");
    Ok(format!("INSERT INTO {target} VALUES ({marks})"))
}

/// One data line's values: `\N` is NULL, everything else text with its escapes decoded.
pub(crate) fn row(line: &str) -> Vec<Value> {
    line.split('\t')
        .map(|field| match field {
            "\\N" => Value::Null,
            f => Value::Text(unescape(f)),
        })
        .collect()
}

fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (byte, used) = escape(&bytes[i + 1..]);
        out.push(byte);
        i += 1 + used;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte a backslash escape stands for, and how many bytes after the backslash it used.
fn escape(after: &[u8]) -> (u8, usize) {
    let digits = |radix: u32, max: usize, from: usize| {
        let run: Vec<u8> = after[from..]
            .iter()
            .take(max)
            .take_while(|b| (**b as char).is_digit(radix))
            .copied()
            .collect();
        let text = String::from_utf8_lossy(&run).into_owned();
        u32::from_str_radix(&text, radix)
            .ok()
            .map(|v| (v as u8, from + run.len()))
    };
    match after[0] {
        b'b' => (8, 1),
        b'f' => (12, 1),
        b'n' => (b'\n', 1),
        b'r' => (b'\r', 1),
        b't' => (b'\t', 1),
        b'v' => (11, 1),
        b'0'..=b'7' => digits(8, 3, 0).unwrap_or((after[0], 1)),
        b'x' => digits(16, 2, 1).unwrap_or((b'x', 1)),
        other => (other, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_nulls_and_escapes() {
        assert_eq!(
            row("1\t\\N\ta\\tb\\\\c\\nd\\101\\x41"),
            vec![
                Value::Text("1".into()),
                Value::Null,
                Value::Text("a\tb\\c\nd\u{41}A".into()),
            ]
        );
        assert_eq!(
            row("é\t"),
            vec![Value::Text("é".into()), Value::Text("".into())]
        );
    }

    #[test]
    fn head_becomes_an_insert() {
        assert_eq!(
            insert_sql(
                "COPY public.migrations (id, migration, batch) FROM stdin",
                3
            )
            .unwrap(),
            "INSERT INTO public.migrations (id, migration, batch) VALUES (?, ?, ?)"
        );
        let csv = insert_sql("COPY t FROM stdin WITH (FORMAT csv)", 1).unwrap_err();
        assert!(csv.contains("text format"), "{csv}");
    }
}
