//! The checked-in reference in spec/, and the README's tools table, must match what the code
//! renders.

use std::path::Path;

#[test]
fn spec_files_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec");
    let stale = c2c_server::spec::stale(&dir);
    assert!(
        stale.is_empty(),
        "{stale:?} out of date: run `{}` and commit the result",
        c2c_server::spec::REGENERATE
    );
}

#[test]
fn readme_lists_every_tool() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let begin = readme
        .find(c2c_server::spec::README_BEGIN)
        .expect("the README has a generated tools table");
    for tool in <c2c_server::tools::Tools as c2c_server::registry::ToolSet>::TOOLS {
        assert!(
            readme[begin..].contains(&format!("| `{}(", tool.name)),
            "the README's tools table lacks {}",
            tool.name
        );
    }
}

#[test]
fn tool_reference_documents_every_tool_and_argument() {
    let md =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/tools.md"))
            .unwrap();
    for tool in <c2c_server::tools::Tools as c2c_server::registry::ToolSet>::TOOLS {
        assert!(
            md.contains(&format!("\n## {}\n", tool.name)),
            "no section for {}",
            tool.name
        );
        for arg in tool.args {
            assert!(
                md.contains(&format!("| `{}` |", arg.name)),
                "{}.{} undocumented",
                tool.name,
                arg.name
            );
        }
    }
}
