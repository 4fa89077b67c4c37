//! SQL an author writes that goes into our statements. `:lo` and `:hi` in SQL written whole (a
//! declarative insert's `select`): the ends of the walked key range, wherever and as often as the
//! SQL needs them, turned into the positional `?` parameters every driver takes. An expression
//! (an UPDATE's value or condition, [`expression`]) takes no placeholder. Comments are dropped on
//! the way: a `?` in one would shift the parameters (PostgreSQL's driver numbers every `?` outside
//! quotes), and a `--` one would swallow the rest of the statement the expression is put into.

use crate::db::Value;
use crate::kit::migration::KeyRange;

const OWN_PARAMETER: &str =
    "has a `?` of its own; name the range's ends :lo and :hi, and write other values into the SQL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Lo,
    Hi,
}

/// SQL with `?` in place of each `:lo` and `:hi`, and which end each `?` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranged {
    /// The SQL as the driver takes it.
    pub sql: String,
    ends: Vec<End>,
}

impl Ranged {
    /// Reads `sql`; `Err` says what is wrong with its placeholders (both ends must appear, and no
    /// `?` of its own).
    pub fn parse(sql: &str) -> Result<Ranged, String> {
        let ranged = Ranged::scan(sql, true).ok_or(OWN_PARAMETER)?;
        for (end, name) in [(End::Lo, ":lo"), (End::Hi, ":hi")] {
            if !ranged.ends.contains(&end) {
                return Err(format!(
                    "lacks {name}; bound the walked key with both ends, e.g. WHERE c.id BETWEEN :lo AND :hi"
                ));
            }
        }
        Ok(ranged)
    }

    /// `sql` with its comments blanked and, where `ranged`, each `:lo` and `:hi` a `?`; `None` when
    /// it has a `?` of its own (outside quotes and comments).
    fn scan(sql: &str, ranged: bool) -> Option<Ranged> {
        let mut out = Ranged {
            sql: String::with_capacity(sql.len()),
            ends: Vec::new(),
        };
        let mut prev = ' ';
        let mut rest = sql;
        while let Some(c) = rest.chars().next() {
            let line_end = || rest.find('\n').unwrap_or(rest.len());
            let comment_end = || rest.find("*/").map_or(rest.len(), |i| i + 2);
            let taken = match c {
                '\'' | '"' | '`' => out.copy(rest, quoted(rest, c)),
                '-' if rest.starts_with("--") => out.blank(line_end()),
                '/' if rest.starts_with("/*") => out.blank(comment_end()),
                '?' => return None,
                ':' if ranged => out.placeholder(rest, prev),
                _ => out.copy(rest, c.len_utf8()),
            };
            prev = rest[..taken].chars().last().unwrap_or(' ');
            rest = &rest[taken..];
        }
        Some(out)
    }

    /// The parameters of one range, in the order the SQL takes them.
    pub fn params(&self, range: KeyRange) -> Vec<Value> {
        self.ends
            .iter()
            .map(|end| match end {
                End::Lo => Value::Int(range.lo),
                End::Hi => Value::Int(range.hi),
            })
            .collect()
    }

    fn copy(&mut self, rest: &str, len: usize) -> usize {
        self.sql.push_str(&rest[..len]);
        len
    }

    fn blank(&mut self, len: usize) -> usize {
        self.sql.push(' ');
        len
    }

    /// `:lo` or `:hi` as a word of its own (not PostgreSQL's `::` cast, not a longer name).
    fn placeholder(&mut self, rest: &str, prev: char) -> usize {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let end = match rest.get(1..3) {
            Some("lo") => End::Lo,
            Some("hi") => End::Hi,
            _ => return self.copy(rest, 1),
        };
        let after = rest[3..].chars().next().is_some_and(word);
        if prev == ':' || word(prev) || after {
            return self.copy(rest, 1);
        }
        self.sql.push('?');
        self.ends.push(end);
        3
    }
}

/// An expression as it goes into a statement: its comments blanked; `Err` says what to do about a
/// `?` of its own, which the driver would number as a parameter.
pub fn expression(sql: &str) -> Result<String, String> {
    match Ranged::scan(sql, false) {
        Some(scanned) => Ok(scanned.sql),
        None => Err("has a `?`, which would be read as a parameter; write values into the SQL \
             (for PostgreSQL's jsonb `?`, `?|` and `?&`: jsonb_exists, jsonb_exists_any and jsonb_exists_all)"
            .into()),
    }
}

/// The length of the quoted text at the start of `rest`, its quotes included (a doubled quote is
/// one inside it; an unclosed one runs to the end, for the database to refuse).
fn quoted(rest: &str, quote: char) -> usize {
    let mut at = 1;
    while let Some(i) = rest[at..].find(quote) {
        at += i + 1;
        if !rest[at..].starts_with(quote) {
            return at;
        }
        at += 1;
    }
    rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_becomes_a_parameter_in_order() {
        let r = Ranged::parse("SELECT 1 FROM t WHERE t.id >= :lo AND t.id <= :hi OR t.x = :lo")
            .expect("parses");
        assert_eq!(
            r.sql,
            "SELECT 1 FROM t WHERE t.id >= ? AND t.id <= ? OR t.x = ?"
        );
        let range = KeyRange { lo: 4, hi: 9 };
        assert_eq!(
            r.params(range),
            vec![Value::Int(4), Value::Int(9), Value::Int(4)]
        );
    }

    #[test]
    fn quotes_casts_longer_names_and_comments_are_not_placeholders() {
        let sql = "SELECT ':lo', \"a:hi\", x::lol, :lowest -- :hi?\nFROM t /* :lo? */ WHERE id BETWEEN :lo AND :hi";
        let r = Ranged::parse(sql).expect("parses");
        assert_eq!(
            r.sql,
            "SELECT ':lo', \"a:hi\", x::lol, :lowest  \nFROM t   WHERE id BETWEEN ? AND ?"
        );
        assert_eq!(r.ends, vec![End::Lo, End::Hi]);
        assert_eq!(
            Ranged::parse("SELECT 'it''s :lo' WHERE id BETWEEN :lo AND :hi")
                .expect("parses")
                .ends
                .len(),
            2
        );
    }

    #[test]
    fn an_expression_loses_its_comments_and_keeps_its_quotes_and_casts() {
        let sql = "date(t.created_at) -- the day it was made\n + 0 /* ? */ || '?--' || t.x::text";
        assert_eq!(
            expression(sql).expect("no parameter"),
            "date(t.created_at)  \n + 0   || '?--' || t.x::text"
        );
        let own = expression("t.doc ? 'key'").expect_err("a jsonb ?");
        assert!(own.contains("jsonb_exists"), "{own}");
    }

    #[test]
    fn both_ends_are_needed_and_no_other_parameter() {
        let lacks = Ranged::parse("SELECT 1 WHERE id >= :lo").expect_err("no :hi");
        assert!(lacks.contains("lacks :hi"), "{lacks}");
        let lacks = Ranged::parse("SELECT ':lo' WHERE id <= :hi").expect_err("no :lo");
        assert!(lacks.contains("lacks :lo"), "{lacks}");
        let own = Ranged::parse("SELECT 1 WHERE id BETWEEN :lo AND :hi AND x = ?").expect_err("?");
        assert!(own.contains("`?`"), "{own}");
    }
}
