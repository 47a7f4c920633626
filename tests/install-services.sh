#!/usr/bin/env bash
# Install what the integration tests start for themselves: PostgreSQL with
# pg_stat_statements and HypoPG, Redis, Prometheus, nginx (a third-party target whose access log
# counts what it served) and Chromium (checks the reports).
# Installs with apt-get when running as root on Debian; otherwise says what is missing.
# Never starts, stops or changes a system service.
set -uo pipefail

have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_hypopg() { ls /usr/share/postgresql/*/extension/hypopg.control >/dev/null 2>&1; }
have_redis() { command -v redis-server >/dev/null 2>&1; }
have_chromium() { command -v chromium >/dev/null 2>&1; }
have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
have_prometheus() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }

missing() {
  local m=""
  have_postgres || m="$m postgresql"
  have_hypopg || m="$m hypopg"
  have_redis || m="$m redis-server"
  have_prometheus || m="$m prometheus"
  have_chromium || m="$m chromium"
  have_nginx || m="$m nginx-light"
  echo "$m"
}

todo="$(missing)"
[ -z "$todo" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing test services with apt-get:$todo"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends postgresql postgresql-contrib redis-server prometheus chromium nginx-light >/dev/null
  major="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  apt-get install -y -qq --no-install-recommends "postgresql-${major}-hypopg" >/dev/null
  todo="$(missing)"
fi

if [ -n "$todo" ]; then
  echo "missing test services:$todo (install them, e.g. apt-get install postgresql postgresql-15-hypopg redis-server prometheus chromium nginx-light);" \
       "tests that need them are skipped, or fail when CI=true" >&2
fi
exit 0
