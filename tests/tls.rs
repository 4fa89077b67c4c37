//! TLS against servers this test starts itself, so the shared servers other tests use are untouched:
//! a second PostgreSQL cluster (initdb in a temp dir, its own port) and a second MariaDB server
//! (mariadb-install-db in a temp dir), each with a certificate signed by a CA made here with the
//! `openssl` command (on every machine that has the PostgreSQL packages: postgresql-common needs it).
//!
//! The PostgreSQL server accepts only TLS (`hostssl`, scram-sha-256 passwords; `hostnossl ... reject`)
//! and listens on 127.0.0.1 and 127.0.0.2; its certificate names `localhost` and 127.0.0.1 only, so
//! 127.0.0.2 is a host name the certificate does not match. The MariaDB user is `REQUIRE SSL`; its
//! certificate names only `localhost`, so 127.0.0.1 does not match it.

mod common;
#[path = "common/own_server.rs"]
mod own_server;
use backfill::db::{self, Target};
use common::{closed_port, run_url as run, seed_edge_cases, V_COMPETENCY};
use own_server::{is_root, sh, MariaServer};
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "hunter2";

/// A CA, a second (untrusted) CA, and a server certificate signed by the first for `san`.
fn make_certs(dir: &Path, san: &str) {
    let openssl = |args: &[&str]| sh(Command::new("openssl").args(args).current_dir(dir));
    for ca in ["ca", "other-ca"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-subj",
            &format!("/CN=backfill test {ca}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.pem",
        "-extfile",
        "server.ext",
    ]);
}

/// Runs `status` with this URL; `Ok(())` or the one error line (the password nowhere, either way).
fn status(url: &str) -> Result<(), String> {
    let r = run(url, &["status"]);
    if r.code == 0 {
        for out in [&r.stdout, &r.stderr] {
            assert!(!out.contains(PASSWORD), "password leaked: {out}");
        }
        return Ok(());
    }
    Err(r.one_line_error_hiding(r.code, PASSWORD).to_string())
}

// ---------------------------------------------------------------- PostgreSQL

struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PgCluster {
    fn start(name: &str) -> PgCluster {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
            .expect("a PostgreSQL version");
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        let dir = std::env::temp_dir().join(format!("backfill-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        make_certs(&dir, "DNS:localhost,IP:127.0.0.1");
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        let port = closed_port();
        let cluster = PgCluster { dir, bin, port };
        if is_root() {
            // initdb and postgres refuse to run as root: the cluster belongs to `postgres`.
            sh(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir));
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            cluster.dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let data = cluster.dir.join("data");
        cluster.as_owner(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                cluster.dir.join("pw").to_str().unwrap(),
            ],
        );
        let d = cluster.dir.display();
        let conf = format!(
            "listen_addresses = '127.0.0.1,127.0.0.2'\nport = {port}\nunix_socket_directories = '{d}'\n\
             ssl = on\nssl_cert_file = '{d}/server.pem'\nssl_key_file = '{d}/server.key'\n\
             fsync = off\nshared_buffers = 16MB\nmax_connections = 20\n"
        );
        let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pg_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pg_conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostnossl all all 127.0.0.0/8 reject\nhostssl all all 127.0.0.0/8 scram-sha-256\n",
        )
        .unwrap();
        let log = cluster.dir.join("log");
        cluster.as_owner(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        cluster
    }

    fn as_owner(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        if is_root() {
            sh(Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(exe)
                .args(args));
        } else {
            sh(Command::new(exe).args(args));
        }
    }

    fn url(&self, host: &str, db: &str, query: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/{db}?{query}",
            self.port
        )
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let _ = cmd
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
fn postgres_sslmodes() {
    let pg = PgCluster::start("tls-pg");
    let admin = pg.url("127.0.0.1", "postgres", "sslmode=require");
    let mut s = db::connect(&Target::parse(&admin).unwrap()).expect("connect over TLS");
    s.execute("CREATE DATABASE bf_tls_pg", &[]).unwrap();
    drop(s);
    let app = pg.url("127.0.0.1", "bf_tls_pg", "sslmode=require");
    let mut s = db::connect(&Target::parse(&app).unwrap()).unwrap();
    backfill::fixtures::load_schema(s.as_mut()).unwrap();
    drop(s);

    let ca = pg.file("ca.pem");
    let other = pg.file("other-ca.pem");
    let url = |host: &str, query: &str| pg.url(host, "bf_tls_pg", query);

    // The server takes only TLS: `disable` is refused by the server, in one line.
    let err = status(&url("127.0.0.1", "sslmode=disable")).unwrap_err();
    assert!(err.contains("no encryption"), "{err}");
    // Encrypted, certificate not checked.
    status(&url("127.0.0.1", "")).expect("default (prefer)");
    status(&url("127.0.0.1", "sslmode=prefer")).expect("prefer");
    status(&url("127.0.0.1", "sslmode=require")).expect("require");
    status(&url("127.0.0.2", "sslmode=require")).expect("require, any name");
    // require with a root certificate checks the CA, as libpq does.
    status(&url(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={ca}"),
    ))
    .expect("require + CA");
    let err = status(&url(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={other}"),
    ))
    .unwrap_err();
    assert!(
        err.contains("UnknownIssuer") && err.contains("sslrootcert"),
        "{err}"
    );
    // verify-ca: trusted CA, any host name.
    status(&url(
        "127.0.0.2",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .expect("verify-ca");
    let err = status(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={other}"),
    ))
    .unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    let err = status(&url("127.0.0.1", "sslmode=verify-ca&sslrootcert=system")).unwrap_err();
    assert!(
        err.contains("UnknownIssuer"),
        "a private CA is not a public one: {err}"
    );
    // verify-full: trusted CA and the name.
    status(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .expect("verify-full by IP");
    status(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .expect("verify-full by name");
    let err = status(&url(
        "127.0.0.2",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
    // Bad settings are configuration errors, before connecting.
    let err = status(&url(
        "127.0.0.1",
        "sslmode=verify-full&sslrootcert=/no/such/ca.pem",
    ))
    .unwrap_err();
    assert!(err.contains("cannot read sslrootcert"), "{err}");
    let r = run(&url("127.0.0.1", "sslmode=verify-full"), &["status"]);
    let line = r.one_line_error(2);
    assert!(line.contains("sslrootcert"), "{line}");
    // A wrong password (scram over TLS): one line, exit 2, the password nowhere.
    let wrong = url("127.0.0.1", "sslmode=require").replacen(PASSWORD, "hunter2-not", 1);
    let r = run(&wrong, &["status"]);
    let line = r.one_line_error_hiding(2, "hunter2").to_string();
    assert!(line.contains("password authentication failed"), "{line}");

    // The whole flow over verify-full.
    let full = url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let t = common::TestDb::wrap_for_seeding(&full);
    seed_edge_cases(&t);
    run(&full, &["plan"]).expect(0);
    let applied = run(&full, &["apply"]);
    applied.expect(0);
    run(&full, &["verify", "--data"]).expect(0);
    let v = V_COMPETENCY.to_string();
    run(&full, &["revert", &v]).expect(0);
    let status = run(&full, &["status"]);
    status.expect(0);
    assert!(
        status.stdout.contains("sslmode=verify-full"),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains(PASSWORD));
}

// ---------------------------------------------------------------- MariaDB

/// The test's own MariaDB server with a certificate for `localhost` only (127.0.0.1 is a name the
/// certificate does not match), and a user that must use TLS.
fn tls_server() -> MariaServer {
    let srv = MariaServer::start("tls-my", |dir| {
        make_certs(dir, "DNS:localhost");
        let d = dir.display();
        vec![
            format!("--ssl-ca={d}/ca.pem"),
            format!("--ssl-cert={d}/server.pem"),
            format!("--ssl-key={d}/server.key"),
        ]
    });
    srv.sql(&format!(
        "CREATE USER 'bf_tls'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL; GRANT ALL ON *.* TO 'bf_tls'@'%'; \
         CREATE DATABASE bf_tls_my CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    ));
    srv
}

fn tls_url(srv: &MariaServer, host: &str, query: &str) -> String {
    format!(
        "mysql://bf_tls:{PASSWORD}@{host}:{}/bf_tls_my?{query}",
        srv.port
    )
}

#[test]
fn mysql_ssl_modes() {
    let my = tls_server();
    let ca = my.file("ca.pem");
    let other = my.file("other-ca.pem");
    let url = |host: &str, query: &str| tls_url(&my, host, query);

    // The user must use TLS: DISABLED is refused by the server, in one line.
    let err = status(&url("127.0.0.1", "ssl-mode=DISABLED")).unwrap_err();
    assert!(err.contains("Access denied"), "{err}");
    status(&url("127.0.0.1", "")).expect("default (PREFERRED)");
    status(&url("127.0.0.1", "ssl-mode=PREFERRED")).expect("PREFERRED");
    status(&url("127.0.0.1", "ssl-mode=REQUIRED")).expect("REQUIRED");
    status(&url("127.0.0.1", "ssl-mode=required")).expect("case-insensitive");
    // VERIFY_CA: trusted CA, any name (the certificate names only localhost).
    status(&url(
        "127.0.0.1",
        &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"),
    ))
    .expect("VERIFY_CA");
    let err = status(&url(
        "127.0.0.1",
        &format!("ssl-mode=VERIFY_CA&ssl-ca={other}"),
    ))
    .unwrap_err();
    assert!(
        err.contains("TLS") && err.contains("UnknownIssuer"),
        "{err}"
    );
    // ssl-ca alone means VERIFY_CA, as for the mysql client.
    status(&url("127.0.0.1", &format!("ssl-ca={ca}"))).expect("ssl-ca alone");
    // VERIFY_IDENTITY: the name must match too.
    status(&url(
        "localhost",
        &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    ))
    .expect("VERIFY_IDENTITY");
    let err = status(&url(
        "127.0.0.1",
        &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    ))
    .unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
    let err = status(&url(
        "127.0.0.1",
        "ssl-mode=VERIFY_IDENTITY&ssl-ca=/no/such/ca.pem",
    ))
    .unwrap_err();
    assert!(err.contains("ssl-ca"), "{err}");
    let err = status(&url("127.0.0.1", "ssl-mode=SOMETIMES")).unwrap_err();
    assert!(err.contains("VERIFY_IDENTITY"), "{err}");

    // The whole flow over REQUIRED.
    let req = url("127.0.0.1", "ssl-mode=REQUIRED");
    let mut s = db::connect(&Target::parse(&req).unwrap()).unwrap();
    backfill::fixtures::load_schema(s.as_mut()).unwrap();
    drop(s);
    let t = common::TestDb::wrap_for_seeding(&req);
    seed_edge_cases(&t);
    run(&req, &["apply"]).expect(0);
    run(&req, &["verify", "--data"]).expect(0);
    assert_eq!(t.marked_competencies().len(), 3);
}

#[test]
fn mysql_required_against_a_server_without_tls() {
    // The shared MariaDB has no TLS configured: REQUIRED must fail in one line, PREFERRED falls back.
    let t = common::TestDb::with_app(common::Kind::Mariadb, "tls_none");
    let err = status(&format!("{}?ssl-mode=REQUIRED", t.url)).unwrap_err();
    assert!(err.contains("does not support TLS"), "{err}");
    status(&format!("{}?ssl-mode=PREFERRED", t.url)).expect("PREFERRED falls back to plain");
    status(&format!("{}?ssl-mode=DISABLED", t.url)).expect("DISABLED");
}

#[test]
fn unreachable_tls_port_is_one_line() {
    let url = format!(
        "postgres://postgres:{PASSWORD}@127.0.0.1:{}/x?sslmode=require",
        closed_port()
    );
    let err = status(&url).unwrap_err();
    assert!(err.contains("cannot connect"), "{err}");
}
