#!/bin/sh
# Install every Debian package rackrun needs to build, test and demo.
# Idempotent: does nothing when all packages are present. Must run as root
# on Debian 12 (bookworm). Usage: deploy/install-deps.sh [--with-e2e]
set -eu

PKGS="build-essential cmake pkg-config clang lld llvm libclang-rt-14-dev
libzmq3-dev libczmq-dev libsodium-dev libmsgpack-dev
libfreeipmi-dev freeipmi-tools
libcurl4-openssl-dev libsqlite3-dev sqlite3 libyaml-dev libmicrohttpd-dev
libcmocka-dev libjansson-dev openipmi ipmitool socat procps psmisc python3 curl valgrind
dnsmasq-base
chromium chromium-driver libxml2-utils
qemu-system-arm u-boot-qemu iproute2 busybox e2fsprogs"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
# chromedriver reaches Chromium through "localhost" (the browser tests). Every
# installed Debian system has an /etc/hosts saying so; a bare debootstrap root
# has no /etc/hosts at all: give it the standard lines. An existing file is
# never touched.
if [ ! -e /etc/hosts ] && [ "$(id -u)" -eq 0 ]; then
    echo "install-deps: no /etc/hosts: writing the standard localhost lines"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages:$missing" >&2
    echo "install-deps: run as root (or: sudo $0)" >&2
    exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
