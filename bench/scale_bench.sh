#!/usr/bin/env bash
# Dashboards at scale: build/bench/scale_bench on a database made for the run and deleted after.
#   bench/scale_bench.sh [--rows N] [--days D] [--runs R] [--mix office|independent] [--build DIR]
#                        sqlite|pg [WORKDIR]
# sqlite: WORKDIR/scale_bench.db. pg: a PostgreSQL of its own in WORKDIR/pg (tests/pg_fixture.sh:
# Unix socket only, its settings, stopped and removed at the end). WORKDIR defaults to /tmp.
# The disk is shared: refuses to start unless WORKDIR's file system has room for the rows
# (600 bytes a row, rollups and indexes included, with 5 GB to spare).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rows=100000000 days=30 runs=5 mix=office build=$here/build
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
  --rows) rows=$2; shift 2 ;;
  --days) days=$2; shift 2 ;;
  --runs) runs=$2; shift 2 ;;
  --mix) mix=$2; shift 2 ;;
  --build) build=$2; shift 2 ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
engine=${1:?usage: scale_bench.sh [--rows N] [--days D] [--runs R] [--mix office|independent] [--build DIR] sqlite|pg [WORKDIR]}
work=${2:-/tmp}
tool=$build/bench/scale_bench
[[ -x $tool ]] || { echo "no $tool (build first)" >&2; exit 1; }
[[ $rows =~ ^[0-9]+$ ]] || { echo "--rows: a number" >&2; exit 2; }

need_kb=$(( rows * 600 / 1024 + 5 * 1024 * 1024 ))
free_kb=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
if (( free_kb < need_kb )); then
  echo "scale_bench.sh: $work has $((free_kb / 1024 / 1024)) GB free, $rows rows need" \
       "about $((need_kb / 1024 / 1024)) GB" >&2
  exit 1
fi
echo "scale_bench.sh: $engine, $rows rows, $((free_kb / 1024 / 1024)) GB free in $work," \
     "load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

case $engine in
sqlite)
  db=$work/scale_bench.db
  trap 'rm -f "$db" "$db-wal" "$db-shm"' EXIT
  rm -f "$db" "$db-wal" "$db-shm"
  "$tool" --rows "$rows" --days "$days" --runs "$runs" --mix "$mix" "$db"
  echo "database: $(du -sh "$db" | cut -f1)"
  ;;
pg)
  dir=$work/scale_bench_pg
  trap '"$here/tests/pg_fixture.sh" stop "$dir"' EXIT
  "$here/tests/pg_fixture.sh" start "$dir"
  conninfo="host=$dir port=5432 user=px dbname=postgres"
  # Checkpoints every 1 GB of WAL would rewrite the fill's pages many times over.
  psql "$conninfo" -qAt -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "SELECT pg_reload_conf()" \
    >/dev/null
  "$tool" --rows "$rows" --days "$days" --runs "$runs" --mix "$mix" "$conninfo"
  echo "database: $(psql "$conninfo" -qAt -c "SELECT pg_size_pretty(pg_database_size('postgres'))")"
  ;;
*) echo "engine: sqlite or pg" >&2; exit 2 ;;
esac
