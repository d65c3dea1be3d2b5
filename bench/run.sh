#!/bin/sh
# run.sh: run every rackrun benchmark from BUILD_DIR (make bench builds it
# with -O2 first) and print their RESULT lines as they come, then one table
# with each figure's target and ok / MISSED. A benchmark that fails to run
# shows as ERROR; a missed target is never retried or hidden.
#
# usage: bench/run.sh BUILD_DIR [NAME...]     (default: every benchmark)
# Exit status: 0 when every benchmark ran (targets missed or not), 1 otherwise.
set -u

build=${1:?usage: bench/run.sh BUILD_DIR [NAME...]}
shift
names=${*:-"rack_power ingest dispatch sol memory heartbeat"}
out=$(mktemp -d /tmp/rr-bench-run-XXXXXX)
trap 'rm -rf "$out"' EXIT INT TERM
failed=0
started=$(date +%s)

for name in $names; do
    bin="$build/bench/bench_$name"
    echo "== $name"
    if [ ! -x "$bin" ]; then
        echo "ROW bench_$name - - - ERROR (not built)" >>"$out/rows"
        failed=1
        continue
    fi
    t0=$(date +%s)
    # stdout (RESULT/ROW/NOTE) is kept; the programs' progress goes to stderr.
    "$bin" >"$out/$name.out" 2>"$out/$name.err"
    rc=$?
    grep -E '^(RESULT|NOTE) ' "$out/$name.out"
    grep '^ROW ' "$out/$name.out" >>"$out/rows"
    grep '^NOTE ' "$out/$name.out" >>"$out/notes"
    echo "   ($name: $(( $(date +%s) - t0 )) s)"
    if [ $rc -ne 0 ]; then
        echo "ROW bench_$name - - - ERROR (exit $rc)" >>"$out/rows"
        echo "-- $name failed (exit $rc); its last messages:"
        tail -n 20 "$out/$name.err"
        failed=1
    fi
done

echo
printf '%-44s %14s %-9s %-12s %s\n' figure value unit target status
printf '%-44s %14s %-9s %-12s %s\n' ------ ----- ---- ------ ------
[ -f "$out/rows" ] && while read -r _ fig value unit target status; do
    printf '%-44s %14s %-9s %-12s %s\n' "$fig" "$value" "$unit" "$target" "$status"
done <"$out/rows"
if [ -f "$out/notes" ]; then
    echo
    sed 's/^NOTE /note: /' "$out/notes"
fi
missed=$(grep -c ' MISSED$' "$out/rows" 2>/dev/null || true)
echo
echo "benchmarks: $(( $(date +%s) - started )) s; targets missed: ${missed:-0}"
exit $failed
