use super::*;

fn sql(dialect: Dialect, text: &str) -> Vec<String> {
    split(dialect, text)
        .unwrap()
        .into_iter()
        .map(|p| match p {
            Piece::Sql { text, .. } => text,
            Piece::Copy { head, rows, .. } => format!("{head} +{} rows", rows.len()),
            Piece::Meta { text, .. } => format!("meta {text}"),
        })
        .collect()
}

#[test]
fn pg_dump_quotes_bodies_copy_and_meta_commands() {
    let dump = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc123\n\n\
        SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\
        CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS $_$\nBEGIN\n  NEW.a := ';'; RETURN NEW;\nEND\n$_$;\n\
        /* a /* nested */ comment; */ CREATE TABLE public.t (\n    id bigint NOT NULL, -- the key; not a delimiter\n    \"x;y\" text DEFAULT E'it\\'s;'\n);\n\
        COPY public.t (id, \"x;y\") FROM stdin;\n1\ta;b\n2\t\\N\n\\.\n\n\
        ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n\
        CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\n\
        SELECT $1::int\n\n\\unrestrict abc123\n";
    let got = sql(Dialect::Postgres, dump);
    assert_eq!(got.len(), 10, "{got:#?}");
    assert_eq!(got[0], "meta \\restrict abc123");
    assert_eq!(got[1], "SET statement_timeout = 0");
    assert!(
        got[3].ends_with("NEW.a := ';'; RETURN NEW;\nEND\n$_$"),
        "{}",
        got[3]
    );
    assert!(got[4].starts_with("CREATE TABLE public.t") && got[4].contains("E'it\\'s;'"));
    assert!(
        !got[4].contains("the key"),
        "comments are dropped: {}",
        got[4]
    );
    assert_eq!(got[5], "COPY public.t (id, \"x;y\") FROM stdin +2 rows");
    assert!(
        got[7].ends_with("SELECT CASE WHEN true THEN 2 END; END"),
        "{}",
        got[7]
    );
    assert_eq!(got[8], "meta \\unrestrict abc123");
    assert_eq!(
        got[9], "SELECT $1::int",
        "a meta-command line inside a statement is not SQL"
    );
}

#[test]
fn pg_lines_point_at_each_statements_first_code() {
    let pieces = split(Dialect::Postgres, "-- c\n\nSELECT 1;\n\n  SELECT\n 2;").unwrap();
    let lines: Vec<usize> = pieces
        .iter()
        .map(|p| match p {
            Piece::Sql { line, .. } => *line,
            _ => 0,
        })
        .collect();
    assert_eq!(lines, vec![3, 5]);
}

#[test]
fn mysqldump_conditional_comments_delimiter_and_escapes() {
    let dump = "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n\
        /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\
        # a hash comment; still a comment\n\
        CREATE TABLE `a;b` (`id` int, `s` varchar(9) DEFAULT 'it\\'s;') ENGINE=InnoDB;\n\
        DELIMITER ;;\n\
        /*!50003 CREATE*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; SET NEW.b = 2; END */;;\n\
        DELIMITER ;\n\
        SELECT 1--1;\n\
        INSERT INTO `migrations` VALUES (1,'2014_10_12_000000_create_users_table',1);\n";
    let got = sql(Dialect::Mysql, dump);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert!(got[0].starts_with("/*M!999999") && got[0].ends_with("@@CHARACTER_SET_CLIENT */"));
    assert!(got[1].starts_with("CREATE TABLE `a;b`") && got[1].ends_with("ENGINE=InnoDB"));
    assert!(
        got[2].starts_with("/*!50003 CREATE*/") && got[2].ends_with("END */"),
        "{}",
        got[2]
    );
    assert_eq!(got[3], "SELECT 1--1");
    assert!(got[4].starts_with("INSERT INTO `migrations`"));
}

#[test]
fn sqlite_trigger_bodies_and_internal_tables() {
    let schema = "CREATE TABLE IF NOT EXISTS \"migrations\" (\"id\" integer primary key autoincrement not null);\n\
        CREATE TABLE sqlite_sequence(name,seq);\n\
        CREATE TABLE [odd;name] (x);\n\
        CREATE TRIGGER t AFTER INSERT ON migrations BEGIN\n  INSERT INTO log VALUES (CASE WHEN NEW.id > 1 THEN 'a;' END);\n  DELETE FROM log;\nEND;\n\
        INSERT INTO migrations VALUES(1,'x',1);\n";
    let got = sql(Dialect::Sqlite, schema);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert!(got[3].starts_with("CREATE TRIGGER") && got[3].ends_with("DELETE FROM log;\nEND"));
}

#[test]
fn what_never_closes_is_named_with_its_line() {
    let quote = split(Dialect::Postgres, "SELECT 1;\nSELECT 'open;\n").unwrap_err();
    assert_eq!(quote.0, 2, "{quote:?}");
    assert!(quote.1.contains("quote ' opened here never closes"));
    let copy = split(Dialect::Postgres, "\nCOPY t FROM stdin;\n1\n").unwrap_err();
    assert_eq!(copy.0, 2);
    assert!(copy.1.contains("\\."), "{copy:?}");
    let dollar = split(Dialect::Postgres, "DO $x$ BEGIN").unwrap_err();
    assert!(dollar.1.contains("$x$"), "{dollar:?}");
    let comment = split(Dialect::Mysql, "SELECT 1 /* open").unwrap_err();
    assert!(comment.1.contains("/*"), "{comment:?}");
}
