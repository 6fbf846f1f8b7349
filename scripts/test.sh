#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests of every crate.
# Installs what it needs on a fresh Debian machine that has the Rust toolchain.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
# Small and failing filesystems for tests/durable.rs (tmpfs, loop-mounted ext4).
command -v mkfs.ext4 >/dev/null 2>&1 || need_apt+=(e2fsprogs)
command -v mount >/dev/null 2>&1 || need_apt+=(mount)
# A real HTTP CONNECT proxy for tests/interop.rs.
command -v tinyproxy >/dev/null 2>&1 || need_apt+=(tinyproxy)
# A real NATS server with JetStream for tests/nats.rs (Debian installs it in /usr/sbin).
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
# jq for the README cookbook in tests/export.rs.
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    # Wait for another apt (an unattended upgrade, a second checkout's suite) to let go of its
    # lock: install waits by itself, update (whose lists lock that option does not cover) is tried again.
    lock=(-o DPkg::Lock::Timeout=600)
    for try in $(seq 60); do
        "${sudo[@]}" apt-get "${lock[@]}" update -qq && break
        [ "$try" -lt 60 ] || exit 1
        echo "== apt-get update failed (another apt holding its lock?); trying again in 10 s"
        sleep 10
    done
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq "${need_apt[@]}"
fi

# The third-party WebSocket servers of tests/interop.rs, pinned, under target/ (see
# tests/peers/mod.rs), and the metrics parser of tests/metrics.rs. Each step is skipped when the
# pinned version is already there.
interop="$(realpath -m "${CARGO_TARGET_DIR:-target}")/interop"
websockets_version=17.4
prometheus_client_version=0.26.0
# A real S3 server for tests/upload.rs (moto_server; pip brings flask, werkzeug, boto3 and the rest).
moto_version=5.2.5
# DuckDB and polars for the README cookbook in tests/export.rs (polars brings its runtime).
duckdb_version=2.0.1
polars_version=2.1.0
ws_version=8.23.0
for tool in python3 node npm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is needed for the interop tests" >&2; exit 1; }
done
if ! PYTHONPATH="$interop/python" python3 -c "import sys; from importlib.metadata import version; \
    sys.exit(version('websockets') != '$websockets_version' \
        or version('prometheus_client') != '$prometheus_client_version' \
        or version('moto') != '$moto_version' \
        or version('duckdb') != '$duckdb_version' \
        or version('polars') != '$polars_version')" 2>/dev/null; then
    echo "== installing Python websockets $websockets_version, prometheus_client $prometheus_client_version, moto[server] $moto_version, duckdb $duckdb_version and polars $polars_version into $interop/python"
    rm -rf "$interop/python"
    pip_install=(python3 -m pip install --quiet --disable-pip-version-check --no-input
        --target "$interop/python" "websockets==$websockets_version"
        "prometheus_client==$prometheus_client_version" "moto[server]==$moto_version"
        "duckdb==$duckdb_version" "polars==$polars_version")
    # A Debian-managed python3 refuses plain installs (PEP 668); --target never touches it.
    "${pip_install[@]}" 2>/dev/null || "${pip_install[@]}" --break-system-packages
fi
if ! node -e "process.exit(require('$interop/node/node_modules/ws/package.json').version === '$ws_version' ? 0 : 1)" 2>/dev/null; then
    echo "== installing Node ws $ws_version into $interop/node"
    mkdir -p "$interop/node"
    npm install --silent --no-save --no-audit --no-fund --prefix "$interop/node" "ws@$ws_version"
fi
# The interop tests fail, rather than skip, when run from here without these.
export WSREC_INTEROP_REQUIRED=1
export WSREC_INTEROP_PYTHON=python3
export WSREC_INTEROP_PYTHONPATH="$interop/python"
export WSREC_INTEROP_NODE_MODULES="$interop/node/node_modules"
WSREC_TINYPROXY="$(command -v tinyproxy)"
export WSREC_TINYPROXY
# rustfmt and clippy ship with rustup's default profile; add them if this toolchain lacks them.
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

# A one-off build gains nothing from incremental compilation's caches, which take gigabytes.
export CARGO_INCREMENTAL=0

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole suite (cargo prints one per test binary, the last often 0).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
