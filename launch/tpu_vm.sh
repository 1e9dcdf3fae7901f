#!/usr/bin/env bash
# DCGAN training on a Cloud TPU VM slice (e.g. a v4-32 pod slice: 4 hosts x 4 chips), one process per host.
#
#   launch/tpu_vm.sh                      # edit the variables below first (or pass them in the environment)
#   TPU_NAME=dcgan-v4-32 ACCELERATOR=v4-32 ZONE=us-central2-b launch/tpu_vm.sh --config.num_train_steps=50000
#
# Creates the TPU VM if it does not exist (reuses it otherwise), copies this repository to every worker, installs
# it with its `tpu` and `tfds` extras (jax[tpu]; TFDS for TFDS datasets), then starts training on all workers at
# once (--worker=all). jax finds the slice's hosts and this host's rank by itself (dcgan_jax/training/distributed.py). Extra arguments go to `python -m dcgan_jax.main`.
# WORKDIR must be shared by all workers (a gcsfuse mount or an NFS/Filestore path): checkpoints are written
# collectively into it; only worker 0 writes logs, samples and config.json. Rerunning resumes.
set -euo pipefail

# ---- edit these ----
TPU_NAME="${TPU_NAME:-dcgan-tpu}"
ZONE="${ZONE:-us-central2-b}"
ACCELERATOR="${ACCELERATOR:-v4-32}"             # a pod slice: several hosts
RUNTIME="${RUNTIME:-tpu-ubuntu2204-base}"       # TPU VM software version
PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null)}"
CONFIG="${CONFIG:-configs/lsun.py}"
WORKDIR="${WORKDIR:-/mnt/shared/dcgan_runs/lsun}"  # shared by all workers
REMOTE_DIR="${REMOTE_DIR:-dcgan_jax}"           # where the repository goes on each worker (relative to ~)
SPOT="${SPOT:-}"                                # "--spot" for a cheaper, preemptible slice
# --------------------

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tpu=(gcloud compute tpus tpu-vm --project="${PROJECT}" --zone="${ZONE}")

if ! "${tpu[@]}" describe "${TPU_NAME}" > /dev/null 2>&1; then
  echo "creating TPU VM ${TPU_NAME} (${ACCELERATOR}) in ${ZONE}"
  # shellcheck disable=SC2086
  "${tpu[@]}" create "${TPU_NAME}" --accelerator-type="${ACCELERATOR}" --version="${RUNTIME}" ${SPOT}
else
  echo "reusing TPU VM ${TPU_NAME}"
fi

echo "copying ${REPO} to ~/${REMOTE_DIR} on every worker and installing"
archive="$(mktemp -t dcgan_jax.XXXXXX.tar.gz)"
tar -C "${REPO}" --exclude=.git --exclude='*.egg-info' --exclude=__pycache__ -czf "${archive}" .
"${tpu[@]}" scp "${archive}" "${TPU_NAME}:dcgan_jax.tar.gz" --worker=all
rm -f "${archive}"
"${tpu[@]}" ssh "${TPU_NAME}" --worker=all --command="
  set -e
  mkdir -p ~/${REMOTE_DIR} && tar -C ~/${REMOTE_DIR} -xzf ~/dcgan_jax.tar.gz
  cd ~/${REMOTE_DIR} && python3 -m pip install -q -U -e '.[tpu,tfds]'
"

echo "training on all workers of ${TPU_NAME}"
args="--config=${CONFIG} --workdir=${WORKDIR}"
for arg in "$@"; do args+=" $(printf '%q' "${arg}")"; done
"${tpu[@]}" ssh "${TPU_NAME}" --worker=all --command="cd ~/${REMOTE_DIR} && python3 -m dcgan_jax.main ${args}"
