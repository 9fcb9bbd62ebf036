#!/usr/bin/env bash
# Builds the Debian package (dpkg-buildpackage -b, tests off), installs it on this machine,
# and runs the installed proxyd with the packaged /etc/proxyd/proxyd.conf as the packaged user
# proxyd: one request relayed to a local origin, "proxyctl block example.com" with the token
# from /var/lib/proxyd, a logrotate of the Squid log. Then it stops proxyd by PID and purges
# the package, leaving the machine as it found it (but for the build dependencies).
# Needs root and apt; all traffic stays on 127.0.0.1. CI runs it from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "package-test: needs root (it installs and purges the package)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
tmp=$(mktemp -d /tmp/pxpkg.XXXXXX)
chmod 0755 "$tmp"
pids=()
installed=0
had_user=0
getent passwd proxyd >/dev/null && had_user=1
ok=0
passed=0

step() { echo "package-test: $*"; }
check() {  # NAME COMMAND...: one counted check
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); step "ok: $name"; else step "FAILED: $name"; exit 1; fi
}
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((installed)); then apt-get purge -y -qq proxyd >/dev/null 2>&1 || true; fi
  if ((!had_user)) && getent passwd proxyd >/dev/null; then
    deluser --system --quiet proxyd >/dev/null 2>&1 || true
    delgroup --system --quiet proxyd >/dev/null 2>&1 || true
  fi
  if ((ok)); then rm -rf "$tmp"; else echo "package-test: logs kept in $tmp" >&2; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # SECONDS COMMAND...: polls until COMMAND succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

step "build dependencies"
apt-get update -qq
apt-get install -y -qq build-essential debhelper dpkg-dev curl python3 logrotate >/dev/null
apt-get build-dep -y -qq ./ >/dev/null

step "dpkg-buildpackage -b (in a copy: the .deb lands beside the source folder)"
mkdir "$tmp/src"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$tmp/src"
(cd "$tmp/src" && dpkg-buildpackage -b -us -uc) >"$tmp/build.log" 2>&1 ||
  { tail -40 "$tmp/build.log"; exit 1; }
deb=$(ls "$tmp"/proxyd_*.deb)
step "built $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/contents"
for f in /usr/sbin/proxyd /usr/bin/proxyctl /lib/systemd/system/proxyd.service \
         /etc/proxyd/proxyd.conf /etc/logrotate.d/proxyd /usr/share/proxyd/static/index.html \
         /usr/share/proxyd/policies/default.policy /usr/share/proxyd/policies/lists/ads.txt \
         /usr/share/man/man8/proxyd.8.gz /usr/share/man/man1/proxyctl.1.gz \
         /usr/share/bash-completion/completions/proxyctl; do
  check "package holds $f" grep -qx "$f" "$tmp/contents"
done
check "proxyd.conf is a conffile" \
  bash -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./conffiles | grep -qx /etc/proxyd/proxyd.conf"

step "apt-get install $(basename "$deb")"
installed=1
apt-get install -y -qq "$deb" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
check "user proxyd exists" getent passwd proxyd
check "/var/lib/proxyd is proxyd's, mode 0700" \
  test "$(stat -c '%U %a' /var/lib/proxyd)" = "proxyd 700"
if command -v systemd-analyze >/dev/null; then
  # Offline: checks the unit's syntax and that ExecStart names an executable.
  check "systemd-analyze verify proxyd.service" \
    systemd-analyze verify /lib/systemd/system/proxyd.service
fi
if [[ -d /run/systemd/system ]]; then
  # systemd is PID 1: the package started the service. Ready means Type=notify worked; then
  # it is stopped so that the run below has the data folder to itself.
  check "proxyd.service active" wait_for 30 systemctl is-active --quiet proxyd
  check "proxyd.service reports its status" \
    bash -c "systemctl show -p StatusText proxyd | grep -q requests"
  systemctl stop proxyd
else
  step "no systemd as PID 1 ($(ps -p 1 -o comm=)): proxyd is started by hand"
fi

step "local origin"
mkdir "$tmp/www"
echo "hello through proxyd" >"$tmp/www/hello.txt"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/origin.log" 2>&1 &
pids+=($!)
wait_for 10 grep -q "port" "$tmp/origin.log"
origin=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$tmp/origin.log" | head -1)

step "start /usr/sbin/proxyd --config /etc/proxyd/proxyd.conf as root with --user proxyd"
# The packaged settings as installed; flags (which win over the file) add only what this
# test needs: ephemeral ports, the Squid log, and loopback targets, which proxyd refuses by
# default (the proxy's own machine is not a destination) while the origin here is 127.0.0.1.
px_port=$(free_port)
admin_port=$(free_port)
/usr/sbin/proxyd --config /etc/proxyd/proxyd.conf --user proxyd \
  --listen "127.0.0.1:$px_port" --admin "127.0.0.1:$admin_port" --allow-loopback-targets \
  --squid-log /var/log/proxyd/access.log >"$tmp/proxyd.log" 2>&1 &
px_pid=$!
pids+=("$px_pid")
up() {  # the admin server answers: it starts after the listeners
  kill -0 "$px_pid" 2>/dev/null || { cat "$tmp/proxyd.log"; exit 1; }
  curl -s -o /dev/null "http://127.0.0.1:$admin_port/"
}
check "proxyd up" wait_for 30 up
check "proxyd runs as proxyd" \
  test "$(awk '/^Uid:/ {print $2 $3 $4 $5}' "/proc/$px_pid/status")" = "$(id -u proxyd)$(id -u proxyd)$(id -u proxyd)$(id -u proxyd)"
check "proxyd logged the switch" grep -q "running as user proxyd" "$tmp/proxyd.log"

body=$(curl -sf -x "http://127.0.0.1:$px_port" "http://127.0.0.1:$origin/hello.txt")
check "request relayed" test "$body" = "hello through proxyd"
check "token in /var/lib/proxyd, proxyd's" \
  test "$(stat -c '%U %a' /var/lib/proxyd/admin.token)" = "proxyd 600"
check "first-run password in /var/lib/proxyd, proxyd's" \
  test "$(stat -c '%U %a' /var/lib/proxyd/admin.password)" = "proxyd 600"

export PROXYCTL_URL="http://127.0.0.1:$admin_port"
check "proxyctl block example.com" proxyctl block example.com
proxyctl test http://example.com/ --client 127.0.0.1 >"$tmp/test.out"
check "example.com is blocked" grep -qi deny "$tmp/test.out"
logged() { proxyctl logs >"$tmp/logs.out" && grep -q hello.txt "$tmp/logs.out"; }
check "the request is in the access log" wait_for 10 logged

# logrotate renames the Squid log; proxyd notices within a second and starts a new file.
check "squid log written" wait_for 10 grep -q hello.txt /var/log/proxyd/access.log
logrotate -f -s "$tmp/logrotate.state" /etc/logrotate.d/proxyd
check "squid log rotated" test -s /var/log/proxyd/access.log.1
n=0
again() {  # lines may still go to the renamed file until proxyd's next check: ask again
  n=$((n + 1))
  curl -sf -o /dev/null -x "http://127.0.0.1:$px_port" "http://127.0.0.1:$origin/hello.txt?again$n"
  grep -qs "again" /var/log/proxyd/access.log
}
check "proxyd writes a new squid log" wait_for 20 again
check "new squid log is proxyd's" \
  test "$(stat -c %U /var/log/proxyd/access.log)" = proxyd

step "stop proxyd (PID $px_pid)"
kill -TERM "$px_pid"
rc=0
wait "$px_pid" || rc=$?
check "proxyd exits 0 on SIGTERM" test "$rc" = 0

step "apt-get purge proxyd"
apt-get purge -y -qq proxyd >/dev/null
installed=0
check "binary removed" test ! -e /usr/sbin/proxyd
check "data and config removed" test ! -e /var/lib/proxyd -a ! -e /etc/proxyd
ok=1
echo "package-test: $passed passed, 0 failed"
