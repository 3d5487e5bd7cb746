#!/usr/bin/env bash
# Stop the local SLURM cluster started by slurm/start-local.sh (idempotent).
# --slurm-only stops slurmd, slurmctld and slurmdbd but leaves munge and MariaDB running.
set -uo pipefail

say() { echo "slurm/stop-local: $*"; }
alive() { ps -p "$1" -o stat= 2>/dev/null | grep -q '^[^Z]'; }  # zombies do not count

stop() {  # stop NAME PIDFILE: TERM the daemon and wait up to 15 s for it to go
    local name="$1" pidfile="$2" pid
    pid="$(cat "$pidfile" 2>/dev/null)"
    alive "${pid:-0}" || pid="$(ps -C "$name" -o pid=,stat= | awk '$2 !~ /^Z/ {print $1; exit}')"
    [ -n "$pid" ] && alive "$pid" || return 0
    say "stopping $name ($pid)"
    kill -TERM "$pid"
    for _ in $(seq 150); do alive "$pid" || return 0; sleep 0.1; done
    say "$name did not stop in 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null
}

stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop slurmdbd /run/slurm/slurmdbd.pid
[ "${1:-}" = "--slurm-only" ] && exit 0
if ps -C mariadbd -o stat= | grep -q '^[^Z]'; then
    say "stopping mariadb"
    mariadb-admin shutdown 2>/dev/null || stop mariadbd /run/mysqld/mysqld.pid
fi
stop munged /run/munge/munged.pid
exit 0
