#!/usr/bin/env bash
# Installs with apt the system programs the tests and `make run` use, only those missing:
# redis-server, PostgreSQL 15, nginx, chromium (+ fonts, emoji font), and nodejs if `node` is missing.
# Idempotent and non-interactive. Starts no service and leaves none running: the tests
# start their own servers on loopback (scripts/devstack/).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo -n)
fi

have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have_pkg() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
have_pg() { have_cmd initdb || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

want=()
have_cmd redis-server || want+=(redis-server)
have_pg || want+=(postgresql)
have_cmd nginx || want+=(nginx)
if ! have_cmd chromium; then
    want+=(chromium)
    have_pkg fonts-liberation || want+=(fonts-liberation)
    have_pkg fonts-dejavu-core || want+=(fonts-dejavu-core)
fi
# Headless Chromium draws reaction emoji with it (screenshots and the rich-message tests).
have_pkg fonts-noto-color-emoji || want+=(fonts-noto-color-emoji)
have_cmd node || want+=(nodejs)
# npm: `make node-deps` installs axe-core for the browser tests (tests/browser/package.json).
have_cmd npm || want+=(npm)

check_node() {
    local major
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$major" -lt 20 ]; then
        echo "install-system-deps: warning: node $(node --version 2>/dev/null) is older than 20;" \
            "the JS tests (ES modules in static/chat/*.js) need Node.js 20.19 or newer" >&2
    fi
}

if [ ${#want[@]} -eq 0 ]; then
    echo "install-system-deps: nothing to install"
    check_node
    exit 0
fi
echo "install-system-deps: installing ${want[*]}"

# Keep package scripts from starting services: policy-rc.d exit 101 means "not allowed".
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    made_policy=1
fi
cleanup() {
    if [ "$made_policy" = 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

apt_opts=(-q -o Acquire::Retries=3 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${SUDO[@]}" apt-get "${apt_opts[@]}" update
"${SUDO[@]}" apt-get "${apt_opts[@]}" install -y --no-install-recommends "${want[@]}"

# Should a package script have started a service anyway, stop it: nothing needs to run.
for svc in "${want[@]}"; do
    if [[ " redis-server postgresql nginx " == *" $svc "* && -x "/etc/init.d/$svc" ]]; then
        "${SUDO[@]}" "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
done
check_node
echo "install-system-deps: done"
