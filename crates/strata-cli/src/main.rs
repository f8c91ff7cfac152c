//! The `strata` binary: everything is in the `strata_cli` library (see its crate docs).

fn main() -> std::process::ExitCode {
    strata_cli::main()
}
