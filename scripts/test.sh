#!/usr/bin/env bash
# Installs everything the test suite needs on a Debian machine (system packages,
# services, a virtualenv with the project and its test extras), then runs ruff, mypy
# and pytest. Safe to run again: each step checks before it acts.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages -----------------------------------------------------------------
# postgresql: SQL store tests; rabbitmq-server: STOMP tests (rabbitmq_stomp plugin);
# activemq: STOMP tests (the broker is started by the test fixtures, as this user);
# openssh-server/-client: SFTP tests (sshd started by the fixtures);
# default-jre-headless: ActiveMQ's Java; zip/curl/time: the benchmarks' reference tools and RSS;
# default-jdk-headless (javac) and unzip: the ZIP packages are read by Java's ZipInputStream
# (tests/java/ReadZip.java) and Info-ZIP's unzip.
PACKAGES=(postgresql rabbitmq-server activemq openssh-server openssh-client
          default-jre-headless default-jdk-headless zip unzip curl bzip2 ca-certificates
          procps time
          chromium  # chromium: the dashboard's browser tests (Playwright drives /usr/bin/chromium)
          # dovecot-imapd: the IMAPS server of the NIHMS mail tests (tests/support/dovecot.py
          # starts its own dovecot with a throwaway config; the system service is not needed)
          dovecot-imapd
          # dockerd (started by tests/support/docker.py), debootstrap (the image's base, built
          # from Debian's packages: no registry here), docker-compose (compose.yaml checked):
          # the container tests (tests/container)
          docker.io debootstrap docker-compose)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # invoke-rc.d may try to start services in a container without an init: never fatal
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || as_root apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}"
fi

# --- services ------------------------------------------------------------------------
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not running on 127.0.0.1:5432" >&2; exit 1; }
# The tests connect as postgres with password "postgres" (ignored where auth is trust).
if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  log "setting the postgres role's password for the tests"
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
fi
export DEPOSIT_TEST_POSTGRES_URL="${DEPOSIT_TEST_POSTGRES_URL:-postgresql://postgres:postgres@127.0.0.1:5432/postgres}"

if ! as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached
  for _ in $(seq 1 60); do as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 1; done
fi
as_root rabbitmq-plugins enable --offline rabbitmq_stomp >/dev/null 2>&1 || true
as_root rabbitmq-plugins enable rabbitmq_stomp >/dev/null

# --- Python --------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
# The test extras include moto[server]: the SQS tests' endpoint, which their fixtures
# start in-process on a free loopback port (nothing to start here).
log "installing the project and its test extras"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# dserver (dservercore + its Mongo plug-ins on mongomock) for the dtool tests needs
# flask<3, which moto[server] cannot share: it gets its own .venv-dserver, pins in
# tests/support/dserver.py (the fixture makes it too when it is missing).
log "dserver's own venv"
.venv/bin/python -m tests.support.dserver install >/dev/null
# dspace-rest-client (the independent client the DSpace test server is cross-checked
# with) pins an older requests than ours: its own .venv-dspace-client, pin in
# tests/support/dspace_client_venv.py (the fixture makes it too when it is missing).
log "dspace-rest-client's own venv"
.venv/bin/python -m tests.support.dspace_client_venv install >/dev/null

log "ruff"
.venv/bin/ruff check deposit_services tests bench
log "mypy"
.venv/bin/mypy deposit_services tests bench
log "pytest"
exec .venv/bin/python -m pytest "$@"
