#!/usr/bin/env bash
# demo_leaves_no_secret.sh BUILD_DIR: run the whole demo (deploy/demo.sh) with
# a job that makes the node echo a named secret, then search everything the
# run left behind (master and worker logs, the SQLite database, the worker's
# spool and TFTP root, and what the CLI printed) for the BMC password and the
# secret's value. Neither may appear; the masked form must (the job really
# printed the secret, and it was masked on the way).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$1
DIR=$(mktemp -d /tmp/rr-sec-demo.XXXXXX)
OK=0
cleanup() {
    if [ "$OK" = 1 ]; then rm -rf "$DIR"; else echo "kept for inspection: $DIR" >&2; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

if ! DEMO_DIR="$DIR/demo" KEEP=1 JOB="$SRC/tests/security/secret-echo.yaml" \
        bash "$SRC/deploy/demo.sh" "$BUILD" >"$DIR/cli.out" 2>&1; then
    tail -n 40 "$DIR/cli.out" >&2
    fail "the demo run did not complete"
fi
D=$DIR/demo
PW=$(cat "$D/bmc.password")
TOKEN=$(cat "$D/secrets/demo-token")
[ ${#PW} -ge 4 ] && [ ${#TOKEN} -ge 8 ] || fail "no usable password/token to look for"

WHERE=("$D/master.log" "$D/worker.log" "$D/spool" "$D/tftp" "$DIR/cli.out")
for f in "$D"/master.db*; do WHERE+=("$f"); done
for secret in "$PW" "$TOKEN"; do
    if grep -r -a -F -l -- "$secret" "${WHERE[@]}"; then
        fail "a secret (${#secret} bytes) was found in the files listed above"
    fi
done
echo "no trace of the BMC password or demo-token in: ${WHERE[*]}"

# The job printed the token (typed echo, output, a result name): all masked.
grep -q -F 'token=******' "$DIR/cli.out" || fail "the masked token is not in the job's log"
grep -q -a -F 'tok-******' "$D/master.db" "$D"/master.db-wal 2>/dev/null \
    || grep -q -F 'tok-******' "$DIR/cli.out" || fail "the masked result name is missing"
echo "the node echoed the secret and every copy was masked"
OK=1
