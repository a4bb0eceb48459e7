#!/usr/bin/env bash
# runner: memory=64Mi retries=1 oom_retry=true
# Really allocates ~96 MiB: killed by the cgroup at 64Mi, fits in the doubled 128Mi.
python3 -c 'b = bytearray(96 * 1024 * 1024); print("E2E-HOG allocated", len(b) >> 20, "MiB")'
