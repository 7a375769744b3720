#!/usr/bin/env bash
# make e2e-kube: the scenarios on a one-machine cluster of their own, through the real kubectl (RUNS failovers,
# default 5); ends with one JSON line of figures. Everything it starts is stopped, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet="${DOTNET:-dotnet}"
if [ "$(id -u)" != 0 ]; then
  echo "e2e-kube: the node makes mount and PID namespaces for its pods: run as root" >&2
  exit 2
fi
[ -x artifacts/memorycluster/memorycluster ] || make --no-print-directory build
"$dotnet" build tests/MemoryCluster.Kube.Cluster -c Release -v quiet --nologo >/dev/null
state="$(mktemp -d /tmp/e2e-kube-XXXXXX)"
chmod 755 "$state"
cleanup() {
  leftover="$(pgrep -f "unshare .*$state/pods/" || true)"
  [ -n "$leftover" ] && kill -KILL $leftover 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT
printf 'bindPodIP: true\n' > "$state/values.yaml"
make --no-print-directory -s chart-render VALUES="$state/values.yaml" > "$state/chart.yaml"
"$dotnet" tests/MemoryCluster.Kube.Cluster/bin/Release/net10.0/MemoryCluster.Kube.Cluster.dll scenarios \
  --state "$state" --bin "$PWD/artifacts/memorycluster" --crd crds/memorycluster.io_memoryclusters.yaml \
  --chart "$state/chart.yaml" --runs "${RUNS:-5}"
