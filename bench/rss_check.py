#!/usr/bin/env python3
"""Resident memory of the IdP's gunicorn workers after a burst of logins, for several malloc settings.

    .venv/bin/python bench/rss_check.py                 # PostgreSQL database `portail_rss` (made again)
    .venv/bin/python bench/rss_check.py --logins 120

Each setting starts `idp serve` (2 workers x 4 threads, the real argon2id parameters of idp/config.py: 7 MiB a hash),
runs the logins from 8 client threads over loopback, then reads each worker's VmRSS. The login rate limits
are raised; a refused login (429) would hash nothing, so they are counted apart. The
logins/s column is the burst's rate on a shared box, a sanity check, not a throughput figure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
IDP = str(ROOT / ".venv" / "bin" / "idp")
PORT = 9311
EMAIL, PASSWORD = "marie.durand@formation.test", "Formation-Durand-2026!"  # a demo account (README)
SETTINGS = {
    # glibc's default on 64-bit is 8 arenas per core; said explicitly, or `idp serve` would set 1.
    "glibc default (8 x cores)": {"MALLOC_ARENA_MAX": str(8 * (os.cpu_count() or 1))},
    "MALLOC_ARENA_MAX=2": {"MALLOC_ARENA_MAX": "2"},
    "MALLOC_ARENA_MAX=1 (idp serve's default)": {"MALLOC_ARENA_MAX": "1"},
}


def worker_rss_mb(parent: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    sizes = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                sizes.append(int(line.split()[1]) // 1024)
    return sizes


def login(_: int) -> int:
    browser = requests.Session()
    page = browser.get(f"http://127.0.0.1:{PORT}/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return browser.post(f"http://127.0.0.1:{PORT}/login", data={"csrf_token": token, "email": EMAIL,
                                                               "password": PASSWORD},
                        allow_redirects=False, timeout=30).status_code


def measure(name: str, extra: dict[str, str], env: dict[str, str], logins: int) -> None:
    command = [IDP, "serve", "--port", str(PORT), "--workers", "2", "--threads", "4"]
    server = subprocess.Popen(command, env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{PORT}/.well-known/openid-configuration", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        started = worker_rss_mb(server.pid)
        began = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(login, range(logins)))
        rate = logins / (time.perf_counter() - began)
        time.sleep(1)
        print(f"| {name} | {started} | {worker_rss_mb(server.pid)} | {codes.count(302)} | {codes.count(429)} "
              f"| {rate:.1f} |", flush=True)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="portail_rss")
    parser.add_argument("--logins", type=int, default=60)
    args = parser.parse_args()
    for sql in (f"DROP DATABASE IF EXISTS {args.database}", f"CREATE DATABASE {args.database}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)
    env = {**os.environ, "IDP_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{args.database}",
           "IDP_DEMO": "true", "IDP_SECRET_KEY": "bench-rss-" + os.urandom(8).hex(),
           # One account logs in again and again: the login limits are raised (as bench/run.py does).
           "IDP_RATELIMIT_LOGIN_IP": "1000000/minute", "IDP_RATELIMIT_LOGIN_ACCOUNT": "1000000/minute"}
    for step in (["db", "upgrade"], ["demo", "seed"]):
        subprocess.run([IDP, *step], env=env, check=True, capture_output=True)
    print("| setting | workers' RSS at start (MB) | after the logins (MB) | logins hashed | refused (429) | logins/s |")
    print("|---|---|---|---|---|---|")
    for name, extra in SETTINGS.items():
        measure(name, extra, env, args.logins)


if __name__ == "__main__":
    main()
