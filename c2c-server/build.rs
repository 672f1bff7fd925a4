//! Lays out the binary's code so that a server's resident memory stays small. Most of a stdio
//! server's memory is its own code, and the kernel maps a binary's code in windows of 64 KB
//! around each page a process runs: the 1.5 MB of functions a server runs lie scattered over
//! about 6 MB of the 10 MB of code (the hub, the page and the command line are the rest), so
//! nearly all of those 6 MB end up resident. On Linux the linker script `link/hot.ld` (made by
//! `bench/hot-layout`) puts those functions in one block at the start of the code instead.
//! It names most functions without their hashes, so it goes on matching after other builds
//! and other compilers, only less well as the code changes; the instances of generic functions
//! that ran are named in full too, which matches only a release build by the toolchain that
//! made the script. Elsewhere the code keeps the linker's order: macOS's and Windows' linkers
//! take exact symbol names only.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/hot.ld");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    // GNU ld and LLD (Rust's default linker on Linux since 1.90) take a script that adds an
    // output section to their own layout; mold and wild do not.
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let script = format!("{}/link/hot.ld", env!("CARGO_MANIFEST_DIR"));
    let why_not = if ["mold", "wild", "linker-flavor"]
        .iter()
        .any(|other| rustflags.contains(other))
    {
        Some("another linker is configured")
    } else if script.contains(',') {
        // The linker driver splits -Wl arguments at commas.
        Some("the source's path has a comma")
    } else {
        None
    };
    match why_not {
        Some(why) => println!(
            "cargo:warning=claude-c2c: {why}, so the code keeps its default layout (a \
             server's resident memory is then about 3 MB more)"
        ),
        None => println!("cargo:rustc-link-arg-bin=claude-c2c=-Wl,-T,{script}"),
    }
}
