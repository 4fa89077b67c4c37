//! SQL text into statements, the way each dialect's own client splits it: `psql` (dollar quotes,
//! nested block comments, `COPY … FROM stdin` data, backslash meta-commands, `BEGIN ATOMIC` bodies),
//! `mysql` (`DELIMITER`, `#` comments, backslash escapes in strings, `/*! … */` comments that are
//! code) and `sqlite3` (trigger bodies, which hold `;`). A `;` inside a quote, a comment or a body
//! never ends a statement.

use crate::db::Dialect;

/// One unit of a file, with the line (1-based) where its first code stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    /// A statement without its delimiter and without plain comments.
    Sql { line: usize, text: String },
    /// `COPY … FROM stdin` (the statement) and its data lines, the `\.` line left out.
    Copy {
        line: usize,
        head: String,
        rows: Vec<(usize, String)>,
    },
    /// A `psql` meta-command line, such as `\restrict KEY`.
    Meta { line: usize, text: String },
}

/// The pieces of `sql`, or `(line, what is wrong)`: a quote, comment or `COPY` block never closed.
pub(crate) fn split(dialect: Dialect, sql: &str) -> Result<Vec<Piece>, (usize, String)> {
    let text = sql.replace("\r\n", "\n");
    let mut s = Splitter {
        dialect,
        src: &text,
        pos: 0,
        line: 1,
        delimiter: ";".to_string(),
        buf: String::new(),
        first: None,
        words: Vec::new(),
        depth: 0,
        out: Vec::new(),
    };
    s.run()?;
    Ok(s.out)
}

struct Splitter<'a> {
    dialect: Dialect,
    src: &'a str,
    pos: usize,
    line: usize,
    delimiter: String,
    /// The statement so far.
    buf: String,
    /// The line of the statement's first code; `None` while it holds none.
    first: Option<usize>,
    /// Its first words, upper-cased: what kind of statement (a trigger, a function) it is.
    words: Vec<String>,
    /// BEGIN/CASE … END nesting inside a body that holds `;` (a trigger, `BEGIN ATOMIC`).
    depth: i32,
    out: Vec<Piece>,
}

impl Splitter<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn run(&mut self) -> Result<(), (usize, String)> {
        while self.pos < self.src.len() {
            let at_line_start = self.pos == 0 || self.src.as_bytes()[self.pos - 1] == b'\n';
            if at_line_start && self.line_command() {
                continue;
            }
            if self.rest().starts_with(self.delimiter.as_str()) && self.depth <= 0 {
                self.pos += self.delimiter.len();
                self.finish()?;
                continue;
            }
            self.token()?;
        }
        if self.first.is_some() {
            self.finish()?;
        }
        Ok(())
    }

    /// One token: a quote, a comment, a word or a single character.
    fn token(&mut self) -> Result<(), (usize, String)> {
        let rest = self.rest();
        let c = rest.chars().next().unwrap_or(' ');
        let mysql = self.dialect == Dialect::Mysql;
        match c {
            '\'' => self.quoted('\'', mysql || self.escape_string()),
            '"' => self.quoted('"', mysql),
            '`' if self.dialect != Dialect::Postgres => self.quoted('`', false),
            '[' if self.dialect == Dialect::Sqlite => self.quoted(']', false),
            '-' if rest.starts_with("--") && (!mysql || dash_comment(rest)) => {
                self.line_comment();
                Ok(())
            }
            '#' if mysql => {
                self.line_comment();
                Ok(())
            }
            '/' if rest.starts_with("/*") => self.block_comment(),
            '$' if self.dialect == Dialect::Postgres && self.dollar_tag().is_some() => {
                self.dollar_quoted()
            }
            c if c.is_alphanumeric() || c == '_' => {
                self.word();
                Ok(())
            }
            c => {
                if !c.is_whitespace() {
                    self.code();
                }
                self.take(c.len_utf8());
                Ok(())
            }
        }
    }

    /// Marks the statement as holding code from this line on.
    fn code(&mut self) {
        self.first.get_or_insert(self.line);
    }

    /// Copies `len` bytes into the statement, counting lines.
    fn take(&mut self, len: usize) {
        let piece = &self.src[self.pos..self.pos + len];
        self.line += piece.matches('\n').count();
        self.buf.push_str(piece);
        self.pos += len;
    }

    /// Skips `len` bytes (a comment), counting lines.
    fn skip(&mut self, len: usize) {
        self.line += self.src[self.pos..self.pos + len].matches('\n').count();
        self.pos += len;
    }

    /// PostgreSQL's `E'…'` takes backslash escapes.
    fn escape_string(&self) -> bool {
        self.dialect == Dialect::Postgres && {
            let mut back = self.buf.chars().rev();
            matches!(back.next(), Some('E' | 'e'))
                && !back.next().is_some_and(|c| c.is_alphanumeric() || c == '_')
        }
    }

    fn quoted(&mut self, close: char, backslash: bool) -> Result<(), (usize, String)> {
        let line = self.line;
        self.code();
        let open = self.rest().chars().next().unwrap_or(close);
        let body = &self.rest()[open.len_utf8()..];
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if backslash && c == '\\' {
                chars.next();
            } else if c == close {
                if chars.peek().is_some_and(|&(_, n)| n == close) {
                    chars.next();
                } else {
                    self.take(open.len_utf8() + i + c.len_utf8());
                    return Ok(());
                }
            }
        }
        Err((line, format!("the quote {open} opened here never closes")))
    }

    fn line_comment(&mut self) {
        let len = self.rest().find('\n').unwrap_or(self.rest().len());
        self.skip(len);
    }

    /// `/* … */` (nested on PostgreSQL); MySQL's `/*! … */`, `/*M! … */` and `/*+ … */` are code.
    fn block_comment(&mut self) -> Result<(), (usize, String)> {
        let line = self.line;
        let rest = self.rest();
        let nests = self.dialect == Dialect::Postgres;
        let (mut depth, mut i) = (0, 0);
        let bytes = rest.as_bytes();
        while i + 1 < bytes.len() {
            match (bytes[i], bytes[i + 1]) {
                (b'/', b'*') if depth == 0 || nests => (depth, i) = (depth + 1, i + 2),
                (b'*', b'/') => {
                    (depth, i) = (depth - 1, i + 2);
                    if depth == 0 {
                        self.comment_done(i);
                        return Ok(());
                    }
                }
                _ => i += 1,
            }
        }
        Err((line, "the comment /* opened here never closes".to_string()))
    }

    fn comment_done(&mut self, len: usize) {
        let rest = self.rest();
        let code = self.dialect == Dialect::Mysql
            && ["/*!", "/*M!", "/*+"].iter().any(|p| rest.starts_with(p));
        if code {
            self.code();
            self.take(len);
        } else {
            self.skip(len);
            self.buf.push(' ');
        }
    }

    /// The `$tag$` opening a dollar quote here, if one does (`$1` is a parameter, not a quote).
    fn dollar_tag(&self) -> Option<&str> {
        let prev = self.buf.chars().next_back();
        if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let rest = self.rest();
        let end = rest[1..].find('$')? + 1;
        let tag = &rest[1..end];
        let ok = tag.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !tag.starts_with(|c: char| c.is_ascii_digit());
        ok.then_some(&rest[..=end])
    }

    fn dollar_quoted(&mut self) -> Result<(), (usize, String)> {
        let line = self.line;
        let tag = self.dollar_tag().unwrap_or("$$").to_string();
        self.code();
        match self.rest()[tag.len()..].find(&tag) {
            Some(at) => {
                self.take(tag.len() + at + tag.len());
                Ok(())
            }
            None => Err((
                line,
                format!("the dollar quote {tag} opened here never closes"),
            )),
        }
    }

    fn word(&mut self) {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len());
        let word = rest[..len].to_uppercase();
        self.code();
        self.take(len);
        if self.words.len() < 4 {
            self.words.push(word.clone());
        }
        if self.holds_body() {
            match word.as_str() {
                "BEGIN" | "CASE" => self.depth += 1,
                "END" => self.depth -= 1,
                _ => {}
            }
        }
    }

    /// A statement whose body holds `;`: an SQLite trigger; a PostgreSQL function or procedure
    /// (only a `BEGIN ATOMIC` body is unquoted). MySQL marks its bodies with `DELIMITER` instead.
    fn holds_body(&self) -> bool {
        let w: Vec<&str> = self.words.iter().map(String::as_str).collect();
        match self.dialect {
            Dialect::Sqlite => matches!(
                w.as_slice(),
                ["CREATE", "TRIGGER", ..] | ["CREATE", "TEMP" | "TEMPORARY", "TRIGGER", ..]
            ),
            Dialect::Postgres => matches!(
                w.as_slice(),
                ["CREATE", "FUNCTION" | "PROCEDURE", ..]
                    | ["CREATE", "OR", "REPLACE", "FUNCTION" | "PROCEDURE", ..]
            ),
            Dialect::Mysql => false,
        }
    }

    /// A line that is a client command rather than SQL: `psql`'s `\…` (even inside a statement, as
    /// `psql` reads it), `mysql`'s `DELIMITER` (between statements).
    fn line_command(&mut self) -> bool {
        let rest = self.rest();
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let text = rest[..end].trim();
        match self.dialect {
            Dialect::Postgres if text.starts_with('\\') => {
                let (line, text) = (self.line, text.to_string());
                self.out.push(Piece::Meta { line, text });
            }
            Dialect::Mysql if self.first.is_none() && is_delimiter(text) => {
                let new = text[9..].trim();
                self.delimiter = new.to_string();
            }
            _ => return false,
        }
        self.skip(end);
        true
    }

    fn finish(&mut self) -> Result<(), (usize, String)> {
        let text = std::mem::take(&mut self.buf).trim().to_string();
        let first = self.first.take();
        self.words.clear();
        self.depth = 0;
        let Some(line) = first else {
            return Ok(());
        };
        if self.dialect == Dialect::Postgres && is_copy_from_stdin(&text) {
            let rows = self.copy_rows(line)?;
            self.out.push(Piece::Copy {
                line,
                head: text,
                rows,
            });
        } else {
            self.out.push(Piece::Sql { line, text });
        }
        Ok(())
    }

    /// The data lines after `COPY … FROM stdin;` (from the next line), up to the `\.` line.
    fn copy_rows(&mut self, line: usize) -> Result<Vec<(usize, String)>, (usize, String)> {
        let to_eol = self.rest().find('\n').map_or(self.rest().len(), |i| i + 1);
        self.skip(to_eol);
        let mut rows = Vec::new();
        while self.pos < self.src.len() {
            let rest = self.rest();
            let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
            let row = rest[..end].trim_end_matches('\n').to_string();
            let at = self.line;
            self.skip(end);
            if row == "\\." {
                return Ok(rows);
            }
            rows.push((at, row));
        }
        Err((
            line,
            "the COPY data that starts here has no closing \\. line".to_string(),
        ))
    }
}

/// MySQL: `--` starts a comment only before a space, a control character or the end.
fn dash_comment(rest: &str) -> bool {
    rest[2..]
        .chars()
        .next()
        .is_none_or(|c| c.is_whitespace() || c.is_control())
}

fn is_delimiter(line: &str) -> bool {
    line.get(..9)
        .is_some_and(|w| w.eq_ignore_ascii_case("delimiter"))
        && line[9..].starts_with(char::is_whitespace)
        && !line[9..].trim().is_empty()
}

fn is_copy_from_stdin(text: &str) -> bool {
    let upper = text.to_uppercase();
    upper.starts_with("COPY ") && upper.split_whitespace().any(|w| w == "STDIN")
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
