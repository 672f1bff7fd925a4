//! The `claude-c2c` binary: see [`c2c_server::cli`].

fn main() -> std::process::ExitCode {
    c2c_server::cli::main()
}
