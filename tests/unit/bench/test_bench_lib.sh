#!/usr/bin/env bash
# test_bench_lib: bench/lib/bench.sh's figures, in a `set -euo pipefail` shell as the bench
# scripts run: a ratio of a zero numerator is 0.00, "-" only for a zero denominator or a
# missing value; the CPU of a process that is gone is "-", and the script goes on.
set -euo pipefail
source "$(dirname "$0")/../../../bench/lib/bench.sh"

fails=0
check() {  # WHAT GOT WANT
  if [[ $2 != "$3" ]]; then echo "FAIL $1: got '$2', want '$3'" >&2; fails=$((fails + 1)); fi
}

# A B WANT
while read -r a b want; do
  [[ $a == '""' ]] && a=""
  [[ $b == '""' ]] && b=""
  check "bench_ratio '$a' '$b'" "$(bench_ratio "$a" "$b")" "$want"
done <<'TABLE'
3 2 1.50
0 5 0.00
0.0 5 0.00
5 0 -
0 0 -
"" 5 -
5 "" -
- 5 -
5 - -
? 5 -
12.5 0.5 25.00
1e3 1e2 10.00
TABLE

# A process that is gone: "-", and this `set -e` script is still running (an assignment, as
# the bench scripts make it, ends the script when the function fails).
sh -c 'exit 0' & gone=$!
wait "$gone"
cpu=$(bench_cpu_ns "$gone")
check "bench_cpu_ns of a process that is gone" "$cpu" "-"
# A live one: a whole number of nanoseconds (this shell has run).
ns=$(bench_cpu_ns $$)
[[ $ns =~ ^[0-9]+$ && $ns -gt 0 ]] || { echo "FAIL bench_cpu_ns \$\$: got '$ns'" >&2; fails=$((fails + 1)); }

if ((fails)); then exit 1; fi
echo "bench lib: all checks passed"
