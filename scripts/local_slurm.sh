#!/usr/bin/env bash
# Local single-node SLURM cluster for rova's slow tests (and for trying the launcher by hand).
#
#   scripts/local_slurm.sh install   # apt-get the Debian packages (root; no-op when already installed)
#   scripts/local_slurm.sh start     # write slurm.conf, start munged/slurmctld/slurmd, wait for an idle node
#   scripts/local_slurm.sh status    # sinfo/squeue summary; exit 0 only when the node is up and usable
#   scripts/local_slurm.sh stop      # cancel jobs, stop the daemons this script started (by pid file)
#
# `start` prints exactly one line on stdout, `export SLURM_CONF=...`, so that
#   eval "$(scripts/local_slurm.sh start)"
# points sinfo/sbatch/submitit at the cluster. Every other message goes to stderr.
#
# Environment knobs (all optional):
#   ROVA_SLURM_DIR            state dir (conf, state, spool, logs, pid files)   [/tmp/rova-slurm]
#   ROVA_SLURM_CPUS           CPUs the node advertises                          [max(nproc, 4)]
#   ROVA_SLURM_MEM_MB         RealMemory of the node in MB                      [machine memory - headroom]
#   ROVA_SLURM_CTLD_PORT      slurmctld port                                    [6817]
#   ROVA_SLURM_SLURMD_PORT    slurmd port (the first node's; node k listens on this + k - 1)  [6818]
#   ROVA_SLURM_NODES          compute nodes, each its own slurmd on this machine [1]
#                             (1: node "localhost"; N > 1: nodes n1..nN, SLURM's multiple-slurmd mode,
#                             which Debian's slurmd is built with: `scontrol show config` says MULTIPLE_SLURMD)
#   ROVA_SLURM_START_TIMEOUT  seconds to wait for the node to come up idle      [60]
#   ROVA_SLURM_STOP_TIMEOUT   seconds to wait for each daemon to exit           [20]
#   ROVA_SLURM_KEEP_JOBS=1    `stop` leaves queued/running jobs alone (default: scancel them)
#
# Exit codes: 0 ok, 1 failure, 2 usage / not installed, 3 needs root, 4 no apt-get.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"   # slurmctld/slurmd/munged live in /usr/sbin

STATE_DIR="${ROVA_SLURM_DIR:-/tmp/rova-slurm}"
CONF="$STATE_DIR/slurm.conf"
RUN_DIR="$STATE_DIR/run"
LOG_DIR="$STATE_DIR/log"
CTLD_PID="$RUN_DIR/slurmctld.pid"
MUNGED_OURS="$RUN_DIR/munged.pid"          # exists only when this script started munged
MUNGE_SOCKET="/run/munge/munge.socket.2"
MUNGE_SYS_PID="/run/munge/munged.pid"
NODE_COUNT="${ROVA_SLURM_NODES:-1}"
[[ "$NODE_COUNT" =~ ^[1-9][0-9]*$ ]] || { echo "local_slurm: ERROR: ROVA_SLURM_NODES=$NODE_COUNT is not a positive integer" >&2; exit 2; }
if ((NODE_COUNT == 1)); then NODES=(localhost); else NODES=(); for ((k = 1; k <= NODE_COUNT; k++)); do NODES+=("n$k"); done; fi
PARTITION=debug
PACKAGES=(slurmctld slurmd slurm-client munge)
START_TIMEOUT="${ROVA_SLURM_START_TIMEOUT:-60}"
STOP_TIMEOUT="${ROVA_SLURM_STOP_TIMEOUT:-20}"

log() { echo "local_slurm: $*" >&2; }
die() { local code="${2:-1}"; log "ERROR: $1"; exit "$code"; }

# Client commands always talk to *this* cluster, whatever the caller's SLURM_CONF says.
slurm_cmd() { SLURM_CONF="$CONF" timeout 15 "$@"; }

packages_missing() {
    local p missing=()
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    echo "${missing[*]:-}"
}

# ----------------------------------------------------------------------------------------- install
cmd_install() {
    command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: not a Debian/Ubuntu system, cannot install SLURM" 4
    local missing
    missing="$(packages_missing)"
    if [[ -z "$missing" ]]; then
        log "packages already installed: ${PACKAGES[*]}"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; missing packages: $missing" 4
    [[ "$(id -u)" -eq 0 ]] || die "installing SLURM needs root (missing packages: $missing)" 3
    log "installing: $missing"
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the index when a package has no install candidate (fresh images have empty lists).
    local p need_update=0
    for p in $missing; do
        if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then need_update=1; fi
    done
    if [[ "$need_update" -eq 1 ]]; then
        apt-get update -qq || die "apt-get update failed"
    fi
    if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2; then
        # A stale index gives 404s on the .deb files: refresh once and retry.
        apt-get update -qq || die "apt-get update failed"
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2 || die "apt-get install failed"
    fi
    missing="$(packages_missing)"
    [[ -z "$missing" ]] || die "still missing after apt-get install: $missing"
    log "installed: ${PACKAGES[*]}"
}

# ------------------------------------------------------------------------------------------ helpers
# proc_alive PID NAME: PID is a live (not zombie) process whose comm is NAME (guards against pid reuse).
proc_alive() {
    local pid="$1" name="$2"
    [[ -n "$pid" && -r "/proc/$pid/comm" ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]] || return 1
    # A zombie (exited, not yet reaped by PID 1) is not alive: field 3 of /proc/PID/stat is the state.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

# pid_of PIDFILE: the pid in it, or nothing (daemons delete their pid file on exit, so tolerate races).
pid_of() { tr -dc '0-9' 2>/dev/null <"$1" || true; }

# pid_alive PIDFILE NAME
pid_alive() { [[ -s "$1" ]] && proc_alive "$(pid_of "$1")" "$2"; }

# slurmd_pid NODE: the pid file of NODE's slurmd (slurm.conf's SlurmdPidFile, %n = the node name).
slurmd_pid() { if ((NODE_COUNT == 1)); then echo "$RUN_DIR/slurmd.pid"; else echo "$RUN_DIR/slurmd-$1.pid"; fi; }

all_slurmd_alive() {
    local node
    for node in "${NODES[@]}"; do pid_alive "$(slurmd_pid "$node")" slurmd || return 1; done
}

any_slurmd_alive() {
    local node
    for node in "${NODES[@]}"; do pid_alive "$(slurmd_pid "$node")" slurmd && return 0; done
    return 1
}

node_state() { slurm_cmd sinfo -h -N -n "$1" -o '%T' 2>/dev/null | head -n1 || true; }

# nodes_usable: every node is in a usable state (the first one that is not is named in $BAD_NODE/$BAD_STATE).
nodes_usable() {
    local node state
    for node in "${NODES[@]}"; do
        state="$(node_state "$node")"
        if ! state_ok "$state"; then BAD_NODE="$node" BAD_STATE="$state"; return 1; fi
    done
}

state_ok() {
    case "$1" in
        idle | mixed | allocated | completing | planned) return 0 ;;
        *) return 1 ;;
    esac
}

healthy() {
    [[ -f "$CONF" ]] || return 1
    pid_alive "$CTLD_PID" slurmctld || return 1
    all_slurmd_alive || return 1
    munge_ok || return 1
    nodes_usable
}

munge_ok() {
    [[ -S "$MUNGE_SOCKET" ]] &&
        munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1
}

tail_logs() {
    local f
    for f in "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd*.log; do
        if [[ -f "$f" ]]; then
            echo "----- last lines of $f -----" >&2
            tail -n 25 "$f" >&2
        fi
    done
}

need_root_to_start() {
    [[ "$(id -u)" -eq 0 ]] || die "starting slurmd/munged needs root (the cluster at $STATE_DIR is not running)" 3
}

mem_mb() {
    # Machine memory, capped by a cgroup v2/v1 limit when there is one.
    local mb limit
    mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
    for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
        if [[ -r "$f" ]]; then
            limit="$(cat "$f")"
            if [[ "$limit" =~ ^[0-9]+$ ]] && ((limit / 1048576 < mb)); then mb=$((limit / 1048576)); fi
        fi
    done
    echo "$mb"
}

# ----------------------------------------------------------------------------------------- slurm.conf
write_conf() {
    local real_cpus cpus total headroom mem def_mem node_suffix="" node_line
    real_cpus="$(nproc)"
    cpus="${ROVA_SLURM_CPUS:-$((real_cpus > 4 ? real_cpus : 4))}"
    total="$(mem_mb)"
    headroom=$((total / 10 > 1024 ? total / 10 : 1024))   # leave 10% (at least 1 GiB) to the OS
    mem="${ROVA_SLURM_MEM_MB:-$(((total - headroom) / NODE_COUNT))}"
    ((mem >= 512)) || mem=512
    def_mem=$((mem / cpus))
    local port="${ROVA_SLURM_SLURMD_PORT:-6818}"
    if ((NODE_COUNT == 1)); then
        node_line="NodeName=localhost NodeAddr=127.0.0.1"
    else
        # Several slurmd on this one host: each node its own port, and %n (the node name) in its files.
        node_suffix="-%n"
        node_line="NodeName=n[1-$NODE_COUNT] NodeHostname=localhost NodeAddr=127.0.0.1 Port=$port-$((port + NODE_COUNT - 1))"
    fi
    cat >"$CONF" <<EOF
# Generated by scripts/local_slurm.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); regenerated on every cold start.
# Test cluster: the controller and its ${#NODES[@]} compute node(s) (${NODES[*]}) all run on this machine.
ClusterName=rova-local
SlurmctldHost=localhost
SlurmctldPort=${ROVA_SLURM_CTLD_PORT:-6817}
SlurmdPort=$port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job may start again cred_expire + 1 s after its requeue (slurm.conf(5); default 120 s, which the
# two requeue tests spent waiting). 30 s still leaves a step's credential ample time to launch on localhost.
AuthInfo=cred_expire=${ROVA_SLURM_REQUEUE_DELAY:-30}
MpiDefault=none

# Paths: everything lives in the state dir, nothing in /var or /etc.
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool/slurmd$node_suffix
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$RUN_DIR/slurmd$node_suffix.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd$node_suffix.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups (containers/gVisor often lack a usable cgroup tree), no accounting daemon.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none

# Scheduling. The node advertises $cpus CPUs on a $real_cpus-core machine (ROVA_SLURM_CPUS): slurm then
# runs $cpus one-CPU jobs at once (e.g. 3-4 tasks of a job array), which is what the tests need to see
# real parallelism; the kernel time-shares the cores. SlurmdParameters=config_overrides keeps slurmd
# from draining the node because it has fewer real cores than configured. Memory is a consumable
# resource, and DefMemPerCPU gives a job without --mem a per-CPU share instead of the whole node
# (which would serialise all jobs).
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
DefMemPerCPU=$def_mem

# Fast failure detection, automatic recovery, requeue allowed (the launcher relies on requeue).
SlurmdTimeout=30
SlurmctldTimeout=30
MessageTimeout=10
KillWait=5
InactiveLimit=0
MinJobAge=300
ReturnToService=2
JobRequeue=1

$node_line CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    log "wrote $CONF (${NODES[*]}: CPUs=$cpus each on $real_cpus cores, RealMemory=${mem}MB each of ${total}MB)"
}

# ------------------------------------------------------------------------------------------- start
start_munge() {
    if munge_ok; then
        return 0
    fi
    [[ -r /etc/munge/munge.key ]] || {
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    }
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock" 2>/dev/null || true
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged failed to start (see /var/log/munge/munged.log)"
    local i
    for ((i = 0; i < 50; i++)); do
        munge_ok && break
        sleep 0.2
    done
    munge_ok || die "munged started but munge/unmunge does not work (see /var/log/munge/munged.log)"
    [[ -s "$MUNGE_SYS_PID" ]] && cp "$MUNGE_SYS_PID" "$MUNGED_OURS"
}

resume_node() {
    log "node $1 state is '$2': scontrol update nodename=$1 state=resume"
    slurm_cmd scontrol update nodename="$1" state=resume >&2 2>/dev/null || true
}

cmd_start() {
    local bin
    for bin in slurmctld slurmd munged munge sinfo; do
        command -v "$bin" >/dev/null 2>&1 || die "SLURM is not installed ($bin missing): run '$0 install' first" 2
    done
    if healthy; then
        log "already running (state dir $STATE_DIR, nodes ${NODES[*]})"
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    need_root_to_start
    local t0=$SECONDS
    mkdir -p "$STATE_DIR/state" "$RUN_DIR" "$LOG_DIR"
    local node
    for node in "${NODES[@]}"; do
        if ((NODE_COUNT == 1)); then mkdir -p "$STATE_DIR/spool/slurmd"; else mkdir -p "$STATE_DIR/spool/slurmd-$node"; fi
    done
    start_munge

    local ctld_up=0 slurmd_up=0
    pid_alive "$CTLD_PID" slurmctld && ctld_up=1
    any_slurmd_alive && slurmd_up=1
    if ((!ctld_up && !slurmd_up)) || [[ ! -f "$CONF" ]]; then
        ((ctld_up)) && die "slurmctld (pid $(pid_of "$CTLD_PID")) runs without $CONF; run '$0 stop' first"
        ((slurmd_up)) && die "a slurmd of $STATE_DIR runs without $CONF; run '$0 stop' first"
        write_conf
    fi
    if ((!ctld_up)); then
        log "starting slurmctld"
        rm -f "$CTLD_PID"
        SLURM_CONF="$CONF" slurmctld -f "$CONF" || { tail_logs; die "slurmctld failed to start"; }
    fi
    for node in "${NODES[@]}"; do
        pid_alive "$(slurmd_pid "$node")" slurmd && continue
        log "starting slurmd (node $node)"
        rm -f "$(slurmd_pid "$node")"
        SLURM_CONF="$CONF" slurmd -f "$CONF" -N "$node" || { tail_logs; die "slurmd of node $node failed to start"; }
    done

    local last_resume=-100 deadline=$((SECONDS + START_TIMEOUT))
    BAD_NODE="${NODES[0]}" BAD_STATE=""
    while ((SECONDS < deadline)); do
        pid_alive "$CTLD_PID" slurmctld || { sleep 0.5; pid_alive "$CTLD_PID" slurmctld; } ||
            { tail_logs; die "slurmctld exited during start-up"; }
        if nodes_usable; then
            all_slurmd_alive || { tail_logs; die "a slurmd is not running"; }
            log "up in $((SECONDS - t0))s: nodes ${NODES[*]} usable (partition $PARTITION, conf $CONF)"
            echo "export SLURM_CONF=$CONF"
            return 0
        fi
        case "$BAD_STATE" in
            down* | drain* | fail* | *drain* | *down*)
                if ((SECONDS - last_resume >= 3)); then
                    resume_node "$BAD_NODE" "$BAD_STATE"
                    last_resume=$SECONDS
                fi
                ;;
        esac
        sleep 0.5
    done
    tail_logs
    die "node $BAD_NODE not usable after ${START_TIMEOUT}s (last state: '${BAD_STATE:-no answer from slurmctld}')"
}

# -------------------------------------------------------------------------------------------- stop
stop_pidfile() {
    local file="$1" name="$2" pid i
    pid="$(pid_of "$file")"
    if ! proc_alive "$pid" "$name"; then
        rm -f "$file"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
        proc_alive "$pid" "$name" || break
        sleep 0.2
    done
    if proc_alive "$pid" "$name"; then
        log "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$file"
}

cmd_stop() {
    local anything=0
    if pid_alive "$CTLD_PID" slurmctld && [[ "${ROVA_SLURM_KEEP_JOBS:-0}" != 1 ]]; then
        local jobs
        jobs="$(slurm_cmd squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ' || true)"
        if [[ -n "${jobs// /}" ]]; then
            log "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            slurm_cmd scancel $jobs 2>/dev/null || true
            local i
            for ((i = 0; i < STOP_TIMEOUT * 2; i++)); do
                [[ -z "$(slurm_cmd squeue -h -o '%A' 2>/dev/null || true)" ]] && break
                sleep 0.5
            done
        fi
    fi
    any_slurmd_alive && anything=1
    pid_alive "$CTLD_PID" slurmctld && anything=1
    local node
    for node in "${NODES[@]}"; do stop_pidfile "$(slurmd_pid "$node")" slurmd; done
    stop_pidfile "$CTLD_PID" slurmctld
    if [[ -f "$MUNGED_OURS" ]]; then
        pid_alive "$MUNGED_OURS" munged && anything=1
        stop_pidfile "$MUNGED_OURS" munged
    fi
    if ((anything)); then log "stopped (state dir $STATE_DIR kept)"; else log "not running"; fi
}

# ------------------------------------------------------------------------------------------ status
cmd_status() {
    local rc=0
    if ! [[ -f "$CONF" ]]; then
        log "down: no $CONF (never started?)"
        return 1
    fi
    if pid_alive "$CTLD_PID" slurmctld; then log "slurmctld running (pid $(pid_of "$CTLD_PID"))"; else log "slurmctld NOT running"; rc=1; fi
    local node f
    for node in "${NODES[@]}"; do
        f="$(slurmd_pid "$node")"
        if pid_alive "$f" slurmd; then log "slurmd of $node running (pid $(pid_of "$f"))"; else log "slurmd of $node NOT running"; rc=1; fi
    done
    if munge_ok; then log "munge ok"; else log "munge NOT working"; rc=1; fi
    if ((rc == 0)); then
        slurm_cmd sinfo -N -o '%N %P %T %c %m' >&2 || rc=1
        slurm_cmd squeue -o '%.14i %.9P %.12j %.8T %.10M %R' >&2 || rc=1
        nodes_usable || { log "node $BAD_NODE is not usable: '$BAD_STATE'"; rc=1; }
    fi
    if ((rc == 0)); then log "up: export SLURM_CONF=$CONF"; else log "down"; fi
    return "$rc"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {install|start|stop|status}" >&2
        exit 2
        ;;
esac
