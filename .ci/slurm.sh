#!/usr/bin/env bash
# A one-node Slurm cluster on this host, for the tests that submit real Slurm jobs.
#
#   .ci/slurm.sh start    install slurm-wlm and munge where missing (apt-get, as root), write
#                         /etc/slurm/slurm.conf for this node, start munged, slurmctld and slurmd,
#                         and wait until `sinfo` shows the node idle
#   .ci/slurm.sh stop     stop the three daemons this script started
#   .ci/slurm.sh status   `sinfo` of the cluster, or "not running"
#
# The cluster: one node (this host, with its real CPU count and memory as `slurmd -C` reports
# them), one partition `debug` (the default), no accounting (so no `sacct`), process tracking
# without cgroups (proctrack/linuxproc, task/none: works in containers), finished jobs forgotten
# after MinJobAge seconds. A slurm.conf that this script did not write is never replaced.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by fishbench .ci/slurm.sh"
SPOOL=/var/spool/slurm
LOGS=/var/log/slurm
MUNGE_RUN=/run/munge

die() { echo "slurm.sh: $*" >&2; exit 1; }

install_missing() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are missing; run this as root to install them."
    command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge
}

write_conf() {
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; it is left as it is."
    fi
    local node host
    node=$(slurmd -C | head -1)   # NodeName=<host> CPUs=... RealMemory=...
    host=$(hostname -s)
    mkdir -p /etc/slurm "$SPOOL/ctld" "$SPOOL/d" "$LOGS"
    cat >"$CONF" <<EOF
$MARK
ClusterName=fishbench
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MinJobAge=10
KillWait=10
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    [ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
    mkdir -p "$MUNGE_RUN" /var/log/munge /var/lib/munge
    chown munge:munge "$MUNGE_RUN" /var/log/munge /var/lib/munge
    runuser -u munge -- munged
    for _ in $(seq 20); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.5
    done
    die "munged does not answer; see /var/log/munge/munged.log."
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -o %t 2>/dev/null | head -1; }

start() {
    [ "$(id -u)" = 0 ] || die "run this as root (it starts Slurm's daemons)."
    install_missing
    write_conf
    start_munge
    running /run/slurmctld.pid || slurmctld
    running /run/slurmd.pid || slurmd
    local state=""
    for _ in $(seq 60); do
        state=$(node_state)
        case "$state" in
            idle|mix|alloc) echo "slurm.sh: node $(hostname -s) is $state"; sinfo; return ;;
            down*|drain*) scontrol update nodename="$(hostname -s)" state=resume || true ;;
        esac
        sleep 1
    done
    die "the node did not become idle in 60 s (state '${state}'); see $LOGS/slurmctld.log and $LOGS/slurmd.log."
}

stop_daemon() {  # name, pid file: SIGTERM, then wait up to 30 s for it to exit
    local pid
    pid=$(cat "$2" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 60); do
        kill -0 "$pid" 2>/dev/null || { echo "slurm.sh: stopped $1"; return; }
        sleep 0.5
    done
    die "$1 (pid $pid) did not exit within 30 s of SIGTERM."
}

stop() {
    stop_daemon slurmd /run/slurmd.pid
    stop_daemon slurmctld /run/slurmctld.pid
    stop_daemon munged "$MUNGE_RUN/munged.pid"
}

status() {
    if [ -n "$(node_state)" ]; then sinfo; else echo "slurm.sh: not running"; return 3; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
