#!/usr/bin/env bash
# demo.sh BUILD_DIR: rackrun end to end on one machine, in under a minute.
#
# Starts an emulated rack (tests/rig/rig.py: 4 stock ipmi_sim BMCs with fast
# shell nodes), makes CURVE certificates for the master, a worker and this
# client (rackrun keygen), writes the master and worker configurations (the
# worker's device dictionary from the rig's rig.json, BMC password in a 0600
# file), starts rackrun-master and rackrun-worker, waits until the worker is
# online, and runs deploy/examples/smoke.yaml with `rackrun submit --wait`,
# its console streaming live. Exit 0 only if the job completed.
#
# Everything it starts is stopped on exit (trap), by PID. The demo directory
# (configs, keys, database, logs) is removed after a completed run and kept
# otherwise; KEEP=1 keeps it always. Only 127.0.0.1 is used. DEMO_DIR=DIR
# runs in DIR instead of a fresh /tmp/rackrun-demo.*; JOB=FILE submits FILE
# instead of deploy/examples/smoke.yaml (tests/security uses both).
set -euo pipefail

die() { echo "demo: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: deploy/demo.sh BUILD_DIR" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" 2>/dev/null && pwd) || die "build directory '$1' does not exist (run make first)"
RACKRUN=$BUILD/cli/rackrun
MASTER_BIN=$BUILD/master/rackrun-master
WORKER_BIN=$BUILD/worker/rackrun-worker
for bin in "$RACKRUN" "$MASTER_BIN" "$WORKER_BIN"; do
    [ -x "$bin" ] || die "$bin: not built (run make first)"
done

T0=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$T0" "$(date +%s.%N)"; }
say() { echo "demo [$(elapsed)s]: $*"; }

DEMO=${DEMO_DIR:-$(mktemp -d /tmp/rackrun-demo.XXXXXX)}
mkdir -p "$DEMO"
MASTER_PID="" WORKER_PID="" RIG_PID="" OK=0

# Stop a process we started: SIGTERM, then SIGKILL after 3 s.
stop_pid() {
    local pid=$1 name=$2 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "demo: $name (pid $pid) ignored SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    trap - EXIT INT TERM
    stop_pid "$WORKER_PID" rackrun-worker
    stop_pid "$MASTER_PID" rackrun-master
    [ -n "${RIG_IN:-}" ] && exec {RIG_IN}>&- # EOF on its stdin: the rig stops its BMCs and nodes
    stop_pid "$RIG_PID" rig
    if [ "$OK" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
        rm -rf "$DEMO"
    else
        echo "demo: logs and configs kept in $DEMO (master.log, worker.log, rig.log)" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# On failure, show the end of the daemons' logs: that is where the reason is.
show_logs() {
    for log in master worker rig; do
        [ -s "$DEMO/$log.log" ] || continue
        echo "---- last lines of $DEMO/$log.log" >&2
        tail -n 15 "$DEMO/$log.log" >&2
    done
}

free_ports() { # N free TCP ports on 127.0.0.1
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# ---- the emulated rack ----------------------------------------------------------------
mkdir -p "$DEMO/tftp" "$DEMO/artifacts" "$DEMO/spool"
# fifo as the rig's stdin: closing our end (or dying) stops the rig and all it started
mkfifo "$DEMO/rig.stdin"
python3 "$SRC/tests/rig/rig.py" --nodes 4 --dir "$DEMO/rig" --tftp-root "$DEMO/tftp" \
    <"$DEMO/rig.stdin" >"$DEMO/rig.out" 2>"$DEMO/rig.log" &
RIG_PID=$!
exec {RIG_IN}>"$DEMO/rig.stdin"
for _ in $(seq 300); do
    grep -qE '^(READY|FAILED)' "$DEMO/rig.out" 2>/dev/null && break
    kill -0 "$RIG_PID" 2>/dev/null || break
    sleep 0.1
done
READY=$(grep -m1 -E '^(READY|FAILED)' "$DEMO/rig.out" || true)
case "$READY" in
    READY\ *) RIG_JSON=${READY#READY } ;;
    *) show_logs; die "the emulated rack did not start: ${READY:-no READY within 30 s}" ;;
esac
say "emulated rack up: 4 BMCs (ipmi_sim) + fast shell nodes ($RIG_JSON)"

# ---- keys -------------------------------------------------------------------------------
# A worker key speaks only for the worker its certificate names (rack01); the
# client key may do everything (role admin); the master allows only these two.
"$RACKRUN" keygen "$DEMO/keys" master >/dev/null
"$RACKRUN" keygen "$DEMO/keys" rack01 >/dev/null
"$RACKRUN" keygen --role admin "$DEMO/keys" client >/dev/null
mkdir -p "$DEMO/workers.d" "$DEMO/clients.d"
cp "$DEMO/keys/rack01" "$DEMO/workers.d/rack01"
cp "$DEMO/keys/client" "$DEMO/clients.d/client"
say "CURVE certificates for master, worker rack01 and client (admin) in $DEMO/keys"

# ---- configuration ----------------------------------------------------------------------
read -r WORKER_PORT CLIENT_PORT < <(free_ports 2)
cat >"$DEMO/master.yaml" <<EOF
db: $DEMO/master.db
worker_endpoint: tcp://127.0.0.1:$WORKER_PORT
client_endpoint: tcp://127.0.0.1:$CLIENT_PORT
http_listen: "off"
secret_key: $DEMO/keys/master_secret
worker_keys_dir: $DEMO/workers.d
client_keys_dir: $DEMO/clients.d
heartbeat_interval: 1s
heartbeat_timeout: 5s
EOF

# the worker's device dictionary from rig.json; the password only into a 0600 file
(umask 077 && python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["nodes"][0]["password"])' \
    "$RIG_JSON" >"$DEMO/bmc.password")
# a named job secret ({{secret:demo-token}} in a job), resolved by the worker only
(umask 077 && mkdir -p "$DEMO/secrets" && python3 -c 'import secrets; print(secrets.token_hex(12))' \
    >"$DEMO/secrets/demo-token")
python3 - "$RIG_JSON" "$DEMO" "$WORKER_PORT" >"$DEMO/worker.yaml" <<'EOF'
import json, sys
rig, demo, port = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
q = json.dumps  # a JSON string is a valid YAML scalar
print(f"""worker: rack01
rack: demo-rack
master: tcp://127.0.0.1:{port}
master_public_key: {q(demo + '/keys/master')}
secret_key: {q(demo + '/keys/rack01_secret')}
tftp_root: {q(demo + '/tftp')}
spool_dir: {q(demo + '/spool')}
secrets_dir: {q(demo + '/secrets')}
file_roots: [{q(demo + '/artifacts')}]
max_download: 64MiB
device_types:
  highbank:
    prompts: ["# "]
devices:""")
for node in rig["nodes"]:
    print(f"""  - name: {q(node['name'])}
    type: highbank
    bmc: {{host: {q(node['host'])}, port: {node['port']}, user: {q(node['user'])}, password_file: {q(demo + '/bmc.password')}}}
    mac: {q(node['mac'])}""")
EOF

# the smoke job, its artifacts placed where this copy of the job points
printf '%s\n' "rackrun demo kernel (not a real zImage)" >"$DEMO/artifacts/vmlinuz"
printf '%s\n' "rackrun demo initrd (not a real cpio)" >"$DEMO/artifacts/initrd.img"
printf '%s\n' "rackrun demo device tree (not a real dtb)" >"$DEMO/artifacts/highbank.dtb"
# JOB=FILE runs another job instead (its artifact URLs rewritten the same way)
sed "s|/tmp/rackrun-demo/artifacts|$DEMO/artifacts|g" "${JOB:-$SRC/deploy/examples/smoke.yaml}" \
    >"$DEMO/smoke.yaml"

# ---- master and worker ------------------------------------------------------------------
"$MASTER_BIN" --config "$DEMO/master.yaml" 2>"$DEMO/master.log" {RIG_IN}>&- &
MASTER_PID=$!
"$WORKER_BIN" --config "$DEMO/worker.yaml" 2>"$DEMO/worker.log" {RIG_IN}>&- &
WORKER_PID=$!
say "rackrun-master (pid $MASTER_PID) and rackrun-worker (pid $WORKER_PID) started"

export RACKRUN_MASTER=tcp://127.0.0.1:$CLIENT_PORT
export RACKRUN_KEY=$DEMO/keys/client_secret
export RACKRUN_MASTER_KEY=$DEMO/keys/master
worker_online() {
    "$RACKRUN" --json --timeout 1s workers 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if any(w["name"] == "rack01" and w["state"] == "online" for w in json.load(sys.stdin)) else 1)'
}
for _ in $(seq 30); do
    worker_online && break
    kill -0 "$MASTER_PID" 2>/dev/null || { show_logs; die "rackrun-master exited"; }
    kill -0 "$WORKER_PID" 2>/dev/null || { show_logs; die "rackrun-worker exited"; }
    sleep 0.5
done
worker_online || { show_logs; die "worker rack01 not online within 15 s"; }
# devices turn idle once the worker has their SOL consoles up
devices_idle() {
    "$RACKRUN" --json --timeout 1s devices 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if any(d["state"] == "idle" for d in json.load(sys.stdin)) else 1)'
}
for _ in $(seq 20); do
    devices_idle && break
    sleep 0.5
done
say "worker online:"
"$RACKRUN" workers
"$RACKRUN" devices

# ---- the job ----------------------------------------------------------------------------
say "rackrun submit --wait smoke.yaml (console follows)"
echo "------------------------------------------------------------------------"
set +e
timeout --foreground 40 "$RACKRUN" submit --wait "$DEMO/smoke.yaml"
rc=$?
set -e
echo "------------------------------------------------------------------------"
case $rc in
    0) OK=1; say "job complete" ;;
    124) show_logs; die "job did not finish within 40 s" ;;
    1) show_logs; die "job did not complete (outcome above)" ;;
    *) show_logs; die "rackrun submit failed (exit $rc)" ;;
esac
