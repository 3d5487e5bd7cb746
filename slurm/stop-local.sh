#!/usr/bin/env bash
# Stop the local SLURM cluster started by slurm/start-local.sh (idempotent).
# --slurm-only stops slurmd, slurmctld and slurmdbd but leaves munge and MariaDB running.
set -uo pipefail

say() { echo "slurm/stop-local: $*"; }

stop() {  # stop NAME PIDFILE: TERM the daemon and wait up to 15 s for it to go
    local name="$1" pidfile="$2" pid
    pid="$(cat "$pidfile" 2>/dev/null || pgrep -x "$name" | head -n1)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    say "stopping $name ($pid)"
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    say "$name did not stop in 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null
}

stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop slurmdbd /run/slurm/slurmdbd.pid
[ "${1:-}" = "--slurm-only" ] && exit 0
if pgrep -x mariadbd >/dev/null; then
    say "stopping mariadb"
    mariadb-admin shutdown 2>/dev/null || stop mariadbd /run/mysqld/mysqld.pid
fi
stop munged /run/munge/munged.pid
exit 0
