//! `--env-file`: the app's Laravel `.env` (dotenv quoting and comments), for pgsql, mysql and sqlite;
//! precedence `--database-url` > `DATABASE_URL` > `--env-file`; `status` prints the effective target
//! with the password redacted.

mod common;
use common::{bin, Kind, Run, TestDb, TestUser};
use std::path::{Path, PathBuf};

const SECRET: &str = "p#ss word";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join("backfill-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The variables Laravel's config reads: a test's `.env` alone decides them (the process
/// environment would win over the file, as in Laravel).
const LARAVEL_VARS: &[&str] = &[
    "DB_CONNECTION",
    "DB_HOST",
    "DB_PORT",
    "DB_DATABASE",
    "DB_USERNAME",
    "DB_PASSWORD",
    "DB_URL",
    "DB_SSLMODE",
    "MYSQL_ATTR_SSL_CA",
];

fn status(env_file: &Path, extra_env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = bin();
    for var in LARAVEL_VARS {
        cmd.env_remove(var);
    }
    cmd.arg("--env-file").arg(env_file).args(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

/// A Laravel-style .env: comments, blank lines, quoted values with `#` and spaces, unrelated keys.
fn laravel_env(connection: &str, host_port: &str, database: &str, user: &str) -> String {
    format!(
        r#"APP_NAME="Talent Planner"
APP_ENV=production
# database
DB_CONNECTION={connection} # the driver

DB_HOST={host}
DB_PORT={port}
DB_DATABASE={database}
DB_USERNAME={user}
DB_PASSWORD="{SECRET}"
# DB_PASSWORD=commented-out-and-ignored
MAIL_MAILER=smtp
"#,
        host = host_port.split(':').next().unwrap(),
        port = host_port.split(':').nth(1).unwrap(),
    )
}

#[test]
fn mysql_env_with_quoted_password_connects() {
    let t = TestDb::with_app(Kind::Mariadb, "env_my");
    // A real password with `#` and a space: only a correct dotenv parse and URL encoding log in.
    let user = TestUser::owner(&t, "bf_env_my", SECRET);
    let d = dir("bf_env_my");
    let env = d.join(".env");
    std::fs::write(
        &env,
        laravel_env("mysql", "127.0.0.1:3306", t.db_name(), &user.name),
    )
    .unwrap();
    let run = status(&env, &[], &["status"]);
    run.expect(0);
    let target = format!("mysql://{}:***@127.0.0.1:3306/{}", user.name, t.db_name());
    assert!(
        run.stdout.starts_with(&format!("target: {target}\n")),
        "{}",
        run.stdout
    );
    for out in [&run.stdout, &run.stderr] {
        assert!(
            !out.contains("p#ss") && !out.contains("p%23ss"),
            "password leaked: {out}"
        );
    }
    let json = status(&env, &[], &["--format", "json", "status"]);
    json.expect(0);
    assert_eq!(json.json()["target"], target.as_str());
    // `mariadb` is accepted too.
    let env2 = d.join("mariadb.env");
    std::fs::write(
        &env2,
        laravel_env("mariadb", "127.0.0.1:3306", t.db_name(), &user.name),
    )
    .unwrap();
    status(&env2, &[], &["status"]).expect(0);
    // The same file with a wrong password is refused by the server, and says so in one line.
    std::fs::write(
        &env2,
        std::fs::read_to_string(&env)
            .unwrap()
            .replace(SECRET, "p#ss wordx"),
    )
    .unwrap();
    let denied = status(&env2, &[], &["status"]);
    let line = denied.one_line_error(2);
    assert!(line.contains("Access denied"), "{line}");
    assert!(!denied.stderr.contains("p#ss"), "{}", denied.stderr);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn pgsql_env_and_laravel_sslmode() {
    let t = TestDb::with_app(Kind::Postgres, "env_pg");
    let d = dir("bf_env_pg");
    let env = d.join(".env");
    std::fs::write(
        &env,
        laravel_env("pgsql", "127.0.0.1:5432", t.db_name(), "postgres"),
    )
    .unwrap();
    let run = status(&env, &[], &["status"]);
    run.expect(0);
    let target = format!("postgres://postgres:***@127.0.0.1:5432/{}", t.db_name());
    assert!(
        run.stdout
            .starts_with(&format!("target: {target} (schema public)\n")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("p#ss") && !run.stdout.contains("p%23ss"));
    // Laravel's DB_SSLMODE becomes sslmode in the URL.
    std::fs::write(
        &env,
        laravel_env("pgsql", "127.0.0.1:5432", t.db_name(), "postgres") + "DB_SSLMODE=disable\n",
    )
    .unwrap();
    let run = status(&env, &[], &["--format", "markdown", "status"]);
    run.expect(0);
    assert!(
        run.stdout
            .contains(&format!("`{target}?sslmode=disable (schema public)`")),
        "{}",
        run.stdout
    );
    // DB_URL, when the file sets one, wins over the DB_* parts.
    std::fs::write(
        &env,
        format!(
            "DB_CONNECTION=mysql\nDB_URL=\"postgres://postgres:{}@127.0.0.1:5432/{}\"\n",
            "p%23ss%20word",
            t.db_name()
        ),
    )
    .unwrap();
    let run = status(&env, &[], &["status"]);
    run.expect(0);
    assert!(
        run.stdout
            .starts_with(&format!("target: {target} (schema public)\n")),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sqlite_env() {
    let t = TestDb::with_app(Kind::Sqlite, "env_lite");
    let d = dir("bf_env_lite");
    let env = d.join(".env");
    let file = t.sqlite_path().unwrap().display().to_string();
    std::fs::write(
        &env,
        format!("# local development\nDB_CONNECTION=sqlite\nDB_DATABASE=\"{file}\"\n# DB_HOST=127.0.0.1\n"),
    )
    .unwrap();
    let run = status(&env, &[], &["status"]);
    run.expect(0);
    assert!(
        run.stdout
            .starts_with(&format!("target: sqlite://{file}\n")),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn precedence_flag_then_env_var_then_env_file() {
    let a = TestDb::new(Kind::Sqlite, "env_prec_file");
    let b = TestDb::new(Kind::Sqlite, "env_prec_var");
    let c = TestDb::new(Kind::Sqlite, "env_prec_flag");
    let d = dir("bf_env_prec");
    let env = d.join(".env");
    std::fs::write(
        &env,
        format!(
            "DB_CONNECTION=sqlite\nDB_DATABASE={}\n",
            a.sqlite_path().unwrap().display()
        ),
    )
    .unwrap();
    let target = |run: &Run| run.stdout.lines().next().unwrap_or("").to_string();

    let only_file = status(&env, &[], &["status"]);
    only_file.expect(0);
    assert_eq!(target(&only_file), format!("target: {}", a.url));
    assert!(only_file.stderr.is_empty(), "{}", only_file.stderr);

    let var = status(&env, &[("DATABASE_URL", &b.url)], &["status"]);
    var.expect(0);
    assert_eq!(target(&var), format!("target: {}", b.url));
    assert!(
        var.stderr.contains("--env-file") && var.stderr.contains("ignored"),
        "the ignored env file must be mentioned: {}",
        var.stderr
    );

    let flag = status(
        &env,
        &[("DATABASE_URL", &b.url)],
        &["--database-url", &c.url, "status"],
    );
    flag.expect(0);
    assert_eq!(target(&flag), format!("target: {}", c.url));

    // Each command looked at its own database (the target lines above), and a look creates no
    // ledger anywhere.
    for t in [&a, &b, &c] {
        assert!(t
            .session()
            .query_scalar("SELECT COUNT(*) FROM backfill_schema_history", &[])
            .is_err());
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// How Laravel (vlucas/phpdotenv v5, then `env()`) decodes a value, one row per rule: the lines put
/// at the top of the `.env`, and the password the app would send. Each row is proven by logging in
/// to MariaDB as a user whose password is exactly that value (a wrong decoding is refused by the
/// server). The expected values were checked against phpdotenv v5 itself.
const DECODING: &[(&str, &str)] = &[
    // never percent-decoded, in any quoting
    ("DB_PASSWORD=\"ab%41c\"", "ab%41c"),
    ("DB_PASSWORD=ab%41c", "ab%41c"),
    ("DB_PASSWORD='ab%41c'", "ab%41c"),
    ("DB_PASSWORD=\"100%\"", "100%"),
    // `$name` without braces is literal; only `${NAME}` expands, and not in single quotes
    ("DB_PASSWORD=ab$cd", "ab$cd"),
    ("DB_PASSWORD=\"ab$cd\"", "ab$cd"),
    ("PART=xyz\nDB_PASSWORD=$PART", "$PART"),
    ("PART=xyz\nDB_PASSWORD=ab${PART}", "abxyz"),
    ("PART=xyz\nDB_PASSWORD=\"ab${PART}\"", "abxyz"),
    ("PART=xyz\nDB_PASSWORD='ab${PART}'", "ab${PART}"),
    ("PART=xyz\nDB_PASSWORD=\"ab\\${PART}\"", "ab${PART}"),
    (
        "DB_PASSWORD=\"ab${BF_NOT_SET_ANYWHERE}\"",
        "ab${BF_NOT_SET_ANYWHERE}",
    ),
    // escapes only in double quotes
    ("DB_PASSWORD=\"a\\\"b\\\\c\"", "a\"b\\c"),
    ("DB_PASSWORD=\"tab\\there\"", "tab\there"),
    ("DB_PASSWORD=a\\b\\n", "a\\b\\n"),
    ("DB_PASSWORD='a\\nb\\t'", "a\\nb\\t"),
    // comments, spaces, quotes
    ("DB_PASSWORD=\"p#ss word\" # the app's", "p#ss word"),
    ("DB_PASSWORD=pass#comment", "pass"),
    ("DB_PASSWORD=secret # comment", "secret"),
    ("DB_PASSWORD=it's", "it's"),
    ("DB_PASSWORD='\"quoted\"'", "quoted"),
    ("DB_PASSWORD=p@ss:w/rd?x&y=z", "p@ss:w/rd?x&y=z"),
    ("DB_PASSWORD=\"ünïcødé\"", "ünïcødé"),
    ("DB_PASSWORD=\"two\nlines\"", "two\nlines"),
    // names, `export`, repeats, line endings, a BOM
    ("export DB_PASSWORD=exported", "exported"),
    ("DB_PASSWORD = spaced-out", "spaced-out"),
    ("DB_PASSWORD=first\nDB_PASSWORD=second", "second"),
    ("DB_PASSWORD=crlf-value\r\nAPP_ENV=local\r", "crlf-value"),
    ("\u{feff}DB_PASSWORD=after-bom", "after-bom"),
    // Laravel's env(): (empty) and null mean no password
    ("DB_PASSWORD=(empty)", ""),
    ("DB_PASSWORD=null", ""),
];

/// A MariaDB string literal.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn env_for(t: &TestDb, user: &str, top: &str) -> String {
    format!(
        "{top}\nDB_CONNECTION=mysql\nDB_HOST=127.0.0.1\nDB_PORT=3306\nDB_DATABASE={}\nDB_USERNAME={user}\n",
        t.db_name()
    )
}

#[test]
fn values_decoded_as_laravel_reads_them() {
    let t = TestDb::with_app(Kind::Mariadb, "env_decoding");
    let user = TestUser::owner(&t, "bf_env_dec", "initial-password");
    let d = dir("bf_env_decoding");
    let env = d.join(".env");
    let set_password = |password: &str| {
        common::admin_exec(
            Kind::Mariadb,
            &format!(
                "ALTER USER '{}'@'%' IDENTIFIED BY {}",
                user.name,
                sql_string(password)
            ),
        )
    };
    for (top, password) in DECODING {
        set_password(password);
        std::fs::write(&env, env_for(&t, &user.name, top)).unwrap();
        let run = status(&env, &[], &["status"]);
        assert_eq!(
            run.code, 0,
            "{top:?} must log in with password {password:?}\n{}",
            run.stderr
        );
        if password.len() >= 4 {
            for out in [&run.stdout, &run.stderr] {
                assert!(!out.contains(password), "password shown: {out}");
            }
        }
    }
    // The process environment wins over the file, as in Laravel (an immutable repository), and
    // `${NAME}` reads it too.
    set_password("from-the-environment");
    std::fs::write(&env, env_for(&t, &user.name, "DB_PASSWORD=from-the-file")).unwrap();
    let run = status(
        &env,
        &[("DB_PASSWORD", "from-the-environment")],
        &["status"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    set_password("xyz-from-env");
    std::fs::write(
        &env,
        env_for(&t, &user.name, "DB_PASSWORD=\"xyz-${BF_TEST_PART}\""),
    )
    .unwrap();
    let run = status(&env, &[("BF_TEST_PART", "from-env")], &["status"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A wrong decoding is what the server refuses: the same file, the password decoded.
    set_password("abAc");
    std::fs::write(&env, env_for(&t, &user.name, "DB_PASSWORD=\"ab%41c\"")).unwrap();
    let line = status(&env, &[], &["status"]).one_line_error(2).to_string();
    assert!(line.contains("Access denied"), "{line}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sqlite_path_is_not_percent_decoded() {
    let d = dir("bf_env_sqlite_pct");
    let file = d.join("a%41b.db");
    std::fs::File::create(&file).unwrap();
    let env = d.join(".env");
    std::fs::write(
        &env,
        format!("DB_CONNECTION=sqlite\nDB_DATABASE=\"{}\"\n", file.display()),
    )
    .unwrap();
    let run = status(&env, &[], &["status"]);
    run.expect(0);
    assert!(
        run.stdout
            .starts_with(&format!("target: sqlite://{}\n", file.display())),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A malformed line is named by its number and key, never by its value, whatever is wrong with it.
#[test]
fn malformed_lines_name_line_and_key_only() {
    let d = dir("bf_env_malformed");
    let env = d.join(".env");
    for (line, key) in [
        ("DB_PASSWORD=hunter2 xyz", Some("DB_PASSWORD")),
        ("DB_PASSWORD=\"hunter2", Some("DB_PASSWORD")),
        ("DB_PASSWORD='hunter2", Some("DB_PASSWORD")),
        ("DB_PASSWORD hunter2", Some("DB_PASSWORD")),
        ("DB_PASSWORD=\"hunter2\\q\"", Some("DB_PASSWORD")),
        ("DB_PASSWORD=\"hunter2\"xyz", Some("DB_PASSWORD")),
        ("export DB_PASSWORD=\"hunter2\" 'x'", Some("DB_PASSWORD")),
        ("=hunter2", None),
        ("hunter2 xyz", None),
        ("DB_PASS!WORD=hunter2", None),
    ] {
        std::fs::write(
            &env,
            format!("# app\nDB_CONNECTION=pgsql\nDB_HOST=127.0.0.1\n{line}\nDB_DATABASE=x\n"),
        )
        .unwrap();
        let run = status(&env, &[], &["status"]);
        let error = run.one_line_error_hiding(2, "hunter2");
        assert!(
            error.contains("malformed") && error.contains("line 4"),
            "{line}: {error}"
        );
        if let Some(key) = key {
            assert!(error.contains(&format!("({key})")), "{line}: {error}");
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}
