#!/bin/sh
# build-node-image.sh CACHE_DIR: the real kernel, dtb and busybox initrd of the
# emulated Highbank node (QEMU -M highbank), from Debian bookworm armhf packages.
#
# Outputs CACHE_DIR/vmlinuz (zImage), CACHE_DIR/highbank.dtb,
# CACHE_DIR/initrd.cpio.gz and CACHE_DIR/packages.txt (what went in), then
# CACHE_DIR/done holding the recipe stamp. Idempotent: when CACHE_DIR/done
# matches this recipe, it does nothing (no network, no root). Concurrent runs
# on one CACHE_DIR serialise on CACHE_DIR/.lock.
#
# A fresh build needs root the first time only when the armhf architecture is
# not configured yet (dpkg --add-architecture armhf; apt-get update). Packages
# are fetched with `apt-get download` and unpacked with `dpkg -x`: nothing
# armhf is installed. Host tools: apt, dpkg, busybox (cpio), gzip, flock.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
RECIPE_VERSION=1

die() { echo "build-node-image: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 CACHE_DIR"
mkdir -p "$1" || die "cannot create cache dir $1"
CACHE=$(cd "$1" && pwd)

stamp() {
    printf 'rackrun-highbank-image %s\n' "$RECIPE_VERSION"
    cat "$0" "$HERE/initrd-init" "$HERE/udhcpc.script" | sha256sum | cut -d' ' -f1
}
STAMP=$(stamp)
cached() { [ -f "$CACHE/done" ] && [ "$(cat "$CACHE/done")" = "$STAMP" ]; }
cached && exit 0

exec 9>"$CACHE/.lock"
flock 9
cached && exit 0          # built by a concurrent run while we waited

for tool in apt-get apt-cache dpkg dpkg-deb busybox gzip; do
    command -v "$tool" >/dev/null || die "$tool not found (run deploy/install-deps.sh)"
done
busybox cpio --help 2>&1 | grep -q -- '-o' || die "host busybox has no 'cpio -o'"

WORK="$CACHE/work.$$"
trap 'rm -rf "$WORK"' EXIT INT TERM HUP
rm -rf "$WORK"
mkdir -p "$WORK/debs" "$WORK/x" "$WORK/initrd"

# --- armhf package lists (only when missing) --------------------------------------------
if ! dpkg --print-foreign-architectures | grep -qx armhf; then
    [ "$(id -u)" -eq 0 ] || die "armhf is not a dpkg architecture here: run as root once " \
        "(dpkg --add-architecture armhf; apt-get update)"
    echo "build-node-image: dpkg --add-architecture armhf"
    dpkg --add-architecture armhf
fi
if ! apt-cache show busybox-static:armhf >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "no armhf package lists: run 'apt-get update' as root"
    echo "build-node-image: apt-get update (armhf lists)"
    # A failing secondary index (e.g. a mirror mid-sync) is reported but is fatal
    # only when the packages below cannot be found.
    apt-get update -qq || echo "build-node-image: apt-get update reported errors" >&2
    apt-cache show busybox-static:armhf >/dev/null 2>&1 \
        || die "busybox-static:armhf still unknown after apt-get update"
fi

# --- download ---------------------------------------------------------------------------
KPKG=$(apt-cache depends linux-image-armmp:armhf \
       | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-armmp\)\(:armhf\)\{0,1\}$/\1/p' | head -n1)
[ -n "$KPKG" ] || die "cannot resolve linux-image-armmp:armhf to a kernel package"
# ethtool's libraries from its Depends (no ldd for a foreign binary).
LIBPKGS=$(apt-cache depends ethtool:armhf \
          | sed -n 's/^ *Depends: \([a-z0-9][a-z0-9.+-]*\)\(:armhf\)\{0,1\}$/\1/p' | sort -u | tr '\n' ' ')
PKGS="$KPKG busybox-static ethtool $LIBPKGS"
echo "build-node-image: downloading (armhf): $PKGS"
# As root, apt would download as _apt, which cannot write into a private cache dir.
SANDBOX=""
[ "$(id -u)" -eq 0 ] && SANDBOX="-o APT::Sandbox::User=root"
# shellcheck disable=SC2086
(cd "$WORK/debs" && for p in $PKGS; do echo "$p:armhf"; done | xargs apt-get download -qq $SANDBOX) \
    || die "apt-get download failed"
for deb in "$WORK"/debs/*.deb; do
    # shellcheck disable=SC2016
    dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"
    dpkg -x "$deb" "$WORK/x"
done >"$WORK/packages.txt"

X="$WORK/x"
KVER=${KPKG#linux-image-}
[ -f "$X/boot/vmlinuz-$KVER" ] || die "$KPKG has no boot/vmlinuz-$KVER"
[ -f "$X/usr/lib/linux-image-$KVER/highbank.dtb" ] || die "$KPKG has no highbank.dtb"

# --- modules: what the Highbank node needs, with their dependencies ----------------------
MODDIR="$X/lib/modules/$KVER"
find "$MODDIR/kernel" -name '*.ko' \
    | awk -F/ '{ n = $NF; sub(/\.ko$/, "", n); gsub(/-/, "_", n); print n, $0 }' >"$WORK/modules.index"
mod_path() {   # module name -> file (the kernel treats - and _ alike)
    awk -v want="$(echo "$1" | tr - _)" '$1 == want { print $2; found = 1; exit } END { exit !found }' \
        "$WORK/modules.index"
}
mod_add() {    # depth-first: dependencies before the module, each once
    f=$(mod_path "$1") || die "module $1 not in $KPKG"
    grep -qxF "$f" "$WORK/modules.order" 2>/dev/null && return 0
    for dep in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr , ' '); do
        mod_add "$dep"
    done
    f=$(mod_path "$1")
    grep -qxF "$f" "$WORK/modules.order" 2>/dev/null || echo "$f" >>"$WORK/modules.order"
}
: >"$WORK/modules.order"
# xgmac: eth0; sata_highbank + sd_mod: /dev/sda; ext4 (+crc32c, its softdep): the disk's fs.
for m in xgmac sata_highbank sd_mod crc32c_generic ext4; do mod_add "$m"; done

# --- the initrd tree ---------------------------------------------------------------------
R="$WORK/initrd"
mkdir -p "$R/bin" "$R/sbin" "$R/etc" "$R/lib/modules" "$R/usr/bin" "$R/usr/sbin" \
         "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root" "$R/mnt"
cp "$X/bin/busybox" "$R/bin/busybox"
cp "$X/sbin/ethtool" "$R/sbin/ethtool"
cp -a "$X/lib/ld-linux-armhf.so.3" "$R/lib/"
mkdir -p "$R/lib/arm-linux-gnueabihf"
for d in "$X/lib/arm-linux-gnueabihf" "$X/usr/lib/arm-linux-gnueabihf"; do
    [ -d "$d" ] && find "$d" -maxdepth 1 -name '*.so*' -exec cp -a {} "$R/lib/arm-linux-gnueabihf/" \;
done
while read -r f; do
    cp "$f" "$R/lib/modules/"
    basename "$f" >>"$R/etc/modules.order"
done <"$WORK/modules.order"
cp "$HERE/initrd-init" "$R/init"
cp "$HERE/udhcpc.script" "$R/etc/udhcpc.script"
chmod 755 "$R/init" "$R/etc/udhcpc.script" "$R/bin/busybox" "$R/sbin/ethtool"
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
cp "$WORK/packages.txt" "$R/etc/rackrun-packages"

# newc entry for a character device (the kernel wants /dev/console before /init runs;
# a non-root build cannot mknod it, so it is written as a second, concatenated archive).
newc_hdr() {   # name mode(octal) rdevmajor rdevminor
    namesize=$(( ${#1} + 1 ))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
        1 "$((0$2))" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0 "$1"
    pad=$(( (4 - (110 + namesize) % 4) % 4 ))
    if [ $pad -gt 0 ]; then head -c $pad /dev/zero; fi
}
(
    cd "$R"
    find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort \
        | busybox cpio -o -H newc -R 0:0 --ignore-devno --renumber-inodes 2>/dev/null
    { newc_hdr dev/console 020600 5 1; newc_hdr TRAILER!!! 0 0 0; }
) | gzip -9n >"$WORK/initrd.cpio.gz"

# --- publish -----------------------------------------------------------------------------
cp "$X/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
cp "$X/usr/lib/linux-image-$KVER/highbank.dtb" "$WORK/highbank.dtb"
rm -f "$CACHE/done"
for f in vmlinuz highbank.dtb initrd.cpio.gz packages.txt; do
    mv "$WORK/$f" "$CACHE/$f"
done
echo "$STAMP" >"$CACHE/done.tmp"
mv "$CACHE/done.tmp" "$CACHE/done"
echo "build-node-image: $CACHE: kernel $KVER, initrd $(wc -c <"$CACHE/initrd.cpio.gz") bytes"
