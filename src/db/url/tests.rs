use super::*;

#[test]
fn tls_parameters() {
    let t = Target::parse(
        "postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5",
    )
    .unwrap();
    assert_eq!(t.tls.mode, TlsMode::VerifyFull);
    assert_eq!(t.tls.roots, Some(RootCerts::File("/ca.pem".into())));
    assert_eq!(t.secret_url(), "postgres://u:pw@h/db?connect_timeout=5");
    assert!(t.redacted.contains("sslmode=verify-full"));
    let t = Target::parse("postgres://u@h/db").unwrap();
    assert_eq!((t.tls.mode, &t.tls.roots), (TlsMode::Prefer, &None));
    assert_eq!(t.secret_url(), "postgres://u@h/db");
    let t = Target::parse("postgres://u@h/db?sslrootcert=system&sslmode=require").unwrap();
    assert_eq!(t.tls.roots, Some(RootCerts::System));
    let t = Target::parse("mariadb://u:pw@h/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem").unwrap();
    assert_eq!(t.tls.mode, TlsMode::VerifyFull);
    assert_eq!(t.secret_url(), "mysql://u:pw@h/db");
    let t = Target::parse("mysql://u@h/db?ssl-ca=/ca.pem").unwrap();
    assert_eq!(
        t.tls.mode,
        TlsMode::VerifyCa,
        "ssl-ca alone verifies, as the mysql client does"
    );
    assert!(Target::parse("postgres://u@h/db?sslmode=verify-identity").is_err());
    assert!(Target::parse("mysql://u@h/db?ssl-mode=verify-full").is_err());
    assert!(Target::parse("postgres://u@h/db?sslcert=/c.pem").is_err());
    assert!(Target::parse("postgres://u@h/db?sslrootcert=").is_err());
}

#[test]
fn multi_host_urls() {
    let t = Target::parse(
        "postgres://u:pw@h1:5432,[::1]:5433,h3/db?target_session_attrs=read-write&sslmode=disable",
    )
    .unwrap();
    assert_eq!(
        t.hosts,
        vec![
            ("h1".to_string(), 5432),
            ("::1".to_string(), 5433),
            ("h3".to_string(), 5432)
        ]
    );
    assert_eq!(t.session_attrs, SessionAttrs::ReadWrite);
    assert_eq!(
        t.redacted,
        "postgres://u:***@h1:5432,[::1]:5433,h3/db?target_session_attrs=read-write&sslmode=disable"
    );
    let urls: Vec<String> = t.secret_urls().into_iter().map(|(_, u)| u).collect();
    assert_eq!(
        urls,
        [
            "postgres://u:pw@h1:5432/db",
            "postgres://u:pw@[::1]:5433/db",
            "postgres://u:pw@h3:5432/db"
        ]
    );
    let t = Target::parse("postgresql://u@a:1,b:2/db?target_session_attrs=primary").unwrap();
    assert_eq!(t.session_attrs, SessionAttrs::Primary);
    assert_eq!((t.host.as_deref(), t.port), (Some("a"), Some(1)));
    assert_eq!(
        Target::parse("postgres://u@a/db").unwrap().session_attrs,
        SessionAttrs::Any
    );
    for bad in [
        "postgres://u@a:1,b:x/db",
        "postgres://u@a:1,,b/db",
        "postgres://u@a/db?target_session_attrs=standby",
        "postgres://u@a/db?target_session_attrs=bogus",
        "mysql://u@a:1,b:2/db",
    ] {
        let e = Target::parse(bad).err().unwrap();
        assert!(e.is_config(), "{bad}: {e}");
    }
}

#[test]
fn search_path_in_options() {
    let t = Target::parse("postgres://u@h/db?options=-csearch_path%3Dapp").unwrap();
    assert_eq!(t.search_path.as_deref(), Some("app"));
    assert_eq!(t.secret_url(), "postgres://u@h/db");
    let t = Target::parse(
        "postgres://u@h/db?options=-c%20search_path%3Dapp,public%20-c%20work_mem%3D8MB",
    )
    .unwrap();
    assert_eq!(t.search_path.as_deref(), Some("app,public"));
    assert_eq!(
        t.secret_url(),
        "postgres://u@h/db?options=-c+work_mem%3D8MB"
    );
    assert_eq!(
        Target::parse("postgres://u@h/db").unwrap().search_path,
        None
    );
    assert!(Target::parse("postgres://u@h/db?options=-csearch_path%3D").is_err());
}

#[test]
fn schemes_and_redaction() {
    let t = Target::parse("mariadb://root:s3cret@127.0.0.1:3306/app").unwrap();
    assert_eq!(t.dialect, Dialect::Mysql);
    assert!(!t.redacted.contains("s3cret"));
    assert_eq!(t.database, "app");
    assert!(t.secret_url().starts_with("mysql://"));
    assert!(Target::parse("oracle://x/y").is_err());
    assert!(Target::parse("nonsense").is_err());
    let s = Target::parse("sqlite:///tmp/a.db").unwrap();
    assert_eq!(s.sqlite_path.unwrap(), PathBuf::from("/tmp/a.db"));
    assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    assert_eq!(
        redact("cannot connect to mysql://root:***@h:3306/db: denied for 'root'@'h' (x)"),
        "cannot connect to mysql://root:***@h:3306/db: denied for 'root'@'h' (x)"
    );
    assert_eq!(
        redact("--database-url=mysql://a:b@c/d"),
        "--database-url=mysql://a:***@c/d"
    );
    assert_eq!(
        redact("postgres://u:pw@h/db?options=a@b&password=xyz"),
        "postgres://u:***@h/db?options=a@b&password=***"
    );
    assert_eq!(redact_url("mysql://u:pa ss@w@h/db"), "mysql://u:***@h/db");
    assert_eq!(redact_url("mysql://u:pa/ss@w@h/db"), "mysql://***@h/db");
    assert_eq!(encode_component("ab%41c d/é"), "ab%2541c%20d%2F%C3%A9");
    assert_eq!(
        percent_decode("ab%2541c%20d%2F%C3%A9%zz%4"),
        "ab%41c d/é%zz%4"
    );
    let t = Target::parse("mysql://u@h:3306/a%20b/").unwrap();
    assert_eq!(
        (t.database.as_str(), t.secret_url()),
        ("a b", "mysql://u@h:3306/a%20b")
    );
    assert!(Target::parse("mysql://u@h:3306//db").is_err());
    assert!(Target::parse("mysql://u@h:3306/db/x").is_err());
}
