#!/bin/sh
# build-disk-image.sh OUT [--marker TEXT] [--image-dir DIR] [--size-mb N]: a raw
# SATA disk image for the emulated Highbank node, laid out as a distro U-Boot
# boots a disk: an MBR with one bootable Linux partition (from 1 MiB) holding
# an ext2 filesystem with
#   /boot/extlinux/extlinux.conf   LABEL/KERNEL/INITRD/FDT/APPEND, pxelinux syntax
#   /boot/vmlinuz /boot/initrd.img /boot/dtbs/highbank.dtb
#   /rackrun-marker                TEXT (default: "rackrun disk <date>")
# The kernel, initrd and dtb come from DIR (default: the cache of
# build-node-image.sh given by $RR_HIGHBANK_CACHE), which must be built already.
# The APPEND line carries rackrun.disk=/dev/sda1, so the node's init mounts the
# partition on /mnt/disk: a booted node shows the marker at /mnt/disk/rackrun-marker.
# No root needed (mke2fs -d). Host tools: mke2fs (e2fsprogs), dd, truncate.
set -eu

die() { echo "build-disk-image: $*" >&2; exit 1; }

OUT=""
MARKER="rackrun disk $(date -u +%Y-%m-%dT%H:%M:%SZ)"
IMAGE_DIR=${RR_HIGHBANK_CACHE:-}
SIZE_MB=48
while [ $# -gt 0 ]; do
    case "$1" in
    --marker) [ $# -ge 2 ] || die "--marker needs TEXT"; MARKER=$2; shift 2 ;;
    --image-dir) [ $# -ge 2 ] || die "--image-dir needs DIR"; IMAGE_DIR=$2; shift 2 ;;
    --size-mb) [ $# -ge 2 ] || die "--size-mb needs N"; SIZE_MB=$2; shift 2 ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$OUT" ] || die "one OUT only"; OUT=$1; shift ;;
    esac
done
[ -n "$OUT" ] || die "usage: $0 OUT [--marker TEXT] [--image-dir DIR] [--size-mb N]"
[ -n "$IMAGE_DIR" ] || die "no node image: give --image-dir DIR or set RR_HIGHBANK_CACHE"
for f in vmlinuz initrd.cpio.gz highbank.dtb "done"; do
    [ -f "$IMAGE_DIR/$f" ] || die "$IMAGE_DIR/$f missing (run build-node-image.sh $IMAGE_DIR)"
done
[ "$SIZE_MB" -ge 16 ] 2>/dev/null || die "--size-mb must be a number >= 16"
MKE2FS=$(command -v mke2fs || echo /sbin/mke2fs)
[ -x "$MKE2FS" ] || die "mke2fs not found (Debian package e2fsprogs)"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/rr-disk.XXXXXX")
trap 'rm -rf "$STAGE" "$OUT.tmp"' EXIT INT TERM HUP
mkdir -p "$STAGE/boot/extlinux" "$STAGE/boot/dtbs"
cp "$IMAGE_DIR/vmlinuz" "$STAGE/boot/vmlinuz"
cp "$IMAGE_DIR/initrd.cpio.gz" "$STAGE/boot/initrd.img"
cp "$IMAGE_DIR/highbank.dtb" "$STAGE/boot/dtbs/highbank.dtb"
printf '%s\n' "$MARKER" >"$STAGE/rackrun-marker"
cat >"$STAGE/boot/extlinux/extlinux.conf" <<EOF
# rackrun Highbank disk image (tests/rig/highbank/build-disk-image.sh)
DEFAULT disk
LABEL disk
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  FDT /boot/dtbs/highbank.dtb
  APPEND console=ttyAMA0 rackrun.disk=/dev/sda1
EOF

START=2048                                   # sectors: the partition starts at 1 MiB
SECTORS=$(( SIZE_MB * 2048 - START ))
rm -f "$OUT.tmp"
truncate -s "${SIZE_MB}M" "$OUT.tmp"
"$MKE2FS" -q -F -t ext2 -L rackrun -d "$STAGE" -E offset=$((START * 512)) \
    "$OUT.tmp" "$((SECTORS / 2))k" || die "mke2fs failed"

le32() {       # a 32-bit little-endian number as printf escapes
    printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) $(($1 >> 8 & 255)) \
        $(($1 >> 16 & 255)) $(($1 >> 24 & 255))
}
# MBR partition entry 1: bootable, CHS fields unused (LBA), type 0x83 (Linux).
# shellcheck disable=SC2059
{
    printf '\200\376\377\377\203\376\377\377'
    printf "$(le32 $START)$(le32 $SECTORS)"
} | dd of="$OUT.tmp" bs=1 seek=446 conv=notrunc status=none
printf '\125\252' | dd of="$OUT.tmp" bs=1 seek=510 conv=notrunc status=none
mv "$OUT.tmp" "$OUT"
trap 'rm -rf "$STAGE"' EXIT INT TERM HUP
echo "build-disk-image: $OUT: ${SIZE_MB} MiB, ext2 at sector $START, marker '$MARKER'"
