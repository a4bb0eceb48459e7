#!/usr/bin/env bats
# shellcheck disable=SC2030,SC2031,SC2016  # bats runs each test in a subshell; quoted code is written to files
# runner_usage: CPU time and peak memory from the container's own cgroup, or CPU from rusage when only a
# shared (host) cgroup is visible. Cgroup trees are built under the test's temp dir.

setup() {
  # shellcheck source=runner_image/lib/runner.sh
  source "${BATS_TEST_DIRNAME}/../../runner_image/lib/runner.sh"
  CG="${BATS_TEST_TMPDIR}/cgroup"
  export RUNNER_CGROUP_ROOT="${CG}" RUNNER_PROC_CGROUP="${BATS_TEST_TMPDIR}/proc-cgroup"
}

# v1_tree PATH: /proc/self/cgroup naming PATH for memory and cpuacct, mounts showing only the own subtree.
v1_tree() {
  printf '4:memory:%s\n2:cpu,cpuacct:%s\n0::%s\n' "$1" "$1" "$1" >"${RUNNER_PROC_CGROUP}"
  mkdir -p "${CG}/memory" "${CG}/cpuacct"
  echo 314572800 >"${CG}/memory/memory.max_usage_in_bytes"
  echo 2500000000 >"${CG}/cpuacct/cpuacct.usage"
}

@test "a v1 container sees its own cgroup mounted: peak memory and CPU time come from it" {
  v1_tree /libpod_parent/libpod-abc
  runner_usage
  [ "${RUNNER_USAGE}" = "cpu_secs=2.500 mem_peak=314572800 usage=cgroup" ]
}

@test "a v2 cgroup namespace root gives memory.peak and cpu.stat usage_usec" {
  echo '0::/' >"${RUNNER_PROC_CGROUP}"
  mkdir -p "${CG}"
  touch "${CG}/cgroup.controllers" "${CG}/cgroup.events"
  printf 'usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n' >"${CG}/cpu.stat"
  echo 52428800 >"${CG}/memory.peak"
  runner_usage
  [ "${RUNNER_USAGE}" = "cpu_secs=1.234 mem_peak=52428800 usage=cgroup" ]
}

@test "a v2 kernel without memory.peak reports CPU time and no peak memory" {
  echo '0::/' >"${RUNNER_PROC_CGROUP}"
  mkdir -p "${CG}"
  touch "${CG}/cgroup.controllers" "${CG}/cgroup.events"
  echo 'usage_usec 7000' >"${CG}/cpu.stat"
  runner_usage
  [ "${RUNNER_USAGE}" = "cpu_secs=0.007 usage=cgroup" ]
}

@test "a process that sees the host's hierarchy (shared cgroup) falls back to rusage, without memory" {
  v1_tree /process_api/abc
  mkdir -p "${CG}/memory/process_api/abc" "${CG}/cpuacct/process_api/abc"
  runner_usage
  [[ "${RUNNER_USAGE}" =~ ^cpu_secs=[0-9]+\.[0-9]{3}\ usage=rusage$ ]]
}

@test "the machine's root cgroup is never taken for the pod's own" {
  v1_tree /
  touch "${CG}/memory/cgroup.sane_behavior" "${CG}/cpuacct/cgroup.sane_behavior"
  runner_usage
  [[ "${RUNNER_USAGE}" == *usage=rusage ]]
}

@test "rusage counts the CPU time of the children the shell waited for" {
  echo '0::/x' >"${RUNNER_PROC_CGROUP}"
  bash -c 'for ((i = 0; i < 300000; i++)); do :; done'  # about half a second of CPU, however busy the machine
  runner_usage
  [[ "${RUNNER_USAGE}" =~ ^cpu_secs=([0-9]+)\.([0-9]{3})\ usage=rusage$ ]]
  (( 10#${BASH_REMATCH[1]}${BASH_REMATCH[2]} >= 100 ))
}

@test "the entrypoint's end line carries the usage" {
  printf 'true\n' >"${BATS_TEST_TMPDIR}/s.sh"
  v1_tree /libpod_parent/libpod-abc
  RUNNER_SCRIPT_URI="file://${BATS_TEST_TMPDIR}/s.sh" RUNNER_SCRIPT_PATH=s.sh RUNNER_WORKDIR="${BATS_TEST_TMPDIR}/w" \
    run "${BATS_TEST_DIRNAME}/../../runner_image/entrypoint"
  [ "${status}" -eq 0 ]
  [[ "${output}" == *"event=end script=s.sh exit=0 secs="*" reason=ok cpu_secs=2.500 mem_peak=314572800 usage=cgroup"* ]]
}

@test "in a real podman container the end line gives the container's own peak memory and CPU time" {
  local image="${SR_IMAGE:-localhost/script-runner:local}" root
  root="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
  export CONTAINERS_CONF="${root}/local/image/containers.conf"
  command -v podman >/dev/null || skip "podman is not installed"
  podman image exists "${image}" 2>/dev/null || skip "the local image ${image} is not built (make image)"
  unset RUNNER_CGROUP_ROOT RUNNER_PROC_CGROUP
  # About 40 MB held by bash at once (more while it reads them), in a container limited to 256 MiB.
  printf '%s\n' 'x="$(head -c 40000000 /dev/zero | tr "\0" a)"; echo "${#x}"' >"${BATS_TEST_TMPDIR}/hog.sh"
  run timeout 120 podman run --rm --pull never --memory 256m --memory-swap 256m --user 10001:10001 --read-only \
    --tmpfs /work:rw,exec,U --tmpfs /tmp:rw,exec,U -v "${root}/runner_image:/opt/runner:ro" \
    -v "${BATS_TEST_TMPDIR}/hog.sh:/in/hog.sh:ro" -e RUNNER_SCRIPT_URI=file:///in/hog.sh -e RUNNER_SCRIPT_PATH=hog.sh \
    --entrypoint /opt/runner/entrypoint "${image}"
  echo "${output}"
  [ "${status}" -eq 0 ]
  [[ "${output}" =~ cpu_secs=([0-9]+)\.([0-9]{3})\ mem_peak=([0-9]+)\ usage=cgroup ]]
  (( BASH_REMATCH[3] >= 40000000 && BASH_REMATCH[3] < 256 * 1024 * 1024 ))
  (( 10#${BASH_REMATCH[1]}${BASH_REMATCH[2]} > 0 ))
}
