#!/usr/bin/env bash
# Installs what corral's lab, tests, book and quickstart need on a Debian 12 machine, and makes sure
# a Docker engine answers. Idempotent: installs only missing packages, starts dockerd only if
# no engine answers, and leaves a running engine alone.
#
# Run as root (or as a user with sudo). dockerd started here logs to /var/log/dockerd.log.
# `--book` also installs mdbook, for the manual under docs/.
set -euo pipefail

# curl and python3: the unit tests run the swarm join script with the real Engine API clients.
packages=(docker.io debootstrap openssh-client hyperfine curl python3)
docker_wait_seconds=${CORRAL_DOCKER_WAIT_SECONDS:-60}
dockerd_log=/var/log/dockerd.log

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    die "run as root (or install sudo): installing packages and starting dockerd need root"
fi

# Debian's docker.io puts its client at /usr/bin/docker; another client may come first on PATH.
docker_cli() {
    if [[ -x /usr/bin/docker ]]; then /usr/bin/docker "$@"; else docker "$@"; fi
}

engine_answers() { docker_cli info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    log "packages present: ${packages[*]}"
fi

# With --book: mdbook, which builds the manual (docs/, in scripts/test.sh). It is no Debian
# package, so cargo builds it from crates.io, once: about 2.5 CPU-minutes, the HTML
# renderer only (no live-reload server). The quick start does without it.
mdbook_version=0.5.4
if [[ ${1:-} != --book ]]; then
    :
elif command -v mdbook >/dev/null 2>&1; then
    log "mdbook present ($(mdbook --version))"
else
    command -v cargo >/dev/null 2>&1 || die "cargo is needed to install mdbook"
    log "installing mdbook $mdbook_version with cargo (a few minutes, once)"
    cargo install mdbook --version "$mdbook_version" --locked --no-default-features
fi

# Every lab host's systemd holds a few inotify instances; the kernel's default of 128 per
# user stops a lab at about 25 hosts (they exit without a word). 30 light hosts need more.
inotify_instances=$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)
if ((inotify_instances < 1024)); then
    log "raising fs.inotify.max_user_instances from $inotify_instances to 1024 (lab hosts run systemd)"
    "${as_root[@]}" sysctl -q -w fs.inotify.max_user_instances=1024 ||
        log "warning: could not raise fs.inotify.max_user_instances; labs of more than ~20 hosts may fail"
fi

if engine_answers; then
    log "Docker engine answers ($(docker_cli info --format '{{.ServerVersion}}' 2>/dev/null))"
    exit 0
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    log "dockerd is running but does not answer yet; waiting"
else
    command -v dockerd >/dev/null 2>&1 || [[ -x /usr/sbin/dockerd ]] ||
        die "dockerd not found although docker.io is installed"
    log "starting dockerd in the background (log: $dockerd_log)"
    # setsid + nohup: the engine outlives this script and the shell that ran it.
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    "${as_root[@]}" bash -c 'setsid nohup dockerd >>"$1" 2>&1 </dev/null &' _ "$dockerd_log"
fi

for ((i = 0; i < docker_wait_seconds; i++)); do
    if engine_answers; then
        log "Docker engine answers ($(docker_cli info --format '{{.ServerVersion}}' 2>/dev/null))"
        exit 0
    fi
    sleep 1
done

tail -n 20 "$dockerd_log" >&2 2>/dev/null || true
die "no Docker engine answered within ${docker_wait_seconds}s; see $dockerd_log"
