#!/usr/bin/env python3
"""A gunicorn worker's RSS right after start and after a short login load.

    .venv/bin/python bench/rss_check.py default|arena2     (arena2: MALLOC_ARENA_MAX=2)

Reuses the seeded `portail_bench` database that bench/run.py leaves behind; loopback only, bounded.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402

mode = sys.argv[1] if len(sys.argv) > 1 else "default"
if mode == "arena2":
    os.environ["MALLOC_ARENA_MAX"] = "2"
ns = argparse.Namespace(sqlite=False, redis=False, port=9300, gunicorn_workers=os.cpu_count() or 2, threads=4)
url = "postgresql+psycopg://postgres@127.0.0.1:5432/portail_bench"
p = run.start_gunicorn(ns, url, "bench-rss-check-" + os.urandom(8).hex(), "http://127.0.0.1:9300")
try:
    print(mode, "start:", [round(run.rss_mb(w), 1) for w in run.children(p.pid)], flush=True)
    subprocess.run([str(run.DRIVER_PY), str(run.PEERS / "bench_op.py"), "http://127.0.0.1:9300",
                    "--client-id", "bench-client", "--client-secret", "bench-secret", "--redirect-uri", run.REDIRECT,
                    "--user", run.USER_TEMPLATE, "--password", run.USER_PASSWORD, "--users", str(run.N_USERS),
                    "--scenarios", "login,userinfo", "--duration", "5", "--repeat", "1"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=True)
    print(mode, "after logins:", [round(run.rss_mb(w), 1) for w in run.children(p.pid)], flush=True)
finally:
    run.stop(p)
