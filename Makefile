# MemoryCluster: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DOTNET ?= dotnet
CONFIGURATION ?= Release
RESULTS := TestResults
CLI_PROJECT := operator/src/MemoryCluster.Cli/MemoryCluster.Cli.csproj
CLI := bin/memorycluster

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: build
build: ## Build everything and leave the CLI at bin/memorycluster
	@echo "building the solution ($(CONFIGURATION)); the first build restores packages and compiles every project: a few minutes"
	$(DOTNET) build Operator.sln -c $(CONFIGURATION) --nologo -v minimal
	@echo "publishing the CLI"
	$(DOTNET) publish $(CLI_PROJECT) -c $(CONFIGURATION) --nologo -v quiet -o artifacts/memorycluster
	@mkdir -p bin && ln -sf ../artifacts/memorycluster/memorycluster $(CLI)
	@echo "built $(CLI)"

.PHONY: test
test: ## Run the default test suite; ends with the line `N passed, N failed`
	@rm -rf $(RESULTS)
	@set +e; \
	$(DOTNET) test Operator.sln -c $(CONFIGURATION) --nologo --logger trx --results-directory $(RESULTS) \
	  --blame-hang-timeout 10m $(TEST_ARGS); \
	rc=$$?; \
	python3 tests/trx-summary.py $(RESULTS) $$rc

.PHONY: test-integration
test-integration: ## Run only the tests that start real servers (trait Category=Integration)
	$(MAKE) test TEST_ARGS="--filter Category=Integration"

.PHONY: test-kubectl
test-kubectl: ## Drive the real kubectl against the Kubernetes API test double
	$(MAKE) test TEST_ARGS="--filter Category=Kubectl"

.PHONY: demo
demo: build ## Start a 3-instance local cluster in .memorycluster and print how to connect
	$(CLI) local up

.PHONY: raft-sim
raft-sim: ## Raft simulator: SEEDS=N seeds (default 500), or SEED=x to replay one; ends with `raft-sim: seeds=N violations=V ...`
	$(DOTNET) run -c Release --project operator/tools/MemoryCluster.Raft.Sim -- $(if $(SEED),--seed $(SEED),--seeds $(or $(SEEDS),500))

.PHONY: failover-sim
failover-sim: ## Failover simulator: SEEDS=N (default 500), or SEED=x [SCENARIO=name] [TRACE=1] to replay one; ends with `failover-sim: seeds=N violations=V ...`
	$(DOTNET) run -c Release --project operator/tools/MemoryCluster.Failover.Sim -- $(if $(SEED),--seed $(SEED),--seeds $(or $(SEEDS),500)) $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(TRACE),--trace)

.PHONY: bench-raft
bench-raft: ## Raft figures: election time after the leader is killed, commit latency with fsync
	$(DOTNET) run -c Release --project operator/bench/MemoryCluster.Raft.Bench -- --elections 100 --commits 1000

.PHONY: bench-instance
bench-instance: ## Local cluster figures: bootstrap time (3, 5), idle CPU, switchover write unavailability, cluster (recheck 0) and client (RECHECK=1) writers (RUNS=20)
	$(DOTNET) run -c Release --project operator/bench/MemoryCluster.Instance.Bench -- $(or $(RUNS),20) $(or $(RECHECK),1)

.PHONY: e2e
e2e: ## Fault suite on local clusters: every default scenario once, invariants checked (MODE=quorum|async, SCENARIO=a,b)
	@bash e2e/tools.sh
	$(DOTNET) run -c Release --project e2e/MemoryCluster.E2e -- e2e --mode $(or $(MODE),quorum) $(if $(SCENARIO),--scenario $(SCENARIO))

.PHONY: kube-up
kube-up: ## Kubernetes on one machine (API double, controllers, a node running pods as processes, Service proxy) with the operator installed from the chart; prints `export KUBECONFIG=...` (root)
	@bash e2e/kube/kube-up.sh

.PHONY: kube-down
kube-down: ## Stop what kube-up started (pods first) and remove its state; no process is left behind
	@bash e2e/kube/kube-down.sh

.PHONY: e2e-kube
e2e-kube: ## Scenarios on a one-machine Kubernetes through the real kubectl (root): time to Ready (3, 5), invalid spec, kubectl delete pod and kill -9 of PostgreSQL in the primary's pod RUNS times (5) each, scale 3->5->3, rolling updates, the operator's leader killed and frozen, with a writer on -rw; one JSON line (KEEP_STATE=1 keeps the logs)
	@bash e2e/kube/e2e-kube.sh

.PHONY: images
images: ## Container images with podman, no registry: a debootstrap base, then memorycluster-operator, -compute and -instance tagged with the version; prints sizes (root; BASE=debian:bookworm-slim where a registry is reachable)
	@bash operator/images/build.sh

.PHONY: images-test
images-test: ## Smoke test of the images (after make images; root): --version in each, three instance containers elect a primary that answers over TLS and fail over when its container is killed, compute serves /healthz; everything removed after
	@bash operator/images/smoke.sh

.PHONY: e2e-stress
e2e-stress: ## The cpu-stress scenario: stress-ng on every core and fsync load for E2E_STRESS_SECONDS (300) while writing (MODE=quorum|async)
	@bash e2e/tools.sh
	$(DOTNET) run -c Release --project e2e/MemoryCluster.E2e -- e2e --mode $(or $(MODE),quorum) --scenario cpu-stress

.PHONY: bench-failover
bench-failover: ## Failover figures per scenario (RUNS=5, MODE=quorum|async, SCENARIO=a,b); ends with one JSON line
	@bash e2e/tools.sh
	$(DOTNET) run -c Release --project e2e/MemoryCluster.E2e -- bench --runs $(or $(RUNS),5) --mode $(or $(MODE),quorum) $(if $(SCENARIO),--scenario $(SCENARIO))

.PHONY: bench-engine
bench-engine: ## Compute engine: ANN vs C++ hnswlib and hnswlib-node, 3-hop vs recursive SQL, fusion (VECTORS=DIR, GRAPH=FILE.tsv, BENCH_ROUNDS=3)
	VECTORS="$(VECTORS)" GRAPH="$(GRAPH)" BENCH_ROUNDS="$(or $(BENCH_ROUNDS),3)" compute/bench/run.sh

.PHONY: bench-compute
bench-compute: ## Compute service on PostgreSQL through HTTP: load, write->visible, fusion, neighbours and 3-hop vs SQL (TRIPLES=N, default 1000000); ends with one JSON line
	$(DOTNET) run -c Release --project compute/bench/MemoryCluster.Compute.Bench -- --sections service --triples $(or $(TRIPLES),1000000)

.PHONY: bench-operator
bench-operator: build ## Operator figures against the API double: reconcile latency p50/p99, memory with CLUSTERS (100) clusters, writes per no-op resync
	$(DOTNET) run -c Release --project operator/bench/MemoryCluster.Operator.Bench -- $(or $(CLUSTERS),100) $(or $(NOOP_SECONDS),30)

.PHONY: bench-kube
bench-kube: ## Kubernetes client figures: informer memory per 1,000 objects, reconcile throughput with 100 clusters
	$(DOTNET) run -c Release --project operator/bench/MemoryCluster.Kube.Bench

.PHONY: crds
crds: ## Regenerate crds/ (and the chart's copy in charts/memorycluster-operator/crds/) from the C# types in operator/src/MemoryCluster.Api
	$(DOTNET) run --project $(CLI_PROJECT) -c $(CONFIGURATION) -- crds

.PHONY: crds-check
crds-check: ## Fail when the committed CRD, or the chart's copy, differs from what the types generate
	$(DOTNET) run --project $(CLI_PROJECT) -c $(CONFIGURATION) -- crds --check

CHART := charts/memorycluster-operator
CHART_FULL_VALUES := tests/MemoryCluster.Cli.Tests/Chart/chart-values-full.yaml
CHART_RENDER := artifacts/chart-render/render

.PHONY: chart-render
chart-render: ## Render the Helm chart without helm, as `helm template` (VALUES=file merged over values.yaml, RELEASE, NAMESPACE)
	@bash charts/tools/render/build.sh >/dev/null
	@$(CHART_RENDER) -chart $(CHART) -name $(or $(RELEASE),memorycluster) -namespace $(or $(NAMESPACE),memorycluster-system) $(if $(VALUES),-f $(VALUES))

.PHONY: chart-check
chart-check: ## Check the chart (default and full values) and the operator's golden renders against the official Kubernetes schemas
	@test -d tests/schema-check/node_modules || (cd tests/schema-check && npm ci --no-audit --no-fund)
	@bash charts/tools/render/build.sh >/dev/null
	@set -o pipefail; \
	$(CHART_RENDER) -chart $(CHART) -include-crds | node tests/schema-check/check.mjs - && \
	$(CHART_RENDER) -chart $(CHART) -include-crds -f $(CHART_FULL_VALUES) | node tests/schema-check/check.mjs - && \
	node tests/schema-check/check.mjs --crd crds/memorycluster.io_memoryclusters.yaml tests/MemoryCluster.Cli.Tests/Operator/golden/*.yaml crds/samples/*.yaml

.PHONY: lint
lint: ## Check formatting and code style (dotnet format --verify-no-changes)
	$(DOTNET) format Operator.sln --verify-no-changes

.PHONY: checks
checks: build lint crds-check chart-check test ## Everything CI cares about: build, lint, CRD drift, chart schemas, tests

.PHONY: clean
clean: ## Remove build outputs and test results
	rm -rf bin artifacts $(RESULTS)
	$(DOTNET) clean Operator.sln --nologo -v quiet
