//! `claude-c2c gen-spec`, a developer's command hidden from the user's help: it writes the
//! generated reference (`spec/`) of the source tree it runs in, or checks it. It refuses to
//! write outside a claude-c2c workspace unless told where with `--out`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::Failure;
use crate::spec;

/// The options of `gen-spec`.
#[derive(Debug, Args)]
pub struct GenSpecArgs {
    /// The directory to write into [default: spec, in the workspace root].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Only check that the files are up to date; exit 1 naming any that are stale.
    #[arg(long)]
    check: bool,
}

/// Writes (or with `--check`, checks) the generated files.
pub fn run(args: &GenSpecArgs) -> Result<(), Failure> {
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let here = std::env::current_dir()
                .map_err(|e| format!("cannot find the current directory: {e}"))?;
            if !is_workspace_root(&here) {
                return Err(Failure::Usage(format!(
                    "gen-spec writes the generated reference into spec/ of the claude-c2c \
                     source tree, and {} is not its root: run `{}` there, or give --out DIR",
                    here.display(),
                    spec::REGENERATE
                )));
            }
            here.join("spec")
        }
    };
    if args.check {
        let stale = spec::stale(&out);
        if stale.is_empty() {
            return Ok(());
        }
        return Err(Failure::Failed(format!(
            "{} out of date: run `{}`",
            paths(&stale),
            spec::REGENERATE
        )));
    }
    let written = spec::write(&out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("claude-c2c: wrote {}", paths(&written));
    Ok(())
}

fn paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Whether `dir` is the root of the claude-c2c workspace: a `Cargo.toml` naming the
/// `c2c-server` member, next to the checked-in `spec/tools.json`.
fn is_workspace_root(dir: &Path) -> bool {
    dir.join("spec").join("tools.json").is_file()
        && std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|t| t.contains("c2c-server"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_is_recognised_and_other_directories_are_not() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert!(is_workspace_root(root));
        assert!(!is_workspace_root(&root.join("spec")));
        assert!(!is_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))));
    }
}
