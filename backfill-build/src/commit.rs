//! The commit a crate is built from, for `--version`: a deploy checks it runs the build it reviewed.

use std::path::Path;
use std::process::Command;

/// The short commit of the git checkout holding `dir` (`-dirty` with uncommitted changes); for a
/// packaged crate, the commit cargo recorded in `.cargo_vcs_info.json`; `None` when neither says.
/// Tells cargo to run the build script again when the checkout moves.
pub fn commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return packaged(dir);
    };
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for file in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={git_dir}/{file}");
        }
    }
    let clean = Command::new("git")
        .args(["diff", "--quiet", "HEAD", "--"])
        .current_dir(dir)
        .status()
        .is_ok_and(|s| s.success());
    Some(if clean { head } else { format!("{head}-dirty") })
}

/// `"sha1": "…"` in the `.cargo_vcs_info.json` that `cargo package` writes.
fn packaged(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let after = text.split("\"sha1\"").nth(1)?;
    let sha: String = after
        .chars()
        .skip_while(|c| !c.is_ascii_hexdigit())
        .take_while(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    (sha.len() == 12).then_some(sha)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_packaged_crate_names_the_commit_cargo_recorded() {
        let dir = std::env::temp_dir().join(format!("backfill-build-vcs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let json =
            r#"{"git": {"sha1": "0123456789abcdef0123456789abcdef01234567"}, "path_in_vcs": ""}"#;
        std::fs::write(dir.join(".cargo_vcs_info.json"), json).expect("write");
        let sha = super::packaged(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(sha.as_deref(), Some("0123456789ab"));
    }
}
