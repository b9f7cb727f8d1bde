#!/usr/bin/env bash
# Captures crates/beamlink-proto/fixtures/epmd/*.bin: real exchanges between OTP's own tools (erl, epmd -names,
# epmd -kill) and a real epmd, recorded by examples/epmd_record_proxy.rs sitting between them.
# Usage: scripts/capture_epmd_fixtures.sh [OUT_DIR]   (default: crates/beamlink-proto/fixtures/epmd)
# Needs erl and epmd on PATH. Uses free loopback ports, never 4369; kills what it starts by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-crates/beamlink-proto/fixtures/epmd}
raw=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$raw"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
epmd_port=$(free_port); proxy_port=$(free_port)

cargo build -q --example epmd_record_proxy
epmd -port "$epmd_port" & pids+=($!)
target/debug/examples/epmd_record_proxy "$proxy_port" "$epmd_port" "$raw" & pids+=($!)
sleep 0.5
export ERL_EPMD_PORT=$proxy_port
erl_node() { erl -start_epmd false -setcookie fixturecapture -noshell "$@"; }

# A node that stays registered while the others look at it.
erl -start_epmd false -setcookie fixturecapture -noshell -name fixture@127.0.0.1 \
  -kernel inet_dist_listen_min 40123 inet_dist_listen_max 40123 &
fixture_pid=$!; pids+=("$fixture_pid")
sleep 2
# The same name again: epmd refuses it; erl gives up booting.
erl_node -name fixture@127.0.0.1 -eval 'halt()' >/dev/null 2>&1 || true
# A node that registers with distribution version 5 only: ALIVE2_RESP with a 16-bit creation.
ERL_EPMD_DIST_HIGH=5 erl_node -name legacy@127.0.0.1 -eval 'halt()'
# PORT_PLEASE2 for a registered and an unknown name.
erl_node -name probe@127.0.0.1 \
  -eval 'io:format("~p,~p~n",[net_adm:ping(list_to_atom("fixture@127.0.0.1")),net_adm:ping(list_to_atom("nosuch@127.0.0.1"))]), halt()'
# NAMES, as `epmd -names` asks it.
epmd -port "$proxy_port" -names
# KILL while a node is registered: epmd answers NO.
epmd -port "$proxy_port" -kill || true
kill "$fixture_pid"; wait "$fixture_pid" 2>/dev/null || true
sleep 0.5
# NAMES with no node registered.
epmd -port "$proxy_port" -names
sleep 0.5

# pick CODE TEXT: the request file with that code whose bytes contain TEXT.
pick() { grep -l -a -F "$2" "$raw"/*_"$1"_req.bin | head -n1; }
mkdir -p "$out"
save() { cp "$1" "$out/$2"; echo "$out/$2 <- $(basename "$1")"; }
f=$(pick x fixture);   save "$f" alive2_req.bin;          save "${f%_req.bin}_resp.bin" alive2_x_resp.bin
refused=""
for g in "$raw"/*_x_req.bin; do
  [ "$g" != "$f" ] && grep -q -a -F fixture "$g" && { refused=$g; break; }
done
f=$refused
save "${f%_req.bin}_resp.bin" alive2_x_resp_refused.bin
f=$(pick x legacy);    save "$f" alive2_req_v5.bin;       save "${f%_req.bin}_resp.bin" alive2_resp_v5.bin
f=$(pick z fixture);   save "$f" port_please2_req.bin;    save "${f%_req.bin}_resp.bin" port2_resp_found.bin
f=$(pick z nosuch);    save "$f" port_please2_req_unknown.bin; save "${f%_req.bin}_resp.bin" port2_resp_not_found.bin
names=("$raw"/*_n_req.bin)
save "${names[0]}" names_req.bin; save "${names[0]%_req.bin}_resp.bin" names_resp.bin
save "${names[-1]%_req.bin}_resp.bin" names_resp_empty.bin
kills=("$raw"/*_k_req.bin); f=${kills[0]}; save "$f" kill_req.bin; save "${f%_req.bin}_resp.bin" kill_resp_no.bin
echo "OTP $(erl -noshell -eval 'io:format("~s",[erlang:system_info(otp_release)]), halt().') / $(epmd -version 2>/dev/null || true)"
