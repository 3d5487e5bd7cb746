#!/usr/bin/env bash
# Start a single-node SLURM 22.05 cluster on loopback, for development and CI.
#
# Idempotent: installs what is missing (munge, slurmctld, slurmd, slurm-client, slurmdbd,
# mariadb-server), writes the configs (slurm/templates/*.in), starts whichever daemon is not
# running (restarting them all if a config changed) and waits until the node `localhost` is up.
# Accounting (slurmdbd + MariaDB) is on: without it sacct fails and submitit never learns that a
# job was cancelled. Partitions: `debug` (default) and `high`, which preempts `debug` by requeue.
#
# Facts about these machines that shaped the config: no systemd and no cgroups (so
# proctrack/linuxproc and task/none); 22.05 has no PreemptParameters (the preemption signal
# needs SlurmctldParameters=preempt_send_user_signal); a requeued job waits ~120 s before it
# may run again unless AuthInfo=cred_expire is short, and that is read at daemon start.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATES="$HERE/templates"
ETC=/etc/slurm
LOG=/var/log/slurm
DB_PASS=lmlab-local-slurm    # loopback-only database of a throwaway cluster
WAIT_S=${LMLAB_SLURM_WAIT_S:-120}

say() { echo "slurm/start-local: $*"; }
die() { echo "slurm/start-local: error: $*" >&2; exit 1; }
# A daemon counts as running unless it is a zombie: this machine's init may reap late.
running() { ps -C "$1" -o stat= 2>/dev/null | grep -q '^[^Z]'; }
clear_stale() {  # clear_stale PIDFILE...: daemons refuse to start while a pid file names a zombie
    local f pid
    for f in "$@"; do
        pid="$(cat "$f" 2>/dev/null)" || continue
        ps -p "$pid" -o stat= 2>/dev/null | grep -q '^[^Z]' || rm -f "$f"
    done
}

install_packages() {
    local pkgs=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}) and not root to install them"
    say "installing ${missing[*]}"
    apt-get update -q >/dev/null
    # Keep the packages' maintainer scripts from starting daemons: this script starts them.
    local policy=/usr/sbin/policy-rc.d had_policy=1
    [ -e "$policy" ] || { had_policy=0; printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
        || { [ $had_policy -eq 1 ] || rm -f "$policy"; die "apt-get install ${missing[*]} failed"; }
    [ $had_policy -eq 1 ] || rm -f "$policy"
}

render() {  # render TEMPLATE DEST: fill @KEY@ placeholders; prints "changed" if DEST changed
    local tmp
    tmp="$(mktemp)"
    sed -e "s|@CPUS@|$CPUS|g" -e "s|@MEMORY_MB@|$MEMORY_MB|g" -e "s|@DB_PASS@|$DB_PASS|g" \
        -e "s|@LOG@|$LOG|g" "$1" >"$tmp"
    if [ -f "$2" ] && cmp -s "$tmp" "$2"; then rm -f "$tmp"; else mv "$tmp" "$2"; echo changed; fi
}

write_configs() {
    CPUS="$(nproc)"
    # Leave 10% of memory to the OS so that --mem requests match what the node really has.
    MEMORY_MB="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
    mkdir -p "$ETC" "$LOG" /var/spool/slurmctld /var/spool/slurmd /run/slurm
    local changed=""
    changed+="$(render "$TEMPLATES/slurm.conf.in" "$ETC/slurm.conf")"
    changed+="$(render "$TEMPLATES/slurmdbd.conf.in" "$ETC/slurmdbd.conf")"
    chmod 600 "$ETC/slurmdbd.conf"   # slurmdbd refuses a config others can read
    chmod 644 "$ETC/slurm.conf"
    if [ -n "$changed" ] && { running slurmctld || running slurmd || running slurmdbd; }; then
        say "config changed: restarting the SLURM daemons"
        bash "$HERE/stop-local.sh" --slurm-only
    fi
}

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if ! running munged; then
        say "starting munged"
        clear_stale /run/munge/munged.pid
        runuser -u munge -- /usr/sbin/munged
    fi
    for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "munge does not answer (see /var/log/munge/munged.log)"
}

start_mariadb() {
    if ! running mariadbd; then
        say "starting mariadb"
        mkdir -p /run/mysqld /var/log/mysql && chown mysql:mysql /run/mysqld /var/log/mysql
        clear_stale /run/mysqld/mysqld.pid
        [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
        (cd / && exec nohup mysqld_safe --user=mysql --log-error=/var/log/mysql/error.log \
            </dev/null >/dev/null 2>&1) &
    fi
    for _ in $(seq 150); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.2; done
    mariadb-admin ping >/dev/null 2>&1 || die "mariadb does not answer (see /var/log/mysql/error.log)"
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
    if ! running slurmdbd; then
        say "starting slurmdbd"
        clear_stale /run/slurm/slurmdbd.pid
        slurmdbd
    fi
    for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
    sacctmgr -n list cluster >/dev/null 2>&1 || die "slurmdbd does not answer (see $LOG/slurmdbd.log)"
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx lmlab; then
        sacctmgr -i add cluster lmlab >/dev/null
    fi
}

start_slurm() {
    if ! running slurmctld; then
        say "starting slurmctld"
        clear_stale /run/slurm/slurmctld.pid
        slurmctld
    fi
    for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
    if ! running slurmd; then
        say "starting slurmd"
        clear_stale /run/slurm/slurmd.pid
        slurmd -N localhost
    fi
}

wait_for_node() {
    local state=""
    for _ in $(seq $((WAIT_S * 2))); do
        state="$(sinfo -h -n localhost -o %T 2>/dev/null | head -n1 | tr -d '*~#')"
        case "$state" in
            idle|mixed|allocated|completing) say "node localhost is $state"; return 0 ;;
            down|drained|draining|fail) scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    die "node localhost is '${state:-unknown}' after ${WAIT_S}s (see $LOG/slurmctld.log, $LOG/slurmd.log)"
}

install_packages
write_configs
start_munge
start_mariadb
start_slurmdbd
start_slurm
wait_for_node
