#!/bin/bash
# Builds the corral lab host image (TESTBED.md §2, "systemd as PID 1"): Debian bookworm with
# systemd, sshd, Docker and glusterd, bootstrapped from the Debian mirror apt already uses,
# because no image registry is reachable. `corral lab up` runs this script (embedded in the
# binary) as root and tags the result with a digest of this file, so editing it rebuilds the
# image on the next `lab up` and leaving it alone reuses the cached one.
#
# usage: build-image.sh WORKDIR MIRROR TAG DOCKER LOCKFILE
#   WORKDIR   an empty scratch directory; the root file system is built in WORKDIR/rootfs
#             and removed again (after unmounting anything below it) however the script ends
#   MIRROR    Debian mirror URL, e.g. the first non-security URI of apt's sources
#   TAG       image tag to import as
#   DOCKER    docker client to use
#   LOCKFILE  serializes concurrent builds; a build that waited finds the image and stops
set -euo pipefail
# One stream: `corral lab up` logs it and echoes the "==>" steps.
exec 2>&1

if [[ $# -ne 5 ]]; then
    echo "usage: $0 WORKDIR MIRROR TAG DOCKER LOCKFILE" >&2
    exit 2
fi
workdir=$1 mirror=$2 tag=$3 docker=$4 lock=$5
suite=bookworm
rootfs=$workdir/rootfs

# rm -rf below must never see "/" or a top-level directory.
case $workdir in
/?*/?*) ;;
*)
    echo "refusing to build in '$workdir': not an absolute path at least two levels deep" >&2
    exit 2
    ;;
esac

step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }

mounts_below_rootfs() {
    awk -v r="$rootfs/" 'index($2 "/", r) == 1 { print $2 }' /proc/mounts | sort -r
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP PIPE
    if [[ -d $rootfs ]]; then
        # proc (ours) and proc/sys (debootstrap's, if it was interrupted), deepest first.
        local m
        for m in $(mounts_below_rootfs); do
            umount "$m" 2>/dev/null || umount -l "$m" || true
        done
        if [[ -n $(mounts_below_rootfs) ]]; then
            echo "still mounted below $rootfs, not removing it:" >&2
            mounts_below_rootfs >&2
            [[ $status -ne 0 ]] || status=1
        else
            # --one-file-system: never descend into anything mounted below rootfs.
            rm -rf --one-file-system "$rootfs"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
# Exit through cleanup on signals too, including SIGPIPE when `corral lab up` went away.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# Two `lab up` runs (e.g. parallel end-to-end tests) build the image once.
exec 9>>"$lock"
if ! flock -w 3600 9; then
    echo "timed out waiting for $lock (another image build holds it)" >&2
    exit 1
fi
if "$docker" image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag was built by another run meanwhile"
    exit 0
fi

step "debootstrap $suite (minbase) from $mirror"
debootstrap --variant=minbase --include=openssh-server,iproute2,procps,sudo,python3 \
    "$suite" "$rootfs" "$mirror"

in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive chroot "$rootfs" "$@"
}

# Name resolution for apt in the chroot; Docker mounts its own resolv.conf over it later.
cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"
# No service may start inside the chroot while packages are installed.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"

step "install packages"
in_root apt-get update -q
in_root apt-get install -y -q --no-install-recommends \
    systemd systemd-sysv dbus docker.io glusterfs-server nftables ufw iptables kmod \
    ca-certificates busybox-static
in_root apt-get clean

# Tests install and remove `tree` on lab hosts without any network: keep its .deb in apt's
# cache (no `apt-get clean` after this) and keep the package lists.
step "cache tree's .deb for offline installs"
in_root apt-get install -y -q --download-only tree
ls "$rootfs"/var/cache/apt/archives/tree_*.deb

step "configure the host"
# Every host makes its own SSH host keys and machine ID at first boot rather than sharing the
# ones the packages' maintainer scripts made in the chroot; glusterd its own UUID likewise.
rm -f "$rootfs"/etc/ssh/ssh_host_*
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id" # systemd would copy it into an empty /etc/machine-id
rm -f "$rootfs/var/lib/glusterd/glusterd.info"
install -d -m 700 "$rootfs/root/.ssh"

cat >"$rootfs/etc/systemd/system/corral-ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Generate this host's SSH host keys (corral lab)
Before=ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
UNIT

# No registry is reachable from the hosts either: Swarm service tests run local/busybox:1,
# imported on every host from busybox-static (TESTBED.md §4).
cat >"$rootfs/usr/local/sbin/corral-import-busybox" <<'SCRIPT'
#!/bin/bash
set -euo pipefail
image=local/busybox:1
if docker image inspect "$image" >/dev/null 2>&1; then exit 0; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/tmp"
chmod 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
for applet in $(/bin/busybox --list); do
    [[ -e $dir/bin/$applet ]] || ln -s busybox "$dir/bin/$applet"
done
tar -C "$dir" -c . | docker import -c 'CMD ["/bin/sh"]' - "$image"
SCRIPT
chmod 755 "$rootfs/usr/local/sbin/corral-import-busybox"

cat >"$rootfs/etc/systemd/system/corral-busybox-image.service" <<'UNIT'
[Unit]
Description=Import local/busybox:1 into Docker (corral lab)
Requires=docker.service
After=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/corral-import-busybox

[Install]
WantedBy=multi-user.target
UNIT

in_root systemctl enable glusterd ssh docker corral-ssh-host-keys corral-busybox-image

rm -f "$rootfs/usr/sbin/policy-rc.d"
umount "$rootfs/proc"

step "import as $tag"
tar --numeric-owner -C "$rootfs" -c . | "$docker" import -c 'CMD ["/sbin/init"]' - "$tag"
step "done"
