#!/usr/bin/env python3
"""Where a login's CPU goes, in-process: the whole flow a relying party's user goes through.

    .venv/bin/python bench/profile_login.py --pg -n 60 [--as-served] [--profiler cprofile]

Fresh database (bench/run.py's seed, real argon2id parameters), Flask test client with a new cookie
jar per login, the driver's flow: GET /oauth/authorize → GET /login → POST /login → GET
/oauth/authorize → POST /oauth/token (code exchange). Prints the CPU time of one flow and of each
of its five requests (this thread only: the database's CPU is not counted), the argon2id verify
time alone, the rest, and with --profiler the top functions of the rest. `--as-served` keeps CSRF
and the rate limiter on, as `idp serve` runs (the limits raised as `run.py` raises them). Nothing
listens on a port.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import re
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

STEPS = ("authorize (to the login page)", "login page", "login POST", "authorize (code)", "token")
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def login_flow(app, client_id: str, user: str, cpu: dict[str, list[float]] | None = None) -> None:
    """One login; with `cpu`, each request's CPU time (this thread) appended under its step's name."""
    client = app.test_client()
    verifier, challenge = pkce()
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": bench_run.REDIRECT,
         "scope": bench_run.SCOPE, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
         "code_challenge": challenge, "code_challenge_method": "S256"}

    def timed(step: str, send):
        started = time.thread_time()
        response = send()
        if cpu is not None:
            cpu.setdefault(step, []).append(time.thread_time() - started)
        return response

    resp = timed(STEPS[0], lambda: client.get("/oauth/authorize?" + urlencode(q)))
    login_url = resp.headers["Location"]
    page = timed(STEPS[1], lambda: client.get(login_url))
    assert page.status_code == 200, page.status_code
    form = {"email": user, "password": bench_run.USER_PASSWORD, "next": parse_qs(urlsplit(login_url).query)["next"][0]}
    csrf = CSRF_FIELD.search(page.text)
    if csrf:
        form["csrf_token"] = csrf.group(1)
    resp = timed(STEPS[2], lambda: client.post("/login", data=form))
    assert resp.status_code in (302, 303), resp.status_code
    resp = timed(STEPS[3], lambda: client.get(resp.headers["Location"]))
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    token = timed(STEPS[4], lambda: client.post("/oauth/token", headers=basic(client_id), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": bench_run.REDIRECT, "code_verifier": verifier}))
    assert token.status_code == 200, token.text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", action="store_true")
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--profiler", choices=["none", "cprofile"], default="none")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--as-served", action="store_true", help="CSRF and the rate limiter on, as idp serve runs")
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

    served = {"WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN_IP": "1000000/minute",
              "RATELIMIT_LOGIN_ACCOUNT": "1000000/minute", "RATELIMIT_CLIENT_AUTH_IP": "1000000/minute",
              "RATELIMIT_CLIENT_AUTH_CLIENT": "1000000/minute"}
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret, "ISSUER": issuer,
                      **(served if args.as_served else {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})})
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
    flows, per_request = [], {}
    for i in range(args.n):
        t = time.process_time()
        if profiler:
            profiler.enable()
        login_flow(app, "bench-client", users[(i + 5) % len(users)], None if profiler else per_request)
        if profiler:
            profiler.disable()
        flows.append(time.process_time() - t)
    h, f = statistics.median(hash_cpu), statistics.median(flows)
    print(f"argon2id verify: {h * 1000:.1f} ms CPU; whole login flow (5 requests): {f * 1000:.1f} ms CPU; "
          f"rest: {(f - h) * 1000:.1f} ms; ceiling 1/hash = {1 / h:.1f}/s per core, flow = {1 / f:.1f}/s per core "
          f"({100 * h / f:.0f} % of the ceiling)")
    for step, times in per_request.items():
        print(f"  {step:<31} {statistics.median(times) * 1000:6.2f} ms CPU (median)")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumtime").print_stats(args.top)


if __name__ == "__main__":
    main()
