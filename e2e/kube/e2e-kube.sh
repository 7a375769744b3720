#!/usr/bin/env bash
# make e2e-kube: the scenarios on a one-machine cluster of their own, through the real kubectl (RUNS failovers,
# default 5); ends with one JSON line of figures. Everything it starts is stopped, also on failure; KEEP_STATE=1
# keeps the state folder (kubeconfig, pods' and deleted pods' logs) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
state="$(mktemp -d /tmp/e2e-kube-XXXXXX)"
chmod 755 "$state"
cleanup() {
  bash e2e/kube/kill-pods.sh "$state"
  if [ "${KEEP_STATE:-0}" = 1 ]; then
    echo "e2e-kube: state kept in $state (pods' logs under pods/UID/logs and, for deleted pods, logs/); remove it with rm -rf"
  else
    rm -rf "$state"
  fi
}
trap cleanup EXIT
. e2e/kube/prepare.sh "$state"
"$dotnet" "$cluster_dll" scenarios \
  --state "$state" --bin "$PWD/artifacts/memorycluster" --crd crds/memorycluster.io_memoryclusters.yaml \
  --chart "$state/chart.yaml" --runs "${RUNS:-5}"
