#!/usr/bin/env bash
# A PostgreSQL for the tests of the PostgreSQL backend (ctest fixture "pg", tests/CMakeLists.txt):
#   pg_fixture.sh start DIR   initdb in DIR/data, start it on a Unix socket in DIR (no TCP)
#   pg_fixture.sh stop DIR    stop it (its postmaster killed by PID if it will not stop), rm DIR
#   pg_fixture.sh resume DIR  start the server of DIR's cluster again (a test stopped it by PID)
# Debian's postgresql package (initdb, postgres in /usr/lib/postgresql/*/bin). PostgreSQL refuses
# to run as root, so as root the server runs as nobody. Clients connect as role px, trusted
# (the socket is in DIR, mode 0700: only its owner and root reach it).
set -euo pipefail
cmd=${1:?start|stop|resume}; dir=${2:?DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[[ -x "$bin/initdb" ]] || { echo "pg_fixture: no initdb (apt-get install postgresql)" >&2; exit 1; }
as_owner=()
[[ $(id -u) -eq 0 ]] && as_owner=(runuser -u nobody --)

stop() {
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    if [[ -f "$dir/data/postmaster.pid" ]]; then
      pid=$(head -n1 "$dir/data/postmaster.pid")
      [[ "$pid" =~ ^[0-9]+$ ]] && kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$dir"
}

serve() {
  # fsync off: a test cluster needs no durability, and the machine is shared.
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses= -k $dir -p 5432 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
}

case "$cmd" in
start)
  stop # a cluster a killed run left behind
  mkdir -m 0700 "$dir"
  [[ ${#as_owner[@]} -gt 0 ]] && chown nobody: "$dir"
  "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U px --auth=trust --locale=C -E UTF8 \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  serve
  echo "pg_fixture: PostgreSQL on host=$dir port=5432 user=px dbname=postgres"
  ;;
stop) stop ;;
resume) serve ;;
*) echo "usage: $0 start|stop|resume DIR" >&2; exit 2 ;;
esac
