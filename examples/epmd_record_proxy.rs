//! A recording TCP proxy for capturing EPMD fixtures (see `crates/beamlink-proto/fixtures/epmd/README.md` and
//! `scripts/capture_epmd_fixtures.sh`).
//!
//! `epmd_record_proxy LISTEN_PORT UPSTREAM_PORT OUT_DIR` accepts on 127.0.0.1:LISTEN_PORT,
//! forwards each connection to 127.0.0.1:UPSTREAM_PORT and, when the connection ends, writes
//! what the client sent to `OUT_DIR/NNN_<code>_req.bin` and what EPMD answered to
//! `OUT_DIR/NNN_<code>_resp.bin` (NNN = connection number, `<code>` = the request code as a
//! letter, e.g. `x` for ALIVE2_REQ).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

fn copy_recording(mut from: TcpStream, mut to: TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    // Pass the half-close on, so EPMD sees EOF exactly when the client closes.
    let _ = to.shutdown(Shutdown::Write);
    seen
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: epmd_record_proxy LISTEN_PORT UPSTREAM_PORT OUT_DIR");
        std::process::exit(64);
    }
    let upstream: u16 = args[2].parse().expect("UPSTREAM_PORT");
    let out = PathBuf::from(&args[3]);
    std::fs::create_dir_all(&out).expect("OUT_DIR");
    let listener = TcpListener::bind(("127.0.0.1", args[1].parse::<u16>().expect("LISTEN_PORT")))
        .expect("bind");
    let counter = AtomicUsize::new(0);
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let seq = counter.fetch_add(1, Ordering::SeqCst);
        let out = out.clone();
        thread::spawn(move || {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let answers = thread::spawn(move || copy_recording(s2, c2));
            let request = copy_recording(client, server);
            let response = answers.join().unwrap_or_default();
            let code = request.get(2).map_or('_', |&c| c as char);
            let code = if code.is_ascii_alphanumeric() {
                code
            } else {
                '_'
            };
            std::fs::write(out.join(format!("{seq:03}_{code}_req.bin")), &request).unwrap();
            std::fs::write(out.join(format!("{seq:03}_{code}_resp.bin")), &response).unwrap();
        });
    }
}
