//! The `beamlink` binary; everything lives in the library (`beamlink::cli`).

fn main() -> std::process::ExitCode {
    beamlink::cli::main()
}
