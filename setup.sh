#!/usr/bin/env bash
# One-command set-up of the Beaver testbed on Debian 12. Idempotent: a second
# run on a ready machine checks and changes nothing.
#   - Debian packages: Mininet, Open vSwitch, iperf3, ping, ethtool, tcpdump, sqlite3
#   - Open vSwitch started if it is not running (userspace datapath: no kernel module needed)
#   - .venv made from the system Python (Mininet lives there), with the project and its dev extras
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: must run as root (it installs Debian packages and starts Open vSwitch); try: sudo ./setup.sh" >&2
    exit 1
fi

debian_packages=(mininet openvswitch-switch iperf3 iputils-ping ethtool tcpdump iproute2 sqlite3 python3-venv)
missing=()
for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
    echo "setup.sh: starting Open vSwitch (userspace datapath)"
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random
    ovs-vsctl --timeout=10 show >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup.sh: creating .venv from /usr/bin/python3"
    /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=.venv/.beaver-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup.sh: installing the testbed and its dev extras into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
echo "setup.sh: ready (.venv/bin/beaver, .venv/bin/python -m pytest)"
