//! The app's `.env`, read exactly as Laravel reads it: vlucas/phpdotenv v5 (its `Parser\Lines`,
//! `Parser\EntryParser`, `Parser\Lexer` and `Loader\Resolver`), then Laravel's `Env::get`.
//!
//! - Lines end at `\n`, `\r\n` or `\r`; blank lines and lines starting with `#` are skipped. A value
//!   that opens a double quote and does not close it on its line continues on the next lines.
//! - `NAME=value`: both sides trimmed; an `export ` prefix and quotes around the name are dropped; a
//!   name is letters, digits, `_` and `.`. `NAME` alone (no `=`) unsets NAME.
//! - Unquoted: ends at whitespace (anything after it but a `#` comment is an error); `#` starts a
//!   comment even without a space before it; backslashes and quotes inside are literal.
//! - `'single'`: literal, nothing expanded. `"double"`: the escapes `\"`, `\\`, `\$`, `\n`, `\r`,
//!   `\t`, `\f`, `\v`; any other backslash is an error.
//! - Only `${NAME}` is expanded (unquoted and double-quoted), from the process environment or an
//!   earlier line; an unknown name stays as written. `$NAME` without braces stays literal.
//!   Nothing is percent-decoded.
//! - As in Laravel (an immutable repository), a variable already set in the process environment
//!   keeps the environment's value: the file does not override it.
//! - Laravel's `env()` then maps `true`/`(true)`, `false`/`(false)`, `empty`/`(empty)` and
//!   `null`/`(null)` (any case), and strips one pair of matching quotes around the whole value.
//!
//! Errors name the line and the key, never the value (it may be the password).

use std::collections::HashMap;

/// One `NAME=value` (or `NAME`) entry and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub line: usize,
    pub name: String,
    /// `None` for a bare `NAME` line, which unsets NAME.
    pub value: Option<Value>,
}

/// A parsed value: its characters, and where a `$` that may start `${NAME}` stands (byte offsets).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Value {
    pub chars: String,
    pub(crate) vars: Vec<usize>,
}

/// A line phpdotenv refuses. Carries no part of the value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub line: usize,
    /// The entry's name, when the line has one that can be shown safely.
    pub key: Option<String>,
    pub cause: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(f, "line {} ({key}): {}", self.line, self.cause),
            None => write!(f, "line {}: {}", self.line, self.cause),
        }
    }
}

const UNQUOTED_SPACE: &str =
    "more text after the value (quote a value with spaces: KEY=\"a b\"; only a # comment may follow it)";
const MISSING_QUOTE: &str = "a quote that is never closed (close it)";
const BAD_ESCAPE: &str =
    "an unknown escape in double quotes (use \\\\ for a backslash, or single quotes)";
const BAD_NAME: &str = "not a KEY=value line (a key holds only letters, digits, _ and .)";
const NO_NAME: &str = "a line starting with `=` (write KEY=value)";

/// PHP's `trim()` default characters.
fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\n', '\r', '\t', '\0', '\x0B'])
}

/// PCRE's `\s` (no Unicode): space, \t, \n, \v, \f, \r. Also PHP's `ctype_space`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// Splits the file into lines as phpdotenv does (`\r\n`, `\n` or `\r`).
fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['\n', '\r']) {
        out.push(&rest[..at]);
        let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[at + skip..];
    }
    out.push(rest);
    out
}

/// `Lines::looksLikeMultilineStop`: how many `"` have a character other than a backslash before
/// them, once every `\\` is removed.
fn closes_multiline(line: &str, started: bool) -> bool {
    if line == "\"" {
        return true;
    }
    let cleaned = line.replace("\\\\", "");
    let chars: Vec<char> = cleaned.chars().collect();
    let count = chars
        .windows(2)
        .filter(|w| w[0] != '\\' && w[1] == '"')
        .count();
    if started {
        count > 1
    } else {
        count >= 1
    }
}

fn opens_multiline(line: &str) -> bool {
    line.contains("=\"") && !closes_multiline(line, true)
}

fn is_comment_or_blank(line: &str) -> bool {
    let t = php_trim(line);
    t.is_empty() || t.starts_with('#')
}

/// A name that may be shown in an error: a valid name, or for a line without `=` its first word
/// when it looks like a variable name (capitals, digits, `_`, `.`).
fn shown_name(name_part: &str, has_equals: bool) -> Option<String> {
    if let Ok(name) = parse_name(name_part) {
        return Some(name);
    }
    let first = strip_export(name_part).split(is_space).next().unwrap_or("");
    let looks_like_key = !first.is_empty()
        && first
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '.');
    (has_equals || looks_like_key)
        .then(|| first.to_string())
        .filter(|n| !n.is_empty() && n.chars().all(is_name_char))
}

fn strip_export(name: &str) -> &str {
    let mut chars = name.char_indices();
    if name.chars().count() > 8 && name.starts_with("export") {
        if let Some((at, c)) = chars.nth(6) {
            if is_space(c) {
                return name[at..].trim_start_matches([' ', '\t', '\n', '\r', '\x0B', '\x0C']);
            }
        }
    }
    name
}

/// phpdotenv's `[\p{Ll}\p{Lu}\p{M}\p{N}_.]`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '_'
        || c == '.'
        || (!c.is_ascii() && (c.is_lowercase() || c.is_uppercase() || c.is_numeric()))
}

fn parse_name(raw: &str) -> Result<String, ()> {
    let mut name = strip_export(raw);
    let count = name.chars().count();
    if count >= 3
        && ((name.starts_with('"') && name.ends_with('"'))
            || (name.starts_with('\'') && name.ends_with('\'')))
    {
        name = &name[1..name.len() - 1];
    }
    if !name.is_empty() && name.chars().all(is_name_char) {
        Ok(name.to_string())
    } else {
        Err(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Initial,
    Unquoted,
    Single,
    Double,
    Escape,
    Whitespace,
    Comment,
}

/// The lexer's tokens: a run of line breaks, a run of other whitespace, one of `\ ' " # $`, or a
/// run of anything else.
fn tokens(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        let len = match c {
            '\r' | '\n' => rest.find(|c| c != '\r' && c != '\n').unwrap_or(rest.len()),
            c if is_space(c) => rest
                .find(|c: char| !is_space(c) || c == '\r' || c == '\n')
                .unwrap_or(rest.len()),
            '\\' | '\'' | '"' | '#' | '$' => 1,
            _ => rest
                .find(|c: char| is_space(c) || matches!(c, '\\' | '\'' | '"' | '#' | '$'))
                .unwrap_or(rest.len()),
        };
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

fn parse_value(raw: &str) -> Result<Value, &'static str> {
    let mut value = Value::default();
    if php_trim(raw).is_empty() {
        return Ok(value);
    }
    let mut state = State::Initial;
    for token in tokens(raw) {
        let (append, var, next) = step(state, token, &mut value)?;
        if var {
            value.vars.push(value.chars.len());
        }
        value.chars.push_str(append);
        state = next;
    }
    match state {
        State::Single | State::Double | State::Escape => Err(MISSING_QUOTE),
        _ => Ok(value),
    }
}

/// One token in the state machine of phpdotenv's value parser: the text it appends, whether it
/// starts a variable reference, and the next state. An escape's control character goes straight
/// into `value`.
fn step<'t>(
    state: State,
    token: &'t str,
    value: &mut Value,
) -> Result<(&'t str, bool, State), &'static str> {
    let space = token.chars().all(is_space);
    Ok(match state {
        State::Initial => match token {
            "'" => ("", false, State::Single),
            "\"" => ("", false, State::Double),
            "#" => ("", false, State::Comment),
            "$" => (token, true, State::Unquoted),
            _ => (token, false, State::Unquoted),
        },
        State::Unquoted => match token {
            "#" => ("", false, State::Comment),
            _ if space => ("", false, State::Whitespace),
            "$" => (token, true, State::Unquoted),
            _ => (token, false, State::Unquoted),
        },
        State::Single => match token {
            "'" => ("", false, State::Whitespace),
            _ => (token, false, State::Single),
        },
        State::Double => match token {
            "\"" => ("", false, State::Whitespace),
            "\\" => ("", false, State::Escape),
            "$" => (token, true, State::Double),
            _ => (token, false, State::Double),
        },
        State::Escape => match token {
            "\"" | "\\" | "$" => (token, false, State::Double),
            _ => {
                let first = token.chars().next().unwrap_or(' ');
                let control = match first {
                    'f' => '\x0C',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\x0B',
                    _ => return Err(BAD_ESCAPE),
                };
                value.chars.push(control);
                (&token[1..], false, State::Double)
            }
        },
        State::Whitespace => match token {
            "#" => ("", false, State::Comment),
            _ if !space => return Err(UNQUOTED_SPACE),
            _ => ("", false, State::Whitespace),
        },
        State::Comment => ("", false, State::Comment),
    })
}

fn parse_entry(line: usize, raw: &str) -> Result<Entry, ParseError> {
    let (name_part, value_part) = match raw.split_once('=') {
        Some((n, v)) => (php_trim(n), Some(php_trim(v))),
        None => (php_trim(raw), None),
    };
    let error = |cause| ParseError {
        line,
        key: shown_name(name_part, value_part.is_some()),
        cause,
    };
    if name_part.is_empty() {
        return Err(ParseError {
            line,
            key: None,
            cause: NO_NAME,
        });
    }
    let name = parse_name(name_part).map_err(|()| error(BAD_NAME))?;
    let value = value_part
        .map(parse_value)
        .transpose()
        .map_err(|cause| ParseError {
            line,
            key: Some(name.clone()),
            cause,
        })?;
    Ok(Entry { line, name, value })
}

/// Parses a whole file (UTF-8 text, a leading BOM allowed).
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    // (line number where it started, lines so far)
    let mut open: Option<(usize, Vec<&str>)> = None;
    for (i, line) in lines(text).into_iter().enumerate() {
        let number = i + 1;
        let (start, joined) = match open.take() {
            Some((start, mut buffer)) => {
                buffer.push(line);
                if !closes_multiline(line, false) {
                    open = Some((start, buffer));
                    continue;
                }
                (start, buffer.join("\n"))
            }
            None if opens_multiline(line) => {
                open = Some((number, vec![line]));
                continue;
            }
            None => (number, line.to_string()),
        };
        if !is_comment_or_blank(&joined) {
            entries.push(parse_entry(start, &joined)?);
        }
    }
    // phpdotenv drops an unclosed double quote and every line after it without a word; the app
    // would then run without those settings. Say so instead.
    if let Some((start, buffer)) = open {
        let first = buffer.first().copied().unwrap_or("");
        let name_part = php_trim(first.split_once('=').map_or(first, |(n, _)| n));
        return Err(ParseError {
            line: start,
            key: shown_name(name_part, true),
            cause: MISSING_QUOTE,
        });
    }
    Ok(entries)
}

/// The `${NAME}` at the start of `s`, if any: (name, length of `${NAME}`).
fn braced_name(s: &str) -> Option<(&str, usize)> {
    let inner = s.strip_prefix("${")?;
    let end = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))?;
    (end > 0 && inner[end..].starts_with('}')).then(|| (&inner[..end], end + 3))
}

/// What Laravel's `env()` sees after loading `entries`: the file's values, with the process
/// environment (`external`) winning where it sets a variable.
pub(crate) fn load(entries: &[Entry], external: impl Fn(&str) -> Option<String> + 'static) -> Vars {
    let mut loaded: HashMap<String, Option<String>> = HashMap::new();
    let get = |loaded: &HashMap<String, Option<String>>, name: &str| match loaded.get(name) {
        Some(v) => v.clone(),
        None => external(name),
    };
    for entry in entries {
        let ours = loaded.contains_key(&entry.name);
        if !ours && external(&entry.name).is_some() {
            continue; // immutable: the environment wins
        }
        let Some(value) = &entry.value else {
            loaded.insert(entry.name.clone(), None);
            continue;
        };
        let mut vars = value.vars.clone();
        vars.sort_unstable_by(|a, b| b.cmp(a));
        let mut s = value.chars.clone();
        for at in vars {
            let Some(tail) = s.get(at..) else { continue };
            if let Some((name, len)) = braced_name(tail) {
                if let Some(found) = get(&loaded, name) {
                    s = format!("{}{found}{}", &s[..at], &tail[len..]);
                }
            }
        }
        loaded.insert(entry.name.clone(), Some(s));
    }
    let mut out: HashMap<String, String> = HashMap::new();
    for (name, value) in loaded {
        if let Some(v) = value {
            out.insert(name, v);
        }
    }
    Vars {
        file: out,
        external: Box::new(external),
    }
}

/// Reads a variable of the process environment.
type Lookup = Box<dyn Fn(&str) -> Option<String>>;

/// Variables as Laravel's `env()` returns them.
pub(crate) struct Vars {
    file: HashMap<String, String>,
    external: Lookup,
}

impl Vars {
    /// The raw loaded value: the environment's when it sets `name`, else the file's.
    pub(crate) fn raw(&self, name: &str) -> Option<String> {
        (self.external)(name).or_else(|| self.file.get(name).cloned())
    }

    /// Whether the process environment sets `name` (it wins over the file, as in Laravel).
    pub(crate) fn is_from_environment(&self, name: &str) -> bool {
        (self.external)(name).is_some()
    }

    /// `env(name)`: `None` for unset and for `null`/`(null)`; `true`/`false`/`empty` as PHP turns
    /// them into strings ("1", "", ""); one pair of matching surrounding quotes stripped.
    pub(crate) fn env(&self, name: &str) -> Option<String> {
        let v = self.raw(name)?;
        match v.to_ascii_lowercase().as_str() {
            "true" | "(true)" => return Some("1".into()),
            "false" | "(false)" | "empty" | "(empty)" => return Some(String::new()),
            "null" | "(null)" => return None,
            _ => {}
        }
        let b = v.as_bytes();
        // PHP's `/\A(['"])(.*)\1\z/`: `.` stops at a line break.
        if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
            let inner = &v[1..v.len() - 1];
            if !inner.contains('\n') {
                return Some(inner.to_string());
            }
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<Option<String>, ParseError> {
        let entries = parse(line)?;
        Ok(load(&entries, |_| None).raw("FOO"))
    }

    #[test]
    fn phpdotenv_entry_parser_cases() {
        // From phpdotenv's own EntryParserTest, values after the resolver.
        let cases: &[(&str, &str)] = &[
            ("FOO=BAR", "BAR"),
            ("FOO=\"\\n\"", "\n"),
            ("FOO=\"\\t\"", "\t"),
            ("FOO='\\t'", "\\t"),
            ("FOO=\\n\\v", "\\n\\v"),
            ("FOO=\\q", "\\q"),
            ("FOO=$BAR", "$BAR"),
            ("FOO=AAA$BAR", "AAA$BAR"),
            ("FOO=\"TEST $BAR $$BAZ\"", "TEST $BAR $$BAZ"),
            ("FOO='TEST $BAR $$BAZ'", "TEST $BAR $$BAZ"),
            ("export FOO=\"bar baz\"", "bar baz"),
            ("export\t\"FOO\"='bar baz'", "bar baz"),
            (
                "FOO=\"test some escaped characters like a quote \\\" or maybe a backslash \\\\\" # not escaped",
                "test some escaped characters like a quote \" or maybe a backslash \\",
            ),
            ("FOO='iiiiviiiixiiiiviiii\\a'", "iiiiviiiixiiiiviiii\\a"),
            ("FOO=\"BAR  \n\"", "BAR  \n"),
            ("FOO=foo# comment", "foo"),
            ("FOO=# comment", ""),
            ("FOO=", ""),
        ];
        for (line, want) in cases {
            assert_eq!(one(line).unwrap().as_deref(), Some(*want), "{line}");
        }
        for (line, cause) in [
            ("FOO=\"\\q\"", BAD_ESCAPE),
            ("FOO=bar baz", UNQUOTED_SPACE),
            ("=", NO_NAME),
            ("FOO_ASD!=BAZ", BAD_NAME),
            ("FOO='erert", MISSING_QUOTE),
            ("FOO=\"erert", MISSING_QUOTE),
            ("FOO=\"\\", MISSING_QUOTE),
        ] {
            assert_eq!(one(line).unwrap_err().cause, cause, "{line}");
        }
    }

    #[test]
    fn nested_fixture() {
        let text = "NVAR1=\"Hellō\"\nNVAR2=\"World!\"\nNVAR3=\"{$NVAR1} {$NVAR2}\"\nNVAR4=\"${NVAR1} ${NVAR2}\"\n\
                    NVAR5=\"$NVAR1 {NVAR2}\"\nN.VAR6=\"Special Value\"\nNVAR7=\"${N.VAR6}\"\nNVAR8=\"\"\nNVAR9=\"${NVAR8}\"\n\
                    NVAR10=\"${NVAR888}\"\nNVAR11=\"NVAR1\"\nNVAR12=\"${${NVAR11}}\"\nNVAR13='${${NVAR11}}'\n\
                    NVAR14='${NVAR1} ${NVAR2}'\nNVAR15=\"\\${NVAR1} \\${NVAR2}\"\n";
        let vars = load(&parse(text).unwrap(), |_| None);
        for (k, want) in [
            ("NVAR3", "{$NVAR1} {$NVAR2}"),
            ("NVAR4", "Hellō World!"),
            ("NVAR5", "$NVAR1 {NVAR2}"),
            ("NVAR7", "Special Value"),
            ("NVAR9", ""),
            ("NVAR10", "${NVAR888}"),
            ("NVAR12", "Hellō"),
            ("NVAR13", "${${NVAR11}}"),
            ("NVAR14", "${NVAR1} ${NVAR2}"),
            ("NVAR15", "${NVAR1} ${NVAR2}"),
        ] {
            assert_eq!(vars.raw(k).as_deref(), Some(want), "{k}");
        }
    }

    #[test]
    fn multiline_and_line_numbers() {
        let text = "A=1\nTEST=\"test\n     test\\\"test\\\"\n     test\"\nB=2\r\nC=\"x\rD=y";
        let entries = parse(text);
        assert_eq!(entries.as_ref().unwrap_err().line, 6, "{entries:?}");
        let entries = parse("A=1\nTEST=\"test\n  test\"\nB=2\n").unwrap();
        assert_eq!(entries[2].line, 4);
        let vars = load(&entries, |_| None);
        assert_eq!(vars.raw("TEST").as_deref(), Some("test\n  test"));
        let e = parse("# c\nDB_PASSWORD=\"abc\nX=1\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref(), e.cause),
            (2, Some("DB_PASSWORD"), MISSING_QUOTE)
        );
    }

    #[test]
    fn errors_never_show_values() {
        for (text, line, key) in [
            ("A=1\nDB_PASSWORD=hunter2 xyz\n", 2, Some("DB_PASSWORD")),
            ("DB_PASSWORD=\"hunter2", 1, Some("DB_PASSWORD")),
            ("\n\nDB_PASSWORD hunter2\n", 3, Some("DB_PASSWORD")),
            ("hunter2 xyz\n", 1, None),
            ("DB_PASSWORD='hunter2\n", 1, Some("DB_PASSWORD")),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (line, key), "{text:?}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn environment_wins_and_laravel_env_mapping() {
        let entries =
            parse("DB_HOST=file\nDB_PORT=null\nX=(empty)\nY='\"q\"'\nZ=${DB_HOST}\n").unwrap();
        let vars = load(&entries, |k| (k == "DB_HOST").then(|| "env".to_string()));
        assert_eq!(vars.env("DB_HOST").as_deref(), Some("env"));
        assert_eq!(vars.env("Z").as_deref(), Some("env"));
        assert_eq!(vars.env("DB_PORT"), None);
        assert_eq!(vars.env("X").as_deref(), Some(""));
        assert_eq!(vars.env("Y").as_deref(), Some("q"));
        // A bare name unsets what the file set before.
        let vars = load(&parse("A=1\nA\n").unwrap(), |_| None);
        assert_eq!(vars.raw("A"), None);
    }
}
