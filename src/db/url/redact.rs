//! Keeping secrets out of output: a URL's password and secret parameters, wherever they appear.

use super::percent::percent_decode;

/// Query parameters whose value is a secret for some driver: `password` (both drivers take it),
/// `sslpassword` (libpq), `pkcs12_pass` (mysql), and anything else naming a password.
pub(super) fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("pass") || key == "pwd"
}

/// The URL with its password and every secret query value replaced by `***`.
pub(super) fn redacted_url(parsed: &::url::Url) -> String {
    let mut redacted = parsed.clone();
    if redacted.password().is_some() {
        let _ = redacted.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| is_secret_key(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_key(&k) {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        redacted.query_pairs_mut().clear().extend_pairs(pairs);
    }
    redacted.to_string()
}

/// Every secret seen in a URL this process was given, so [`redact`] removes it from any text, in
/// whatever form a driver or a message may echo it (as given, or percent-decoded).
pub(super) static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

pub(super) fn remember(secret: &str) {
    // Shorter strings would blank out ordinary words; the URL-shaped redaction still covers them.
    if secret.chars().count() < 3 || secret == "***" {
        return;
    }
    if let Ok(mut all) = SECRETS.lock() {
        if !all.iter().any(|s| s == secret) {
            all.push(secret.to_string());
            // Longest first, so a secret that contains another is replaced whole.
            all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

pub(super) fn remember_url_secrets(parsed: &::url::Url) {
    if let Some(p) = parsed.password() {
        remember(p);
        remember(&percent_decode(p));
    }
    for (k, v) in parsed.query_pairs() {
        if is_secret_key(&k) {
            remember(&v);
        }
    }
}

/// Learns the secrets of a database URL as the operator typed it (an argument, `DATABASE_URL`),
/// before anything parses it, so even a message about a malformed URL cannot show them.
pub(crate) fn remember_secrets_of(raw: &str) {
    if let Ok(parsed) = ::url::Url::parse(raw.trim()) {
        remember_url_secrets(&parsed);
    }
    // What the URL parser may not see as a password (a raw `/` or `?` in it): everything between
    // `user:` and the last `@`.
    if let Some((_, rest)) = raw.split_once("://") {
        if let Some(at) = rest.rfind('@') {
            if let Some((_, pass)) = rest[..at].split_once(':') {
                remember(pass);
                remember(&percent_decode(pass));
            }
        }
    }
    for part in raw.split(['?', '&', ';', ' ']) {
        if let Some((k, v)) = part.split_once('=') {
            if is_secret_key(k) {
                remember(v);
                remember(&percent_decode(v));
            }
        }
    }
}

/// A database URL as the operator typed it, for the audit table: parsed as the drivers parse it,
/// password and secret parameters replaced; when it does not parse, everything between `://` and
/// the last `@` replaced.
pub(crate) fn redact_url(raw: &str) -> String {
    remember_secrets_of(raw);
    if let Ok(parsed) = ::url::Url::parse(raw.trim()) {
        if parsed.has_host() {
            return redacted_url(&parsed);
        }
    }
    match raw.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => redact(&format!("{scheme}://***{}", &rest[at..])),
            None => redact(raw),
        },
        None => redact(raw),
    }
}

/// Replaces credentials inside `text` (an argument, an error message, a log line): the password of
/// every `scheme://user:password@` URL, secret query parameters, and every secret a URL given to
/// this process held.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, token) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&redact_token(token));
    }
    if let Ok(secrets) = SECRETS.lock() {
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
    }
    out
}

pub(super) fn redact_token(token: &str) -> String {
    let token = redact_params(token);
    let Some(start) = token.find("://") else {
        return token;
    };
    let rest = &token[start + 3..];
    // The userinfo ends at the last `@` before the path (a password may hold a raw `@`).
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return token;
    };
    let creds = &rest[..at];
    match creds.split_once(':') {
        Some((user, pass)) if pass != "***" && !creds.contains('/') => {
            format!("{}{user}:***{}", &token[..start + 3], &rest[at..])
        }
        _ => token,
    }
}

/// `password=…` (and the other secret keys) inside a query string or a connection string.
pub(super) fn redact_params(token: &str) -> String {
    if !token.contains('=') {
        return token.to_string();
    }
    let mut out = String::with_capacity(token.len());
    let mut rest = token;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq]
            .rfind(['?', '&', ';', '(', '`', '\'', '"', ','])
            .map_or(0, |i| i + 1);
        let key = &rest[key_start..eq];
        out.push_str(&rest[..=eq]);
        rest = &rest[eq + 1..];
        if is_secret_key(key) && !rest.starts_with("***") {
            let end = rest
                .find(['&', ';', '`', '\'', '"', ')', ','])
                .unwrap_or(rest.len());
            if end > 0 {
                out.push_str("***");
            }
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}
