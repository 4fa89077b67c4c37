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

fn status(env_file: &Path, extra_env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = bin();
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
    let target = format!("mysql://bf_env_my:***@127.0.0.1:3306/{}", t.db_name());
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
        run.stdout.starts_with(&format!("target: {target}\n")),
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
        run.stdout.contains(&format!("`{target}?sslmode=disable`")),
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
        run.stdout.starts_with(&format!("target: {target}\n")),
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

    // Each command ran on its own database only.
    for t in [&a, &b, &c] {
        assert_eq!(t.int("SELECT COUNT(*) FROM backfill_schema_history"), 1);
    }
    let _ = std::fs::remove_dir_all(&d);
}
