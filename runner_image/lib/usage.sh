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
  local dir cpu="" mem="" ns=""
  if _runner_cgroup_dir dir "" && [[ -f "${dir}/cpu.stat" ]]; then
    _runner_cgroup_v2_cpu cpu "${dir}/cpu.stat"
    [[ ! -r "${dir}/memory.peak" ]] || _runner_file_value mem "${dir}/memory.peak"
  elif _runner_cgroup_dir dir cpuacct && [[ -r "${dir}/cpuacct.usage" ]]; then
    _runner_file_value ns "${dir}/cpuacct.usage"
    _runner_ns_secs cpu "${ns}"
    if _runner_cgroup_dir dir memory && [[ -r "${dir}/memory.max_usage_in_bytes" ]]; then
      _runner_file_value mem "${dir}/memory.max_usage_in_bytes"
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

# _runner_cgroup_dir VAR CONTROLLER: set VAR to the directory of this process's own cgroup for a v1
#   CONTROLLER (memory, cpuacct), or of the v2 unified hierarchy when CONTROLLER is empty. Returns 1 (VAR
#   untouched) when only a shared cgroup is visible (see runner_usage) or the hierarchy is not there.
_runner_cgroup_dir() {
  local _cg_ctrl="$2" _cg_root="${RUNNER_CGROUP_ROOT:-/sys/fs/cgroup}" _cg_line _cg_rest _cg_subsys _cg_path=""
  local _cg_found="" _cg_base
  while IFS= read -r _cg_line; do
    _cg_rest="${_cg_line#*:}"
    _cg_subsys="${_cg_rest%%:*}"
    if [[ -z "${_cg_ctrl}" && "${_cg_line}" == 0::* ]] || [[ -n "${_cg_ctrl}" && ",${_cg_subsys}," == *",${_cg_ctrl},"* ]]; then
      _cg_path="${_cg_rest#*:}"
      _cg_found=1
      break
    fi
  done <"${RUNNER_PROC_CGROUP:-/proc/self/cgroup}"
  [[ -n "${_cg_found}" ]] || return 1
  _cg_base="${_cg_root}${_cg_ctrl:+/${_cg_ctrl}}"
  if [[ -z "${_cg_ctrl}" ]]; then
    # v2 only when this is a unified mount (v1 machines may list a 0:: line too).
    [[ -f "${_cg_base}/cgroup.controllers" ]] || return 1
  fi
  [[ -d "${_cg_base}" ]] || return 1
  if [[ "${_cg_path}" != "/" ]]; then
    # The host's hierarchy is visible: the cgroup holding us may hold others too.
    [[ ! -d "${_cg_base}${_cg_path}" ]] || return 1
  fi
  # A real hierarchy root (the node's, not a namespace's) accounts for everything on the machine.
  [[ ! -e "${_cg_base}/cgroup.sane_behavior" ]] || return 1
  [[ -n "${_cg_ctrl}" || -e "${_cg_base}/cgroup.events" ]] || return 1
  printf -v "$1" '%s' "${_cg_base}"
}

# _runner_cgroup_v2_cpu VAR FILE: set VAR to the seconds of CPU from a v2 cpu.stat (usage_usec); VAR is
#   untouched when FILE has no usage_usec line.
_runner_cgroup_v2_cpu() {
  local _c2_key _c2_value
  while read -r _c2_key _c2_value; do
    if [[ "${_c2_key}" == usage_usec && "${_c2_value}" =~ ^[0-9]+$ ]]; then
      _runner_ns_secs "$1" "$((_c2_value * 1000))"
      return 0
    fi
  done <"$2"
}

# _runner_ns_secs VAR NANOSECONDS: set VAR to the seconds with three decimals (untouched when NANOSECONDS
#   is not a number).
_runner_ns_secs() {
  [[ "$2" =~ ^[0-9]+$ ]] || return 0
  printf -v "$1" '%d.%03d' "$(($2 / 1000000000))" "$(($2 / 1000000 % 1000))"
}

# _runner_file_value VAR FILE: set VAR to FILE's content without its trailing newlines, as "$(<FILE)" gives
#   it, without a fork. Returns 1 (VAR untouched) when FILE cannot be opened.
_runner_file_value() {
  local _fv_text=""
  { IFS= read -r -d '' _fv_text || true; } <"$2" || return 1
  printf -v "$1" '%s' "${_fv_text%"${_fv_text##*[!$'\n']}"}"
}

# _runner_children_cpu: set _RUNNER_CHILDREN_CPU to the user + system seconds of the children this shell
#   waited for (the second line of bash's `times`, run in this shell: a pipe or $(...) would fork). `times`
#   writes to ${RUNNER_WORKDIR}/.runner/times.PID (the entrypoint's private directory: no mktemp, no rm;
#   the file is overwritten at each call) when that directory exists, else to a mktemp file removed after.
_runner_children_cpu() {
  local tmp="" keep="" user="" sys="" total=0 part m s
  _RUNNER_CHILDREN_CPU="0.000"
  if [[ -n "${RUNNER_WORKDIR:-}" && -d "${RUNNER_WORKDIR}/.runner" && -w "${RUNNER_WORKDIR}/.runner" ]]; then
    tmp="${RUNNER_WORKDIR}/.runner/times.${BASHPID}"
    keep=1
  fi
  [[ -n "${tmp}" ]] || tmp="$(mktemp)" || return 0
  times >"${tmp}" || return 0
  { read -r _ && read -r user sys; } <"${tmp}" || true
  [[ -n "${keep}" ]] || rm -f "${tmp}"
  for part in "${user}" "${sys}"; do
    [[ "${part}" =~ ^([0-9]+)m([0-9]+)[.,]([0-9]{3})s$ ]] || continue
    m="${BASH_REMATCH[1]}"
    s="$((10#${BASH_REMATCH[2]} * 1000 + 10#${BASH_REMATCH[3]}))"
    total=$((total + m * 60000 + s))
  done
  printf -v _RUNNER_CHILDREN_CPU '%d.%03d' "$((total / 1000))" "$((total % 1000))"
}
