# shellcheck shell=bash
# Network-namespace helpers for swarm tests (source this file; needs root and iproute2).
#
#   BL_NET_BRIDGE  bridge name                         (default blbr0)
#   BL_NET_PREFIX  first three octets of a private /24 (default 10.213.7); the bridge is .1
#   BL_NET_STATE   record of what was created          (default /tmp/beamlink-net-$BL_NET_BRIDGE)
#
#   bl_net_up                       create the bridge with $BL_NET_PREFIX.1/24
#   bl_net_add_ns NS INDEX [SEARCH] namespace NS at $BL_NET_PREFIX.INDEX (2..254): veth pair
#                                   (host end on the bridge, eth0 inside), lo and eth0 up, no
#                                   default route (only the /24 is reachable), and
#                                   /etc/netns/NS/resolv.conf: nameserver = the bridge address,
#                                   optional search list SEARCH
#   bl_net_ip INDEX                 address of namespace INDEX; bl_net_gateway = the bridge's
#   bl_net_down                     delete exactly what bl_net_up / bl_net_add_ns recorded, newest
#                                   first; processes still inside a namespace are listed, not killed
#
# Run programs inside with `ip netns exec NS scripts/otp-run <rel> ...`: the chroots share the
# namespace's network and see /etc/netns/NS/resolv.conf as their /etc/resolv.conf.
# A DNS server for the namespaces listens on the bridge address, e.g. dnsmasq --listen-address.

BL_NET_BRIDGE="${BL_NET_BRIDGE:-blbr0}"
BL_NET_PREFIX="${BL_NET_PREFIX:-10.213.7}"
BL_NET_STATE="${BL_NET_STATE:-/tmp/beamlink-net-$BL_NET_BRIDGE}"

bl_net_gateway() { echo "$BL_NET_PREFIX.1"; }
bl_net_ip() { echo "$BL_NET_PREFIX.$1"; }

_bl_net_record() { echo "$*" >>"$BL_NET_STATE"; }

# A locally administered MAC for the bridge, from the prefix: 02:42:<a>:<b>:<c>:01 in hex.
_bl_net_mac() {
  local a b c
  IFS=. read -r a b c <<<"$BL_NET_PREFIX"
  printf '02:42:%02x:%02x:%02x:01' "$a" "$b" "$c"
}

bl_net_up() {
  if ip link show "$BL_NET_BRIDGE" >/dev/null 2>&1; then
    echo "netns.sh: bridge $BL_NET_BRIDGE already exists (run bl_net_down, or pick another BL_NET_BRIDGE)" >&2
    return 1
  fi
  ip link add "$BL_NET_BRIDGE" type bridge || return 1
  _bl_net_record link "$BL_NET_BRIDGE"
  # Without an explicit MAC a bridge takes the lowest MAC of its ports, so deleting a
  # namespace can change the gateway's MAC and leave stale ARP entries (lost DNS packets).
  ip link set "$BL_NET_BRIDGE" address "$(_bl_net_mac)" &&
    ip addr add "$(bl_net_gateway)/24" dev "$BL_NET_BRIDGE" &&
    ip link set "$BL_NET_BRIDGE" up
}

bl_net_add_ns() {
  local ns="$1" index="$2" search="${3:-}" veth
  case "$index" in '' | *[!0-9]*) echo "netns.sh: bad index '$index'" >&2; return 1 ;; esac
  if [ "$index" -lt 2 ] || [ "$index" -gt 254 ]; then echo "netns.sh: index $index not in 2..254" >&2; return 1; fi
  veth="${BL_NET_BRIDGE}v$index" # IFNAMSIZ: keep bridge names short
  ip netns add "$ns" || return 1
  _bl_net_record netns "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns" || return 1
  _bl_net_record link "$veth"
  ip link set "$veth" master "$BL_NET_BRIDGE" up &&
    ip -n "$ns" link set lo up &&
    ip -n "$ns" addr add "$(bl_net_ip "$index")/24" dev eth0 &&
    ip -n "$ns" link set eth0 up || return 1
  if [ ! -d /etc/netns ]; then
    mkdir /etc/netns
    _bl_net_record dir /etc/netns
  fi
  if [ ! -d "/etc/netns/$ns" ]; then
    mkdir "/etc/netns/$ns"
    _bl_net_record dir "/etc/netns/$ns"
  fi
  {
    echo "nameserver $(bl_net_gateway)"
    [ -z "$search" ] || echo "search $search"
    echo "options timeout:1 attempts:2"
  } >"/etc/netns/$ns/resolv.conf"
  _bl_net_record file "/etc/netns/$ns/resolv.conf"
}

bl_net_down() {
  [ -f "$BL_NET_STATE" ] || return 0
  local kind what pids
  while read -r kind what; do
    case "$kind" in
      netns)
        pids="$(ip netns pids "$what" 2>/dev/null | tr '\n' ' ')"
        [ -z "$pids" ] || echo "netns.sh: processes still in $what: $pids(not killed)" >&2
        ip netns del "$what" 2>/dev/null || true
        ;;
      link) ip link del "$what" 2>/dev/null || true ;;
      file) rm -f "$what" ;;
      dir) rmdir "$what" 2>/dev/null || true ;;
    esac
  done < <(tac "$BL_NET_STATE")
  rm -f "$BL_NET_STATE"
}
