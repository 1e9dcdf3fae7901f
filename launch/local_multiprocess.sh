#!/usr/bin/env bash
# Runs N training processes on this machine, each with its own simulated CPU devices: the multi-host code path
# (jax.distributed, per-host data shards, one writer, collective checkpoints) without a cluster.
#
#   launch/local_multiprocess.sh [NUM_PROCESSES] [DEVICES_PER_PROCESS] -- [dcgan_jax.main flags...]
#   launch/local_multiprocess.sh 2 2 -- --workdir=/tmp/dcgan_2proc --config.num_train_steps=200
#
# Process 0's output is shown; process i's goes to $LOG_DIR/process_i.log. Exits non-zero if any process fails.
set -euo pipefail

NUM_PROCESSES="${1:-2}"
DEVICES_PER_PROCESS="${2:-2}"
shift $(( $# >= 2 ? 2 : $# ))
if [[ "${1:-}" == "--" ]]; then shift; fi
PORT="${PORT:-$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
LOG_DIR="${LOG_DIR:-$(mktemp -d -t dcgan_multiprocess.XXXXXX)}"
TIMEOUT_S="${TIMEOUT_S:-120}"  # how long each process waits for the others to join
mkdir -p "${LOG_DIR}"

export JAX_PLATFORMS=cpu
export XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES_PER_PROCESS}"

pids=()
# shellcheck disable=SC2329  # invoked by the traps
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup INT TERM

for (( i = NUM_PROCESSES - 1; i >= 0; i-- )); do
  args=(-m dcgan_jax.main --coordinator_address="127.0.0.1:${PORT}" --num_processes="${NUM_PROCESSES}"
        --process_id="${i}" --coordinator_timeout_s="${TIMEOUT_S}" "$@")
  if (( i == 0 )); then
    python "${args[@]}" &
  else
    python "${args[@]}" > "${LOG_DIR}/process_${i}.log" 2>&1 &
  fi
  pids+=("$!")
done
echo "started ${NUM_PROCESSES} processes x ${DEVICES_PER_PROCESS} CPU devices (coordinator 127.0.0.1:${PORT}," \
     "logs of processes 1+ in ${LOG_DIR})" >&2

status=0
for _ in "${pids[@]}"; do
  if ! wait -n; then  # one process failed: the others would only wait for it until their timeout
    status=1
    cleanup
  fi
done
if (( status != 0 )); then
  echo "a process failed; see the output above and ${LOG_DIR}" >&2
fi
exit "$status"
