//! The `beamlink` binary; everything lives in the library (the crate's private `cli` module).

fn main() -> std::process::ExitCode {
    beamlink::cli_main()
}
