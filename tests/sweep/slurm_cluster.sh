#!/bin/bash
# A single-node Slurm on loopback for tests (/work/shared/slurm-single-node.md
# has the recipe): munged, slurmctld and slurmd from Debian in the foreground
# under a temporary folder, no systemd.
#
#   slurm_cluster.sh start STATE   starts them; STATE (a file) then holds
#                                  "BASE" (their folder); or "unavailable: WHY"
#                                  when Slurm cannot start here (exit 0 either way)
#   slurm_cluster.sh stop STATE    stops every daemon start began, removes BASE
set -uo pipefail
cmd=${1:?start|stop} state=${2:?state file}
export PATH=/usr/sbin:/usr/bin:$PATH

wait_for() {  # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" > /dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

stop() {
  [[ -f $state ]] || return 0
  local base
  base=$(cat "$state")
  rm -f "$state"
  [[ $base == unavailable* || ! -d $base ]] && return 0
  export SLURM_CONF=$base/slurm.conf
  scancel --user="$(id -un)" > /dev/null 2>&1
  scontrol shutdown > /dev/null 2>&1
  for name in slurmd slurmctld munged; do
    [[ -f $base/$name.pid ]] || continue
    local pid
    pid=$(cat "$base/$name.pid")
    # Only the daemon this script started (its pid file), never one by name.
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; [[ $name == munged ]] && kill "$pid" 2> /dev/null; sleep 0.1; done
    kill -0 "$pid" 2> /dev/null && kill -9 "$pid" 2> /dev/null
  done
  rm -rf "$base"
}

unavailable() {
  echo "unavailable: $*" > "$state.tmp" && mv "$state.tmp" "$state"
  echo "slurm_cluster: Slurm cannot start here: $*" >&2
  exit 0
}

start() {
  stop
  for tool in munged mungekey munge unmunge slurmctld slurmd sbatch squeue scontrol sinfo; do
    command -v $tool > /dev/null || unavailable "$tool is not installed (scripts/setup-deps.sh installs slurm-wlm and munge)"
  done
  local base
  base=$(mktemp -d /tmp/accsim-slurm-XXXXXX) || unavailable "mktemp failed"
  chmod 755 "$base"
  echo "$base" > "$state"
  mkdir -m 755 -p "$base/munge" "$base/state" "$base/spool" "$base/log"
  local user
  user=$(id -un)
  mungekey -c -k "$base/munge/munge.key" > "$base/log/mungekey.log" 2>&1 || { stop; unavailable "mungekey failed"; }
  munged -F --key-file="$base/munge/munge.key" --socket="$base/munge/munge.sock" --pid-file="$base/munge/munged.pid" \
    --seed-file="$base/munge/seed" --log-file="$base/log/munged.log" < /dev/null > "$base/log/munged.out" 2>&1 &
  echo $! > "$base/munged.pid"
  wait_for 10 bash -c "munge -n -S '$base/munge/munge.sock' | unmunge -S '$base/munge/munge.sock'" ||
    { stop; unavailable "munged did not start (see its log)"; }
  # A free port pair on loopback.
  local port
  port=$(/usr/bin/python3 -c 'import socket
for p in range(20000, 40000, 2):
    try:
        a = socket.socket(); a.bind(("127.0.0.1", p)); b = socket.socket(); b.bind(("127.0.0.1", p + 1))
        print(p); break
    except OSError: pass')
  local node
  node=$(slurmd -C 2> /dev/null | head -1 | sed 's/^NodeName=[^ ]* //') || true
  [[ -n $node ]] || { stop; unavailable "slurmd -C printed nothing"; }
  cat > "$base/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$base/munge/munge.sock
StateSaveLocation=$base/state
SlurmdSpoolDir=$base/spool
SlurmctldPidFile=$base/slurmctld.internal.pid
SlurmdPidFile=$base/slurmd.internal.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=ci-node NodeAddr=127.0.0.1 NodeHostname=localhost $node
PartitionName=debug Nodes=ci-node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
  export SLURM_CONF=$base/slurm.conf
  slurmctld -D < /dev/null > "$base/log/slurmctld.out" 2>&1 &
  echo $! > "$base/slurmctld.pid"
  wait_for 20 bash -c "scontrol ping | grep -q UP" || { stop; unavailable "slurmctld did not come up (see its log)"; }
  slurmd -D -N ci-node < /dev/null > "$base/log/slurmd.out" 2>&1 &
  echo $! > "$base/slurmd.pid"
  wait_for 20 bash -c "sinfo -h -n ci-node -o %T | grep -q idle" || { stop; unavailable "slurmd did not bring the node up (see its log)"; }
  echo "slurm_cluster: up in $base" >&2
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop STATE" >&2; exit 2 ;;
esac
