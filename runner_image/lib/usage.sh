# shellcheck shell=bash
# Resource usage of the pod so far, for right-sizing: CPU time and peak memory from the container's own
# cgroup (what the kubelet accounts, so it works on GKE without the metrics API), or the CPU time of the
# processes the entrypoint waited for (rusage) when no cgroup of its own is visible.

# runner_usage
#   Print `cpu_secs=S.mmm mem_peak=BYTES usage=cgroup` from this container's own cgroup (v1:
#   memory.max_usage_in_bytes and cpuacct.usage; v2: memory.peak and cpu.stat usage_usec; mem_peak is left
#   out when the kernel keeps no peak), else `cpu_secs=S.mmm usage=rusage` (user + system time of the
#   children this shell has waited for; no peak memory: it would be a guess). A cgroup counts as the
#   container's own when the mount shows only its subtree or it is a cgroup namespace's root; a host's
#   hierarchy (a plain process, or the node's root cgroup) is shared with others and is not used.
#   Environment: RUNNER_CGROUP_ROOT (default /sys/fs/cgroup), RUNNER_PROC_CGROUP (default /proc/self/cgroup).
#   Call it in the shell that ran the processes (not in $(...): a subshell has no children of its own).
#   Outputs: sets RUNNER_USAGE to the key=value pairs. Returns 0.
# shellcheck disable=SC2034  # RUNNER_USAGE is read by the entrypoint
runner_usage() {
  { local _runner_xt="$-"; set +x; } 2>/dev/null
  local dir cpu="" mem=""
  if dir="$(_runner_cgroup_dir "")" && [[ -f "${dir}/cpu.stat" ]]; then
    cpu="$(_runner_cgroup_v2_cpu "${dir}/cpu.stat")"
    [[ ! -r "${dir}/memory.peak" ]] || mem="$(<"${dir}/memory.peak")"
  elif dir="$(_runner_cgroup_dir cpuacct)" && [[ -r "${dir}/cpuacct.usage" ]]; then
    cpu="$(_runner_ns_secs "$(<"${dir}/cpuacct.usage")")"
    if dir="$(_runner_cgroup_dir memory)" && [[ -r "${dir}/memory.max_usage_in_bytes" ]]; then
      mem="$(<"${dir}/memory.max_usage_in_bytes")"
    fi
  fi
  [[ "${mem}" =~ ^[0-9]+$ ]] || mem=""
  if [[ "${cpu}" =~ ^[0-9]+\.[0-9]+$ ]]; then
    RUNNER_USAGE="cpu_secs=${cpu}${mem:+ mem_peak=${mem}} usage=cgroup"
  else
    _runner_children_cpu
    RUNNER_USAGE="cpu_secs=${_RUNNER_CHILDREN_CPU} usage=rusage"
  fi
  { _runner_xt_restore 0; } 2>/dev/null
}

# _runner_cgroup_dir CONTROLLER: the directory of this process's own cgroup for a v1 CONTROLLER (memory,
#   cpuacct), or of the v2 unified hierarchy when CONTROLLER is empty. Returns 1 when only a shared cgroup
#   is visible (see runner_usage) or the hierarchy is not there.
_runner_cgroup_dir() {
  local ctrl="$1" root="${RUNNER_CGROUP_ROOT:-/sys/fs/cgroup}" line rest subsys path="" found="" base
  while IFS= read -r line; do
    rest="${line#*:}"
    subsys="${rest%%:*}"
    if [[ -z "${ctrl}" && "${line}" == 0::* ]] || [[ -n "${ctrl}" && ",${subsys}," == *",${ctrl},"* ]]; then
      path="${rest#*:}"
      found=1
      break
    fi
  done <"${RUNNER_PROC_CGROUP:-/proc/self/cgroup}"
  [[ -n "${found}" ]] || return 1
  base="${root}${ctrl:+/${ctrl}}"
  if [[ -z "${ctrl}" ]]; then
    # v2 only when this is a unified mount (v1 machines may list a 0:: line too).
    [[ -f "${base}/cgroup.controllers" ]] || return 1
  fi
  [[ -d "${base}" ]] || return 1
  if [[ "${path}" != "/" ]]; then
    # The host's hierarchy is visible: the cgroup holding us may hold others too.
    [[ ! -d "${base}${path}" ]] || return 1
  fi
  # A real hierarchy root (the node's, not a namespace's) accounts for everything on the machine.
  [[ ! -e "${base}/cgroup.sane_behavior" ]] || return 1
  [[ -n "${ctrl}" || -e "${base}/cgroup.events" ]] || return 1
  printf '%s\n' "${base}"
}

# _runner_cgroup_v2_cpu FILE: seconds of CPU from a v2 cpu.stat (usage_usec).
_runner_cgroup_v2_cpu() {
  local key value
  while read -r key value; do
    if [[ "${key}" == usage_usec && "${value}" =~ ^[0-9]+$ ]]; then
      _runner_ns_secs "$((value * 1000))"
      return 0
    fi
  done <"$1"
}

# _runner_ns_secs NANOSECONDS: seconds with three decimals.
_runner_ns_secs() {
  [[ "$1" =~ ^[0-9]+$ ]] || return 0
  printf '%d.%03d\n' "$(($1 / 1000000000))" "$(($1 / 1000000 % 1000))"
}

# _runner_children_cpu: set _RUNNER_CHILDREN_CPU to the user + system seconds of the children this shell
#   waited for (the second line of bash's `times`, run in this shell: a pipe or $(...) would fork).
_runner_children_cpu() {
  local tmp user="" sys="" total=0 part m s
  _RUNNER_CHILDREN_CPU="0.000"
  tmp="$(mktemp)" || return 0
  times >"${tmp}"
  { read -r _ && read -r user sys; } <"${tmp}" || true
  rm -f "${tmp}"
  for part in "${user}" "${sys}"; do
    [[ "${part}" =~ ^([0-9]+)m([0-9]+)[.,]([0-9]{3})s$ ]] || continue
    m="${BASH_REMATCH[1]}"
    s="$((10#${BASH_REMATCH[2]} * 1000 + 10#${BASH_REMATCH[3]}))"
    total=$((total + m * 60000 + s))
  done
  printf -v _RUNNER_CHILDREN_CPU '%d.%03d' "$((total / 1000))" "$((total % 1000))"
}
