# shellcheck shell=bash
# Shared definitions for scripts/setup, scripts/otp-run and scripts/build-fixture (sourced).
#
# Cache layout (outside the repository; default /var/cache/beamlink, env BEAMLINK_CACHE):
#   chroot-27/, chroot-29/           debootstrap'ed Debian trees (trixie, sid) with erlang-base + elixir
#   chroot-<rel>/.beamlink-ready     written last by scripts/setup: a tree without it is rebuilt
#   labyrinth-<rel>/                 fixture release built by scripts/build-fixture for that release
#   logs/                            build logs
#   *.lock                           flock(1) files serialising builds and mounts
#
# A chroot has bind mounts inside it while anything has used it (see chroot_mount). Never
# `rm -rf` a chroot by hand: `scripts/setup --purge` unmounts first, then deletes.

BEAMLINK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
BEAMLINK_CACHE="${BEAMLINK_CACHE:-/var/cache/beamlink}"
BEAMLINK_MIRROR="${BEAMLINK_MIRROR:-http://deb.debian.org/debian}"
BEAMLINK_RELEASES="25 27 29"
# Packages put into each chroot; recommends are never installed.
BEAMLINK_CHROOT_PACKAGES="erlang-base,elixir"

bl_log() { printf '[%s] %s\n' "${BL_TAG:-beamlink}" "$*" >&2; }
bl_die() { bl_log "error: $*"; exit 1; }
bl_now() { date +%s.%N; }
bl_since() { printf '%.1f' "$(echo "$(bl_now) - $1" | bc)"; }

# Debian suite that provides a release's OTP (25 is the host itself).
bl_suite() {
  case "$1" in
    27) echo "${BEAMLINK_SUITE_27:-trixie}" ;;
    29) echo "${BEAMLINK_SUITE_29:-sid}" ;;
    *) return 1 ;;
  esac
}

bl_check_release() {
  case "$1" in
    25 | 27 | 29) ;;
    *) bl_die "unknown OTP release '$1' (expected one of: $BEAMLINK_RELEASES)" ;;
  esac
}

bl_chroot_dir() { echo "$BEAMLINK_CACHE/chroot-$1"; }
bl_ready_file() { echo "$(bl_chroot_dir "$1")/.beamlink-ready"; }
bl_fixture_dir() { echo "$BEAMLINK_CACHE/labyrinth-$1"; }

# The recipe a ready marker must match; a change (other suite or package list) forces a rebuild.
bl_chroot_recipe() { echo "suite=$(bl_suite "$1") packages=$BEAMLINK_CHROOT_PACKAGES"; }

bl_chroot_ready() {
  local marker
  marker="$(bl_ready_file "$1")"
  [ -f "$marker" ] && [ "$(head -n1 "$marker")" = "$(bl_chroot_recipe "$1")" ]
}

# The cache holds bind mounts of /tmp and the repository: it must not live inside either,
# or those trees would contain themselves.
bl_check_cache_location() {
  local cache
  case "$BEAMLINK_CACHE" in /*) ;; *) bl_die "BEAMLINK_CACHE must be an absolute path (got '$BEAMLINK_CACHE')" ;; esac
  cache="$(realpath -m "$BEAMLINK_CACHE")"
  case "$cache/" in
    /tmp/* | "$BEAMLINK_ROOT"/*) bl_die "BEAMLINK_CACHE=$cache must be outside /tmp and the repository" ;;
  esac
}

# Mount points at or below $1, deepest first (from /proc/self/mountinfo; octal escapes decoded).
bl_mounts_below() {
  local base="$1"
  awk -v base="$base" '{
      p = $5
      while (match(p, /\\[0-7][0-7][0-7]/)) {
        c = sprintf("%c", substr(p, RSTART + 1, 1) * 64 + substr(p, RSTART + 2, 1) * 8 + substr(p, RSTART + 3, 1))
        p = substr(p, 1, RSTART - 1) c substr(p, RSTART + 4)
      }
      if (p == base || index(p, base "/") == 1) print length(p) "\t" p
    }' /proc/self/mountinfo | sort -rn | cut -f2-
}

# Unmount everything below a chroot (deepest first); fail if anything stays mounted.
bl_chroot_umount() {
  local dir m left
  dir="$(bl_chroot_dir "$1")"
  [ -d "$dir" ] || return 0
  while IFS= read -r m; do
    [ -n "$m" ] || continue
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done < <(bl_mounts_below "$dir")
  left="$(bl_mounts_below "$dir")"
  [ -z "$left" ] || bl_die "still mounted below $dir: $left"
}

# Delete a chroot tree, only after every mount below it is gone (a bind of /tmp or of the
# repository must never be followed by rm).
bl_chroot_remove() {
  local dir
  dir="$(bl_chroot_dir "$1")"
  bl_chroot_umount "$1"
  [ -z "$(bl_mounts_below "$dir")" ] || bl_die "refusing to delete $dir: mounts remain"
  rm -rf --one-file-system "$dir"
}

# Same file (device and inode) seen at both paths, following symlinks.
bl_same_file() {
  [ -e "$1" ] && [ -e "$2" ] && [ "$(stat -L -c '%d:%i' "$1")" = "$(stat -L -c '%d:%i' "$2")" ]
}

# Bind-mount host path $2 at chroot path $1 (same absolute path inside), private so that
# nothing propagates back to the host. A mount already at the target is not the source (the
# callers check that first): typically the bind of an earlier clone at the same path that has
# since been deleted. Mounting over a deleted directory fails with ENOENT, so it goes first.
bl_bind() {
  local target="$1" source="$2"
  while mountpoint -q "$target" 2>/dev/null; do umount -l "$target" || return 1; done
  if [ -d "$source" ]; then mkdir -p "$target"; else [ -e "$target" ] || : >"$target"; fi
  mount --bind "$source" "$target"
  mount --make-private "$target"
}

# What a chroot needs to run BEAM programs the way the host does:
#   proc, sys, dev, dev/pts (run_erl, i.e. `bin/labyrinth daemon`, needs a pty),
#   /tmp and the repository root at the same absolute paths,
#   the release's fixture directory at the same path (scripts/build-fixture output),
#   /etc/resolv.conf and /etc/hosts as the caller sees them (so `ip netns exec`'s
#   /etc/netns/<ns>/ overrides reach the chroot).
# Idempotent and cheap when everything is in place; serialised by a lock when not.
# Under `ip netns exec` the mounts made here live in that command's private mount namespace.
bl_chroot_mount() {
  local rel="$1" dir
  dir="$(bl_chroot_dir "$rel")"
  bl_chroot_mounts_complete "$rel" && return 0
  mkdir -p "$BEAMLINK_CACHE"
  (
    flock 9
    bl_chroot_mounts_complete "$rel" && exit 0
    mountpoint -q "$dir/proc" || { mkdir -p "$dir/proc" && mount -t proc proc "$dir/proc"; }
    mountpoint -q "$dir/sys" || { mkdir -p "$dir/sys" && mount -t sysfs sysfs "$dir/sys" && mount --make-private "$dir/sys"; }
    mountpoint -q "$dir/dev" || bl_bind "$dir/dev" /dev
    mountpoint -q "$dir/dev/pts" || bl_bind "$dir/dev/pts" /dev/pts
    bl_same_file "$dir/tmp" /tmp || bl_bind "$dir/tmp" /tmp
    bl_same_file "$dir$BEAMLINK_ROOT" "$BEAMLINK_ROOT" || bl_bind "$dir$BEAMLINK_ROOT" "$BEAMLINK_ROOT"
    local fixture
    fixture="$(bl_fixture_dir "$rel")"
    mkdir -p "$fixture"
    bl_same_file "$dir$fixture" "$fixture" || bl_bind "$dir$fixture" "$fixture"
    local f
    for f in /etc/resolv.conf /etc/hosts; do
      [ -e "$f" ] || continue
      bl_same_file "$dir$f" "$f" || bl_bind "$dir$f" "$(realpath "$f")"
    done
  ) 9>"$BEAMLINK_CACHE/chroot-$rel.mount.lock"
}

bl_chroot_mounts_complete() {
  local rel="$1" dir f
  dir="$(bl_chroot_dir "$rel")"
  mountpoint -q "$dir/proc" && mountpoint -q "$dir/sys" && mountpoint -q "$dir/dev" &&
    mountpoint -q "$dir/dev/pts" && bl_same_file "$dir/tmp" /tmp &&
    bl_same_file "$dir$BEAMLINK_ROOT" "$BEAMLINK_ROOT" &&
    bl_same_file "$dir$(bl_fixture_dir "$rel")" "$(bl_fixture_dir "$rel")" || return 1
  for f in /etc/resolv.conf /etc/hosts; do
    [ -e "$f" ] || continue
    bl_same_file "$dir$f" "$f" || return 1
  done
}
