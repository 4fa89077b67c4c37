//! Library mode: `backfill init` makes a crate of the app's own that depends on this checkout; its
//! binary runs `new` and names itself in `--version` and its help, and its own `cargo test`
//! exercises a migration written there on every dialect. The same CARGO_TARGET_DIR as this suite,
//! so dependencies are reused.

mod common;

use common::{bin, suite, Run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temp folder of this test's, removed even when the test fails.
struct Folder(PathBuf);

impl Folder {
    fn new(test: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!(
            "backfill-library-{}{test}-{}",
            suite(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        Folder(dir)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn init(args: &[&str], dir: &Path) -> Run {
    Run::from(
        bin()
            .current_dir(dir)
            .arg("init")
            .args(args)
            .output()
            .expect("run backfill init"),
    )
}

#[test]
fn init_refuses_a_folder_that_is_not_empty_and_a_name_cargo_refuses() {
    let tmp = Folder::new("refuses");
    std::fs::create_dir_all(tmp.0.join("busy")).expect("mkdir");
    std::fs::write(tmp.0.join("busy/notes.txt"), "mine").expect("write");
    let line = init(&["busy"], &tmp.0).one_line_error(2).to_string();
    assert!(line.contains("busy is not empty"), "{line}");
    assert_eq!(
        std::fs::read_dir(tmp.0.join("busy")).expect("list").count(),
        1,
        "nothing written"
    );
    let line = init(&["9lives"], &tmp.0).one_line_error(2).to_string();
    assert!(line.contains("cannot name a crate"), "{line}");
    let line = init(&["app", "--backfill-path", "/nonexistent"], &tmp.0)
        .one_line_error(2)
        .to_string();
    assert!(line.contains("not a backfill checkout"), "{line}");
    assert!(!tmp.0.join("9lives").exists() && !tmp.0.join("app").exists());
}

#[test]
fn init_writes_the_dependency_it_is_given() {
    let tmp = Folder::new("deps");
    let git = "https://example.com/backfill.git";
    init(
        &["from-git", "--backfill-git", git, "--rev", "v0.1.0"],
        &tmp.0,
    )
    .expect(0);
    let toml = std::fs::read_to_string(tmp.0.join("from-git/Cargo.toml")).expect("Cargo.toml");
    let spec = format!("git = \"{git}\", rev = \"v0.1.0\"");
    let lib = format!("backfill = {{ {spec}, default-features = false }}");
    assert!(toml.contains(&lib), "{toml}");
    assert!(
        toml.contains(&format!("backfill-build = {{ {spec} }}")),
        "{toml}"
    );
    init(&["from-registry"], &tmp.0).expect(0);
    let toml = std::fs::read_to_string(tmp.0.join("from-registry/Cargo.toml")).expect("toml");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        toml.contains(&format!(
            "backfill = {{ version = \"{version}\", default-features = false }}"
        )),
        "{toml}"
    );
    let main = std::fs::read_to_string(tmp.0.join("from-registry/src/main.rs")).expect("main");
    assert!(
        main.contains("backfill::cli::main(from_registry::catalog())"),
        "{main}"
    );
}

/// This suite's target folder: the init'd crate builds there, reusing the compiled dependencies.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .to_path_buf()
}

fn cargo(dir: &Path, args: &[&str]) -> Run {
    let run = Run::from(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(args)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target_dir())
            .env_remove("DATABASE_URL")
            .output()
            .expect("run cargo"),
    );
    assert_eq!(
        run.code, 0,
        "cargo {args:?}\n{}\n{}",
        run.stdout, run.stderr
    );
    run
}

/// The scaffold as written, made to lowercase e-mails that are not lowercase yet.
fn write_update(crate_dir: &Path) -> PathBuf {
    let dir = crate_dir.join("data_migrations");
    let file = std::fs::read_dir(&dir)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "rs"))
        .expect("new wrote a migration");
    let text = std::fs::read_to_string(&file).expect("read");
    // Only rows whose bytes change are written (a case-only change counts on MariaDB too).
    let text = text.replace("&[\"t.email\"]", "&[\"LOWER(t.email)\"]");
    assert!(text.contains("LOWER(t.email)"), "{text}");
    std::fs::write(&file, text).expect("write");
    file
}

/// The app's binary holds none of backfill's own migrations (feature `hr-migrations`, which init
/// turns off): not even their checksums, which the registry would have compiled in.
fn carries_only_its_own_migrations(exe: &Path) {
    let bytes = std::fs::read(exe).expect("read the binary");
    let text = String::from_utf8_lossy(&bytes);
    let shipped = backfill::registry::all();
    assert!(
        !shipped.is_empty(),
        "this suite builds backfill with its migrations"
    );
    for m in shipped {
        assert!(
            !text.contains(m.checksum),
            "{} {} is in the app's binary",
            m.version,
            m.name
        );
    }
}

/// The app's binary calls itself by its own name in its help and in a refused argument's line, as
/// does a renamed copy of it (clap's `Usage:` line is argv[0]'s).
fn says_its_own_name(exe: &Path, tmp: &Path) {
    let run =
        |exe: &Path, args: &[&str]| Run::from(Command::new(exe).args(args).output().expect("run"));
    let help = run(exe, &["--help"]);
    help.expect(0);
    assert!(
        help.stdout
            .contains("Usage: shop-backfill [OPTIONS] <COMMAND>"),
        "{}",
        help.stdout
    );
    let apply = run(exe, &["apply", "--help"]);
    apply.expect(0);
    assert!(
        apply.stdout.contains("Usage: shop-backfill apply"),
        "{}",
        apply.stdout
    );
    assert!(
        apply.stdout.contains("see `shop-backfill --help`"),
        "{}",
        apply.stdout
    );
    assert!(
        !apply.stdout.contains("`backfill --help`"),
        "{}",
        apply.stdout
    );
    let line = run(exe, &["apply", "--bogus"])
        .one_line_error(2)
        .to_string();
    assert!(line.ends_with("see `shop-backfill --help`"), "{line}");
    let renamed = tmp.join("talent-bf");
    std::fs::copy(exe, &renamed).expect("copy the binary");
    let line = run(&renamed, &["apply", "--bogus"])
        .one_line_error(2)
        .to_string();
    assert!(line.ends_with("see `talent-bf --help`"), "{line}");
}

#[test]
fn an_init_crate_runs_new_names_itself_and_tests_its_migration_on_every_dialect() {
    let started = std::time::Instant::now();
    let tmp = Folder::new("crate");
    let checkout = env!("CARGO_MANIFEST_DIR");
    init(&["shop-backfill", "--backfill-path", checkout], &tmp.0).expect(0);
    let app = tmp.0.join("shop-backfill");
    let new = cargo(&app, &["run", "-q", "--", "new", "lowercase_emails"]);
    assert!(
        new.stdout.contains("__lowercase_emails.rs"),
        "{}",
        new.stdout
    );
    let file = write_update(&app);
    let exe = target_dir().join("debug/shop-backfill");
    cargo(&app, &["build", "-q"]);
    let version = Run::from(Command::new(&exe).arg("--version").output().expect("run"));
    version.expect(0);
    let source = std::fs::read_to_string(&file).expect("read");
    let sum = backfill::registry::checksum::checksum(&source);
    let lines: Vec<&str> = version.stdout.lines().collect();
    assert_eq!(lines[0], "shop-backfill 0.1.0", "{}", version.stdout);
    let backfill = format!("backfill {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(lines[2].starts_with(&backfill), "{}", version.stdout);
    let stem = file.file_stem().expect("stem").to_string_lossy();
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with(&*stem) && l.ends_with(&sum)),
        "{}",
        version.stdout
    );
    says_its_own_name(&exe, &tmp.0);
    carries_only_its_own_migrations(&exe);
    let tested = cargo(&app, &["test", "-q"]);
    let all = format!("{}{}", tested.stdout, tested.stderr);
    assert!(all.contains("1 passed"), "{all}");
    eprintln!("init to a green cargo test: {:?}", started.elapsed());
}
