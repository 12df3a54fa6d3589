#!/usr/bin/env bash
# Install finews as two systemd timers (the list feeds every 5 minutes, the
# category crawl hourly), as root, from a checkout of the repository:
#
#   sudo deploy/systemd/install.sh
#
# It creates everything the units use, and may be run again (after a
# `git pull`, to upgrade): the system user `finews`; /opt/finews/.venv with
# finews installed by pip; /etc/finews/finews.toml and finews-category.toml
# (copied from deploy/ only if absent, so local edits are kept) and
# /etc/finews/finews.env (root only, for MONGO_URI); /var/lib/finews owned
# by finews; the units in /etc/systemd/system, with both timers enabled (and
# started when systemd is running).
#
# Environment:
#   FINEWS_ROOT         install under this folder instead of / (tests, a look
#                       at what it does): the user goes into its etc/passwd,
#                       the timers are enabled with `systemctl --root`, nothing
#                       is started. A venv cannot be moved, so this is not a
#                       way to build a package for another machine.
#   FINEWS_PYTHON       the Python (3.11 or later) to build the venv from; python3
#   FINEWS_SOURCE       what pip installs; default: the checkout this script
#                       is in (the files the Dockerfile copies, built in a
#                       temporary folder, so nothing is written to the checkout
#                       and no stale build/ reaches the venv)
#   FINEWS_PIP_OPTIONS  more pip options, e.g. "--no-index --find-links /wheels"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
checkout="$(cd "$here/../.." && pwd)"
root="${FINEWS_ROOT:-/}"
root="${root%/}"
python="${FINEWS_PYTHON:-python3}"
read -r -a pip_options <<< "${FINEWS_PIP_OPTIONS:-}"

user=finews
venv=/opt/finews/.venv
config_dir=/etc/finews
data_dir=/var/lib/finews
unit_dir=/etc/systemd/system
units=(finews.service finews.timer finews-category.service finews-category.timer)
timers=(finews.timer finews-category.timer)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it creates a user and writes to /opt, /etc and /var/lib)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$python is not Python 3.11 or later (set FINEWS_PYTHON)"
"$python" -c 'import ensurepip, venv' 2>/dev/null \
    || die "$python cannot create a venv (on Debian and Ubuntu: apt-get install python3-venv)"

# The user, a system account with no login, its home the data folder.
if [ -z "$root" ]; then
    if ! getent passwd "$user" >/dev/null; then
        useradd --system --user-group --home-dir "$data_dir" --no-create-home \
            --shell /usr/sbin/nologin "$user"
        say "created user $user"
    fi
    uid="$(id -u "$user")"
    gid="$(id -g "$user")"
else
    mkdir -p "$root/etc"
    if ! grep -q "^$user:" "$root/etc/passwd" 2>/dev/null; then
        useradd --prefix "$root" --system --user-group --home-dir "$data_dir" --no-create-home \
            --shell /usr/sbin/nologin "$user"
        say "created user $user in $root/etc/passwd"
    fi
    uid="$(awk -F: -v name="$user" '$1 == name { print $3 }' "$root/etc/passwd")"
    gid="$(awk -F: -v name="$user" '$1 == name { print $4 }' "$root/etc/passwd")"
fi

# The venv. pip installs (or upgrades) finews and what it needs.
if [ -n "${FINEWS_SOURCE:-}" ]; then
    package="$FINEWS_SOURCE"
else
    package="$(mktemp -d)"
    trap 'rm -rf "$package"' EXIT
    cp -R "$checkout/pyproject.toml" "$checkout/README.md" "$checkout/finews" "$checkout/crawler" \
        "$checkout/pipelines" "$package/"
    find "$package" -name __pycache__ -prune -exec rm -rf {} +
fi
if [ ! -x "$root$venv/bin/python" ]; then
    mkdir -p "$(dirname "$root$venv")"
    "$python" -m venv "$root$venv"
    say "created $venv"
fi
"$root$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade \
    "${pip_options[@]}" "$package"
[ -x "$root$venv/bin/finews" ] || die "pip did not install $venv/bin/finews"
say "installed finews into $venv"

# Configuration: the shipped files only where none is, so local edits stay.
install -d -m 0755 "$root$config_dir"
for name in finews.toml finews-category.toml; do
    if [ ! -e "$root$config_dir/$name" ]; then
        install -m 0644 "$checkout/deploy/$name" "$root$config_dir/$name"
        say "wrote $config_dir/$name"
    fi
done
if [ ! -e "$root$config_dir/finews.env" ]; then
    (umask 077 && cat > "$root$config_dir/finews.env" <<'EOF'
# Environment of the finews services, read by systemd as root (keep it 0600).
# Set MONGO_URI: without it each run starts the embedded database on
# /var/lib/finews/db, and the two timers' runs overlap on it badly.
#MONGO_URI=mongodb://user:password@db.example:27017/
#MONGO_DATABASE=finews
EOF
    )
    say "wrote $config_dir/finews.env (set MONGO_URI there)"
fi

# The data folder (StateDirectory= would create it too, at the first start).
install -d -m 0750 -o "$uid" -g "$gid" "$root$data_dir"

# The units, then the timers enabled (and started, on a running systemd).
install -d -m 0755 "$root$unit_dir"
for unit in "${units[@]}"; do
    install -m 0644 "$here/$unit" "$root$unit_dir/$unit"
done
if [ -n "$root" ]; then
    systemctl --root="$root" enable "${timers[@]}"
elif [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now "${timers[@]}"
else
    systemctl enable "${timers[@]}"
    say "systemd is not running here: the timers start at the next boot"
fi
say "done; runs: systemctl list-timers 'finews*', logs: journalctl -u finews -u finews-category"
if ! grep -q '^MONGO_URI=' "$root$config_dir/finews.env"; then
    say "MONGO_URI is not set in $config_dir/finews.env: the runs use the embedded database"
fi
