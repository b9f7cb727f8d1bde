//! Code layout of the `beamlink` binary: release builds for x86_64 Linux link with
//! `link/symbol-order-<static|dynamic>.txt`, the functions that run from start-up through a
//! connected idle minute (written by `scripts/symbol-order`), placed next to each other.
//!
//! Why: the kernel maps a whole 64 KiB window of a file mapping around every page fault
//! (fault-around), so code that runs once leaves its neighbours resident. Spread over the
//! text as the compiler leaves it, the 1 MiB of code an idle node runs kept 4.2 MiB of the
//! text resident; packed, 1.4 MiB (docs/performance.md, "Idle RSS: measured tries").
//!
//! The order only applies where the linker is LLD with no override: rustc's default for
//! `x86_64-unknown-linux-gnu` since 1.90. GNU ld does not know `--symbol-ordering-file`, so any
//! other linker setting (`-C linker`, `linker-features`, `-fuse-ld`, a configured linker) or
//! `BEAMLINK_SYMBOL_ORDER=off` links as before. Names the file lists that the build does not
//! have (another compiler, other dependencies) are ignored: the order then helps less, and a
//! warning says so when the file was made with another rustc or `Cargo.lock`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BEAMLINK_SYMBOL_ORDER");
    // Debug builds (the tests) do not depend on the order file: a new one relinks release only.
    if env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Only paths that exist: cargo reruns a build script on every build for a missing one
    // (the published package has neither).
    for path in ["link", "Cargo.lock"] {
        if root.join(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }

    if env::var("BEAMLINK_SYMBOL_ORDER").as_deref() == Ok("off")
        || env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu")
        || env::var_os("RUSTC_LINKER").is_some()
        || linker_overridden()
    {
        return;
    }
    let Some(rustc) = rustc_version() else { return };
    // `rustc 1.95.0 (...)`: LLD is the default linker from 1.90 on.
    let minor = rustc
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1));
    if minor
        .and_then(|m| m.parse::<u32>().ok())
        .is_none_or(|m| m < 90)
    {
        return;
    }
    let flavour = if env::var("CARGO_CFG_TARGET_FEATURE")
        .unwrap_or_default()
        .split(',')
        .any(|f| f == "crt-static")
    {
        "static"
    } else {
        "dynamic"
    };
    let file = root
        .join("link")
        .join(format!("symbol-order-{flavour}.txt"));
    let Ok(text) = std::fs::read_to_string(&file) else {
        return;
    };
    warn_if_stale(&file, &text, &root, &rustc);
    println!(
        "cargo:rustc-link-arg-bin=beamlink=-Wl,--symbol-ordering-file={}",
        file.display()
    );
    // A name missing from this build is expected (the file covers what ran, not what exists).
    println!("cargo:rustc-link-arg-bin=beamlink=-Wl,--no-warn-symbol-ordering");
}

/// True when RUSTFLAGS choose the linker or its flavour, so LLD cannot be assumed.
fn linker_overridden() -> bool {
    env::var("CARGO_ENCODED_RUSTFLAGS")
        .unwrap_or_default()
        .split('\x1f')
        .any(|f| f.contains("linker") || f.contains("link-self-contained") || f.contains("fuse-ld"))
}

/// `rustc -V` of the compiler cargo runs.
fn rustc_version() -> Option<String> {
    let out = Command::new(env::var_os("RUSTC")?)
        .arg("-V")
        .output()
        .ok()?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// The file's header records the rustc and the `Cargo.lock` it was made with; symbol names
/// carry hashes of both, so with others most of its names no longer match.
fn warn_if_stale(file: &Path, text: &str, root: &Path, rustc: &str) {
    let header = |key: &str| {
        text.lines()
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.strip_prefix(key).map(str::trim).map(str::to_owned))
    };
    let lock = std::fs::read(root.join("Cargo.lock"))
        .ok()
        .map(|b| format!("{:016x}", fnv1a(&b)));
    if header("# rustc:").as_deref() != Some(rustc) || header("# Cargo.lock fnv1a:") != lock {
        println!(
            "cargo:warning={} was made with another rustc or Cargo.lock: run scripts/symbol-order to keep the idle RSS low",
            file.display()
        );
    }
}

/// FNV-1a, 64 bits: a fingerprint of `Cargo.lock` that needs no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
