#!/usr/bin/env python3
"""Benchmarks for `just bench`: figures, not pass/fail (timing goals never live in tests).

Against a release sandbox on loopback, with release binaries:
  1. no-op rerun: requests per rerun (from the sandbox's audit log) and wall time beyond
     process start (goal: no request beyond lock, checkpoint and ensure-step probes; < 30 ms)
  2. plan over a generated 300-step, 40-phase set (goal < 50 ms beyond process start)
  3. peak memory of bringup during those (goal < 30 MiB)
Then the Vault benchmark (scripts/bench_vault.py) when present.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
BRINGUP = RELEASE / "bringup"
SANDBOX = RELEASE / "bringup-sandbox"
FIXTURES = ROOT / "tests" / "fixtures" / "e2e"
RUNS = 20


def timed(args, env):
    """Wall seconds and peak RSS (KiB) of one process, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"`{' '.join(map(str, args))}` exited {code}:\n{stderr}")
    return elapsed, usage.ru_maxrss


def median_ms(samples):
    return statistics.median(samples) * 1000


def generated_phases(directory: pathlib.Path, phases=40, steps=300):
    """40 phases in a dependency chain of fan-outs, 300 steps of every cheap kind."""
    per_phase = [steps // phases + (1 if i < steps % phases else 0) for i in range(phases)]
    for p, count in enumerate(per_phase):
        depends = [f"p{p - 1:02}", f"p{p - 2:02}"] if p >= 2 else ([f"p{p - 1:02}"] if p == 1 else [])
        lines = ["schema: bringup/v1", f"phase: p{p:02}", f"depends_on: [{', '.join(depends)}]", "steps:"]
        for s in range(count):
            kind = s % 3
            if kind == 0:
                lines += [f"  - id: s{s:02}", "    kind: secret", f"    secret: bench/p{p:02}-s{s:02}",
                          "    keys:", "      password: { random: { length: 32 } }"]
            elif kind == 1:
                lines += [f"  - id: s{s:02}", "    kind: apply", "    manifest:",
                          "      apiVersion: v1", "      kind: ConfigMap",
                          f"      metadata: {{ name: p{p:02}-s{s:02}, namespace: bench }}",
                          "      data: { value: \"{{ values.greeting }}\" }"]
            else:
                lines += [f"  - id: s{s:02}", "    kind: wait",
                          f"    for: {{ object: {{ apiVersion: v1, kind: Namespace, name: bench }} }}"]
        (directory / f"{p:02}-p{p:02}.yaml").write_text("\n".join(lines) + "\n")
    (directory / "values.yaml").write_text("greeting: hello\n")


def main():
    if not BRINGUP.exists() or not SANDBOX.exists():
        sys.exit("build first: cargo build --release --workspace --bins")
    work = pathlib.Path(tempfile.mkdtemp(prefix="bringup-bench-"))
    cluster = work / "cluster.yaml"
    cluster.write_text((FIXTURES / "basic-cluster.yaml").read_text().replace(
        "namespaces: [seed, global, demo]", "namespaces: [seed, global, demo, bench]"))
    sandbox_dir = work / "sandbox"
    subprocess.run([SANDBOX, "up", "--cluster", cluster, "--dir", sandbox_dir, "--detach"], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        env = dict(os.environ, KUBECONFIG=str(sandbox_dir / "kubeconfig"), NO_COLOR="1")
        audit = sandbox_dir / "audit.jsonl"
        basic = ["--phases", FIXTURES / "basic"]

        start_ms = median_ms([timed([BRINGUP, "--version"], env)[0] for _ in range(RUNS)])
        timed([BRINGUP, "run", "--yes", *basic], env)

        samples, peaks, requests = [], [], []
        for _ in range(RUNS):
            before = len(audit.read_text().splitlines())
            elapsed, peak = timed([BRINGUP, "run", "--yes", *basic], env)
            lines = audit.read_text().splitlines()[before:]
            samples.append(elapsed)
            peaks.append(peak)
            requests.append(len(lines))
        writes = [json.loads(l) for l in lines if json.loads(l)["verb"] in ("create", "update", "patch", "delete")]
        noop_ms = median_ms(samples) - start_ms

        generated = work / "generated"
        generated.mkdir()
        generated_phases(generated)
        plan_args = [BRINGUP, "plan", "--phases", generated]
        plan_samples, plan_peaks = [], []
        for _ in range(RUNS):
            elapsed, peak = timed(plan_args, env)
            plan_samples.append(elapsed)
            plan_peaks.append(peak)
        plan_ms = median_ms(plan_samples) - start_ms

        peak_mib = max(peaks + plan_peaks) / 1024
        print("bringup benchmarks (release build, sandbox on loopback, median of %d)" % RUNS)
        print(f"  process start (bringup --version)      {start_ms:7.1f} ms")
        print(f"  no-op rerun: requests per run           {statistics.median(requests):7.0f}"
              f"   (writes: {', '.join(w['verb'] + ' ' + (w.get('resource') or '') for w in writes)})")
        print(f"  no-op rerun: wall time beyond start     {noop_ms:7.1f} ms   goal < 30 ms")
        print(f"  plan, 300 steps in 40 phases, beyond start {plan_ms:4.1f} ms   goal < 50 ms")
        print(f"  peak memory (max RSS)                   {peak_mib:7.1f} MiB  goal < 30 MiB")
    finally:
        subprocess.run([SANDBOX, "down", "--dir", sandbox_dir], stdout=subprocess.DEVNULL)

    vault = ROOT / "scripts" / "bench_vault.py"
    if vault.exists():
        print()
        subprocess.run([sys.executable, vault], check=True)


if __name__ == "__main__":
    main()
