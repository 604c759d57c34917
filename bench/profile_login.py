#!/usr/bin/env python3
"""Where a login's CPU goes, in-process: the whole flow a relying party's user goes through.

    .venv/bin/python bench/profile_login.py --pg -n 60 [--profiler cprofile]

Fresh database (bench/run.py's seed, real argon2id parameters), Flask test client with a new cookie
jar per login, the driver's flow: GET /oauth/authorize → GET /login → POST /login → GET
/oauth/authorize → POST /oauth/token (code exchange). Prints the CPU time of one flow (this
process only: the database's CPU is not counted), the argon2id verify time alone, the rest, and
with --profiler the top functions of the rest. Nothing listens on a port.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench_run  # noqa: E402
from profile_token import basic, pkce  # noqa: E402


def login_flow(app, client_id: str, user: str) -> None:
    client = app.test_client()
    verifier, challenge = pkce()
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": bench_run.REDIRECT,
         "scope": bench_run.SCOPE, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
         "code_challenge": challenge, "code_challenge_method": "S256"}
    resp = client.get("/oauth/authorize?" + urlencode(q))
    login_url = resp.headers["Location"]
    page = client.get(login_url)
    assert page.status_code == 200, page.status_code
    nxt = parse_qs(urlsplit(login_url).query)["next"][0]
    resp = client.post("/login", data={"email": user, "password": bench_run.USER_PASSWORD, "next": nxt})
    assert resp.status_code in (302, 303), resp.status_code
    resp = client.get(resp.headers["Location"])
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    token = client.post("/oauth/token", headers=basic(client_id), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": bench_run.REDIRECT, "code_verifier": verifier})
    assert token.status_code == 200, token.text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", action="store_true")
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--profiler", choices=["none", "cprofile"], default="none")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    args.n = max(5, min(args.n, 500))
    ns = argparse.Namespace(sqlite=not args.pg, sqlite_path="/tmp/portail-bench/profile-login.sqlite3",
                            pg_admin="postgresql://postgres@127.0.0.1:5432/postgres", pg_user="postgres",
                            pg_port=5432, pg_db="portail_profile_login")
    url = bench_run.fresh_database(ns)
    bench_run.make_schema(url, "migrations")
    issuer, secret = "http://127.0.0.1:9300", "bench-profile-" + secrets.token_hex(8)
    bench_run.seed(url, secret, issuer)
    from idp import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret, "ISSUER": issuer, "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False})
    users = [bench_run.USER_TEMPLATE.format(i=i) for i in range(bench_run.N_USERS)]
    for i in range(5):  # warm-up
        login_flow(app, "bench-client", users[i])
    hasher = app.extensions["hasher"]
    stored = hasher.hash(bench_run.USER_PASSWORD)
    hash_cpu = []
    for _ in range(20):
        t = time.process_time()
        hasher.verify(stored, bench_run.USER_PASSWORD)
        hash_cpu.append(time.process_time() - t)
    profiler = cProfile.Profile() if args.profiler == "cprofile" else None
    flows = []
    for i in range(args.n):
        t = time.process_time()
        if profiler:
            profiler.enable()
        login_flow(app, "bench-client", users[(i + 5) % len(users)])
        if profiler:
            profiler.disable()
        flows.append(time.process_time() - t)
    h, f = statistics.median(hash_cpu), statistics.median(flows)
    print(f"argon2id verify: {h * 1000:.1f} ms CPU; whole login flow (5 requests): {f * 1000:.1f} ms CPU; "
          f"rest: {(f - h) * 1000:.1f} ms; ceiling 1/hash = {1 / h:.1f}/s per core, flow = {1 / f:.1f}/s per core "
          f"({100 * h / f:.0f} % of the ceiling)")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumtime").print_stats(args.top)


if __name__ == "__main__":
    main()
