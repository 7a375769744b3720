# Sourced by kube-up.sh and e2e-kube.sh: root, the built CLI and the one-machine cluster, and the chart rendered
# for it into "$1/chart.yaml" (every pod here shares the node's network: each process listens on its own pod IP).
if [ "$(id -u)" != 0 ]; then
  echo "$(basename "$0" .sh): the node makes mount and PID namespaces for its pods: run as root" >&2
  exit 2
fi
dotnet="${DOTNET:-dotnet}"
# Always built: a CLI left from before a change would run the pods (make build is incremental).
make --no-print-directory build >/dev/null
"$dotnet" build tests/MemoryCluster.Kube.Cluster -c Release -v quiet --nologo >/dev/null
cluster_dll=tests/MemoryCluster.Kube.Cluster/bin/Release/net10.0/MemoryCluster.Kube.Cluster.dll
printf 'bindPodIP: true\n' > "$1/values.yaml"
make --no-print-directory -s chart-render VALUES="$1/values.yaml" > "$1/chart.yaml"
