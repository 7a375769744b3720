#!/usr/bin/env bash
# make kube-up: Kubernetes on one machine (the API double, controllers, a node running pods as processes, a
# Service proxy), with the CRD and the operator installed from the chart, as `helm install` would. Prints the line
# `export KUBECONFIG=PATH`; from there it is plain kubectl. `make kube-down` stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
state="${KUBE_STATE:-$PWD/.kube-local}"

if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
  echo "kube-up: already running (pid $(cat "$state/pid")); make kube-down stops it"
  echo "export KUBECONFIG=$state/kubeconfig"
  exit 0
fi
rm -rf "$state"
mkdir -p "$state"
echo "kube-up: building the one-machine cluster"
. e2e/kube/prepare.sh "$state"

setsid nohup "$dotnet" "$cluster_dll" up \
  --state "$state" --bin "$PWD/artifacts/memorycluster" --crd crds/memorycluster.io_memoryclusters.yaml --chart "$state/chart.yaml" \
  > "$state/cluster.log" 2>&1 < /dev/null &
echo $! > "$state/pid"
echo "kube-up: starting it and installing the operator from the chart"
for _ in $(seq 1 2400); do
  [ -f "$state/ready" ] && break
  if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
    echo "kube-up: the cluster stopped at start:" >&2
    tail -20 "$state/cluster.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -f "$state/ready" ] || { echo "kube-up: not ready after 240 s; see $state/cluster.log" >&2; exit 1; }

echo "kube-up: ready (cluster log: $state/cluster.log; pods' logs: $state/pods/UID/logs)"
echo "export KUBECONFIG=$state/kubeconfig"
