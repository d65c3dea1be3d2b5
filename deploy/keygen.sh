#!/bin/sh
# keygen.sh: CURVE key setup for a rackrun installation, thin over `rackrun keygen`
# (which writes DIR/NAME, the public certificate, mode 0644, and DIR/NAME_secret,
# mode 0600, and never replaces an existing pair).
#
# Layout (KEYS = /etc/rackrun/keys unless --keys DIR):
#   KEYS/master, KEYS/master_secret   the master's pair           (master host)
#   KEYS/workers/NAME                 public certs of the workers (master: worker_keys_dir)
#   KEYS/clients/NAME                 public certs of the clients (master: client_keys_dir)
#   KEYS/NAME, KEYS/NAME_secret       a worker's own pair         (worker host)
#   KEYS/master                       copy of the master's public cert (worker host)
#
# Usage:
#   keygen.sh master [--keys DIR]              master host: its pair, workers/ and clients/
#   keygen.sh worker NAME [--keys DIR]         worker host: the worker's pair
#   keygen.sh client NAME [--keys DIR]         a user: pair in ~/.config/rackrun by default
#   keygen.sh authorize worker|client CERT [--keys DIR]
#                                              master host: let a public cert in
#
# Secrets never leave the host they were made on: only public certificates (files
# without _secret) are copied between hosts. As root, when the system user `rackrun`
# exists, the daemons' secret certs are given to it (they run as rackrun) and KEYS
# becomes root:rackrun 0750. Set RACKRUN=/path/to/rackrun to use another binary.
set -eu

RACKRUN=${RACKRUN:-rackrun}
prog=keygen.sh

die() { echo "$prog: $*" >&2; exit 1; }
usage() { sed -n '/^# Usage:/,/^#$/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# own_by_rackrun PATH MODE: as root with a rackrun user, PATH becomes rackrun's (MODE).
own_by_rackrun() {
    if [ "$(id -u)" -eq 0 ] && id rackrun >/dev/null 2>&1; then
        chown rackrun:rackrun "$1"
    fi
    chmod "$2" "$1"
}

# keys_dir DIR: create DIR (and parents) readable by root and the rackrun group only.
keys_dir() {
    mkdir -p "$1"
    if [ "$(id -u)" -eq 0 ] && id rackrun >/dev/null 2>&1; then
        chown root:rackrun "$1"
    fi
    chmod 0750 "$1"
}

check_name() {
    case $1 in
        ''|-*|.*|*[!A-Za-z0-9._-]*) die "'$1' is not a name (letters, digits, '.', '_', '-')" ;;
    esac
}

[ $# -ge 1 ] || usage
role=$1
shift
name=""
cert=""
case $role in
    master) ;;
    worker|client)
        [ $# -ge 1 ] || usage
        name=$1; shift
        check_name "$name" ;;
    authorize)
        [ $# -ge 2 ] || usage
        name=$1; cert=$2; shift 2
        case $name in worker|client) ;; *) usage ;; esac ;;
    -h|--help) usage ;;
    *) usage ;;
esac
keys=/etc/rackrun/keys
[ "$role" = client ] && keys=${HOME:?}/.config/rackrun
while [ $# -gt 0 ]; do
    case $1 in
        --keys) [ $# -ge 2 ] || usage; keys=$2; shift 2 ;;
        *) usage ;;
    esac
done
command -v "$RACKRUN" >/dev/null 2>&1 || die "$RACKRUN not found (install rackrun, or set RACKRUN=)"

case $role in
master)
    keys_dir "$keys"
    "$RACKRUN" keygen "$keys" master
    own_by_rackrun "$keys/master_secret" 0600
    keys_dir "$keys/workers"
    keys_dir "$keys/clients"
    cat <<EOF
$prog: master keys in $keys. In /etc/rackrun/master.yaml:
  secret_key: $keys/master_secret
  worker_keys_dir: $keys/workers
  client_keys_dir: $keys/clients
Give $keys/master (public) to every worker host ($keys/master there) and client.
EOF
    ;;
worker)
    keys_dir "$keys"
    "$RACKRUN" keygen "$keys" "$name"
    own_by_rackrun "$keys/${name}_secret" 0600
    cat <<EOF
$prog: worker keys in $keys. In /etc/rackrun/worker.yaml:
  master_public_key: $keys/master     (copy it from the master host)
  secret_key: $keys/${name}_secret
On the master host: $prog authorize worker <copy of $keys/$name>
EOF
    ;;
client)
    mkdir -p "$keys"
    chmod 0700 "$keys"
    "$RACKRUN" keygen "$keys" "$name"
    cat <<EOF
$prog: client keys in $keys. Then:
  export RACKRUN_KEY=$keys/${name}_secret RACKRUN_MASTER_KEY=<copy of the master's public cert>
On the master host: $prog authorize client <copy of $keys/$name>
EOF
    ;;
authorize)
    [ -f "$cert" ] || die "$cert: no such file"
    case $cert in *_secret) die "$cert is a secret certificate: authorize the public one" ;; esac
    if ! grep -q '^metadata' "$cert" || ! grep -q 'public-key = ' "$cert"; then
        die "$cert: not a czmq public certificate"
    fi
    grep -q 'secret-key' "$cert" && die "$cert holds a secret key: authorize the public one"
    dir=$keys/${name}s
    [ -d "$dir" ] || die "$dir: missing (run '$prog master' first)"
    base=$(basename "$cert")
    [ -e "$dir/$base" ] && die "$dir/$base exists; remove it first to replace it"
    cp "$cert" "$dir/$base"
    chmod 0644 "$dir/$base"
    # the master re-reads the directory when it changes: no restart needed
    echo "$prog: $name $base authorized ($dir/$base)"
    ;;
esac
