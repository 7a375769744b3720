#!/usr/bin/env bash
# make kube-up: Kubernetes on one machine (the API double, controllers, a node running pods as processes, a
# Service proxy), with the CRD and the operator installed from the chart, as `helm install` would. Prints the line
# `export KUBECONFIG=PATH`; from there it is plain kubectl. `make kube-down` stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
state="${KUBE_STATE:-$PWD/.kube-local}"
dotnet="${DOTNET:-dotnet}"

if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
  echo "kube-up: already running (pid $(cat "$state/pid")); make kube-down stops it"
  echo "export KUBECONFIG=$state/kubeconfig"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "kube-up: the node makes mount and PID namespaces for its pods: run as root" >&2
  exit 2
fi

[ -x artifacts/memorycluster/memorycluster ] || make --no-print-directory build
echo "kube-up: building the one-machine cluster"
"$dotnet" build tests/MemoryCluster.Kube.Cluster -c Release -v quiet --nologo >/dev/null
rm -rf "$state"
mkdir -p "$state"
# Every pod here shares the node's network: each process listens on its own pod IP.
printf 'bindPodIP: true\n' > "$state/values.yaml"
make --no-print-directory -s chart-render VALUES="$state/values.yaml" > "$state/chart.yaml"

setsid nohup "$dotnet" tests/MemoryCluster.Kube.Cluster/bin/Release/net10.0/MemoryCluster.Kube.Cluster.dll up \
  --state "$state" --bin "$PWD/artifacts/memorycluster" --crd crds/memorycluster.io_memoryclusters.yaml \
  > "$state/cluster.log" 2>&1 < /dev/null &
echo $! > "$state/pid"
for _ in $(seq 1 600); do
  [ -f "$state/ready" ] && break
  if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
    echo "kube-up: the cluster stopped at start:" >&2
    tail -20 "$state/cluster.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -f "$state/ready" ] || { echo "kube-up: not serving after 60 s; see $state/cluster.log" >&2; exit 1; }

export KUBECONFIG="$state/kubeconfig"
echo "kube-up: API server at $(cat "$state/ready"); installing the operator from the chart"
# (kubectl create sends protobuf, which the double does not read; apply sends JSON.)
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: memorycluster-system\n' | kubectl apply --server-side -f - >/dev/null
kubectl apply --server-side -f "$state/chart.yaml" >/dev/null
kubectl -n memorycluster-system wait --for=condition=Available deployment --all --timeout=180s >/dev/null
echo "kube-up: ready (cluster log: $state/cluster.log; pods' logs: $state/pods/UID/logs)"
echo "export KUBECONFIG=$state/kubeconfig"
