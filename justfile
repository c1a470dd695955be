# The things a developer does. `./dev RECIPE` installs the tools on first use and runs one.

set shell := ["bash", "-euo", "pipefail", "-c"]

sandbox_dir := ".sandbox"

# List the recipes
default:
    @just --list --unsorted

# The whole bring-up against a fresh local sandbox cluster: the live view, then `bringup status`
demo: build
    #!/usr/bin/env bash
    set -euo pipefail
    ./target/debug/bringup-sandbox down --dir {{sandbox_dir}} 2>/dev/null || true
    rm -rf {{sandbox_dir}}
    ./target/debug/bringup-sandbox up --cluster tests/sandbox/clusters/platform.yaml --dir {{sandbox_dir}} --detach
    trap './target/debug/bringup-sandbox down --dir {{sandbox_dir}}' EXIT
    # KUBECONFIG and KUBERNETES_HOST (the sandbox's random address, which OpenBao's
    # Kubernetes auth calls for TokenReview: OpenBao runs on this machine, not in a pod)
    set -a; source {{sandbox_dir}}/env; set +a
    values=(--values phases/sandbox-values.yaml --set "vault.kubernetes_host=$KUBERNETES_HOST")
    ./target/debug/bringup run --phases phases "${values[@]}" --yes
    echo
    ./target/debug/bringup status --phases phases "${values[@]}"

# The test suite (what CI runs)
test: lint
    cargo nextest run --workspace --no-fail-fast

# Exactly what .ci/run runs
ci: test

# Formatting and lints, warnings as errors
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Build the tool and the sandbox
build:
    cargo build --workspace --bins

# Start a sandbox cluster for poking at with kubectl (KUBECONFIG is printed)
sandbox cluster="tests/sandbox/clusters/default.yaml": build
    ./target/debug/bringup-sandbox up --cluster {{cluster}} --dir {{sandbox_dir}} --detach
    @echo "export KUBECONFIG=$PWD/{{sandbox_dir}}/kubeconfig   # then: kubectl get pods -A"
    @echo "stop it with: ./target/debug/bringup-sandbox down --dir {{sandbox_dir}}"

# Stop the sandbox started by `just sandbox`
sandbox-down:
    ./target/debug/bringup-sandbox down --dir {{sandbox_dir}}

# Benchmarks: no-op rerun, plan over 300 steps, peak memory, the vault phase against the bao CLI (figures, not pass/fail)
bench:
    cargo build --release --workspace --bins
    python3 scripts/bench.py
    python3 scripts/bench_vault.py

# Review snapshot changes
snapshots:
    cargo insta review
