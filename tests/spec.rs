//! The checked-in reference in spec/ must match what the code renders.

use std::path::Path;

#[test]
fn spec_files_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec");
    let stale = c2c_server::spec::stale(&dir);
    assert!(
        stale.is_empty(),
        "spec/{} out of date: run `{}` and commit the result",
        stale.join(", spec/"),
        c2c_server::spec::REGENERATE
    );
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
