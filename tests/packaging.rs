//! The Python package (pyproject.toml, built by maturin into the wheels that `uvx claude-c2c`
//! installs) must stay the same program at the same version as the Cargo package: one version
//! number for the workspace, the wheel and `--version`.

use std::path::Path;

/// The `key = value` lines of one `[table]` of pyproject.toml (enough TOML for this file).
fn table(toml: &str, name: &str) -> Vec<(String, String)> {
    let header = format!("[{name}]");
    toml.lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn get<'a>(table: &'a [(String, String)], key: &str) -> Option<&'a str> {
    table
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_wheel_is_the_cargo_package_at_its_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pyproject = std::fs::read_to_string(root.join("pyproject.toml")).unwrap();
    let project = table(&pyproject, "project");
    let maturin = table(&pyproject, "tool.maturin");

    // A version written in pyproject.toml would be a second number to keep in step: maturin
    // takes it from Cargo when it is dynamic.
    assert_eq!(
        get(&project, "version"),
        None,
        "pyproject.toml must not set a version"
    );
    assert_eq!(get(&project, "dynamic"), Some(r#"["version"]"#));
    let quoted = |s: &str| format!("\"{s}\"");
    assert_eq!(
        get(&project, "name"),
        Some(quoted(env!("CARGO_PKG_NAME")).as_str())
    );
    assert_eq!(
        get(&project, "license"),
        Some(quoted(env!("CARGO_PKG_LICENSE")).as_str())
    );
    assert_eq!(get(&maturin, "bindings"), Some(r#""bin""#));
    assert_eq!(
        get(&maturin, "manifest-path"),
        Some(r#""c2c-server/Cargo.toml""#),
        "the wheel must be built from this package"
    );
    assert!(
        root.join("LICENSE").is_file(),
        "the wheel and archives ship LICENSE"
    );
}
