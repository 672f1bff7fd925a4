//! The Python package (pyproject.toml, built by maturin into the wheels that `uvx claude-c2c`
//! installs) must stay the same program at the same version as the Cargo package: one version
//! number for the workspace, the wheel and `--version`. On Linux, the binary any of them
//! builds is laid out by c2c-server/link/hot.ld.

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

/// The names of the sections of the ELF file `elf` (64-bit, little-endian).
#[cfg(target_os = "linux")]
fn elf_sections(elf: &[u8]) -> Vec<String> {
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let (table, entry_size, count, names_index) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| table + i * entry_size;
    let names = u64_at(header(names_index) + 0x18);
    (0..count)
        .map(|i| {
            let start = names
                + u32::from_le_bytes(elf[header(i)..header(i) + 4].try_into().unwrap()) as usize;
            let end = start + elf[start..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8_lossy(&elf[start..end]).into_owned()
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn the_binary_has_the_code_a_server_runs_in_one_block() {
    // build.rs passed the script to the linker, and the linker took it: the section exists,
    // before .text, and holds functions the script names (patterns that matched nothing
    // would leave it empty, which the linker drops).
    let elf = std::fs::read(env!("CARGO_BIN_EXE_claude-c2c")).unwrap();
    let sections = elf_sections(&elf);
    let hot = sections.iter().position(|s| s == ".text.c2c_hot");
    let text = sections.iter().position(|s| s == ".text");
    assert!(
        hot.is_some() && hot < text,
        "no .text.c2c_hot before .text in the binary: was c2c-server/link/hot.ld passed to \
         the linker? sections: {sections:?}"
    );
}
