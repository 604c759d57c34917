#!/usr/bin/env python3
"""Where the time goes on the token path: code exchange and refresh, in-process, under cProfile.

    .venv/bin/python bench/profile_token.py               # SQLite file under /tmp
    .venv/bin/python bench/profile_token.py --pg          # PostgreSQL 127.0.0.1:5432, database portail_profile
    .venv/bin/python bench/profile_token.py --alg ES256 -n 300

It builds the IdP with create_app() on a fresh database, seeds the bench users and clients (bench/run.py's
seed), logs one user in with the Flask test client, mints N authorization codes (untimed), then
profiles N code exchanges and N chained refreshes (POST /oauth/token, client_secret_basic). It prints
the mean wall time per request, a breakdown by component (signing, ORM, DB driver, authlib, Flask, …)
and the top functions by own time and by cumulative time. Nothing listens on a port.
"""
from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import pstats
import re
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench_run  # noqa: E402  (bench/run.py: seed, fresh_database)

CATEGORIES = [  # first match wins, on "file:function"
    ("signing (RSA/EC, cryptography + joserfc)", re.compile(r"cryptography|joserfc|_rust|RSAPrivateKey|EllipticCurve|\bsign\b")),
    ("DB driver (psycopg / sqlite3)", re.compile(r"psycopg|sqlite3|_sqlite|pq|libpq")),
    ("SQLAlchemy (ORM, Core, pool)", re.compile(r"sqlalchemy")),
    ("authlib (OAuth2 grant logic)", re.compile(r"authlib")),
    ("Flask / Werkzeug / Jinja / extensions", re.compile(r"flask|werkzeug|jinja2|markupsafe|babel|limits|wtforms|itsdangerous")),
    ("Portail code (idp/)", re.compile(r"/idp/")),
    ("hashing / secrets (hashlib, secrets, base64)", re.compile(r"hashlib|_hashlib|secrets|base64|binascii|hmac|openssl")),
    ("json", re.compile(r"json")),
    ("uuid / datetime", re.compile(r"uuid|datetime")),
]


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:bench-secret".encode()).decode()}


def mint_codes(client, client_id: str, n: int) -> list[tuple[str, str]]:
    codes = []
    for _ in range(n):
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(8)
        q = {"response_type": "code", "client_id": client_id, "redirect_uri": bench_run.REDIRECT,
             "scope": bench_run.SCOPE, "state": state, "nonce": secrets.token_urlsafe(8),
             "code_challenge": challenge, "code_challenge_method": "S256"}
        resp = client.get("/oauth/authorize?" + urlencode(q))
        for _ in range(6):
            loc = resp.headers.get("Location", "")
            if loc.startswith(bench_run.REDIRECT):
                break
            if resp.status_code in (301, 302, 303) and loc:
                resp = client.get(loc)
                continue
            if "/login" in resp.request.path and resp.status_code == 200:
                nxt = parse_qs(urlsplit(resp.request.url).query).get("next", [""])[0]
                resp = client.post("/login", data={"email": "bench0@bench.test", "password": bench_run.USER_PASSWORD,
                                                   "next": nxt})
                continue
            raise SystemExit(f"authorize: unexpected {resp.status_code} at {resp.request.path}: {resp.text[:300]}")
        params = parse_qs(urlsplit(resp.headers["Location"]).query)
        if "code" not in params:
            raise SystemExit(f"no code: {resp.headers['Location']}")
        codes.append((params["code"][0], verifier))
    return codes


def exchange(client, client_id: str, code: str, verifier: str) -> dict:
    r = client.post("/oauth/token", headers=basic(client_id), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": bench_run.REDIRECT, "code_verifier": verifier})
    if r.status_code != 200:
        raise SystemExit(f"token: {r.status_code} {r.text[:300]}")
    return r.get_json()


def refresh(client, client_id: str, token: str) -> dict:
    r = client.post("/oauth/token", headers=basic(client_id),
                    data={"grant_type": "refresh_token", "refresh_token": token})
    if r.status_code != 200:
        raise SystemExit(f"refresh: {r.status_code} {r.text[:300]}")
    return r.get_json()


def breakdown(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) per component."""
    total = stats.total_tt or 1e-9
    acc: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        key = f"{file}:{func}"
        name = next((label for label, rx in CATEGORIES if rx.search(key)), "other (stdlib, interpreter)")
        acc[name] = acc.get(name, 0.0) + tt
    return sorted(((k, 100 * v / total) for k, v in acc.items()), key=lambda x: -x[1])


def top(stats: pstats.Stats, key: int, n: int) -> list[str]:
    total = stats.total_tt or 1e-9
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][key])[:n]
    out = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in rows:
        short = re.sub(r".*/site-packages/", "", file)
        short = re.sub(r".*/work/main/", "", short)
        out.append(f"{100 * (tt if key == 2 else ct) / total:5.1f}%  {nc:7d} calls  {short}:{line}({func})")
    return out


def profile(label: str, fn, n: int, args) -> None:
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    print(f"\n### {label}: {n} requests, {1000 * wall / n:.2f} ms per request under cProfile "
          f"(profiler overhead included; {n / wall:.0f} req/s in one thread)\n")
    print("By component (own time):\n")
    for name, pct in breakdown(st):
        if pct >= 0.5:
            print(f"- {pct:5.1f}%  {name}")
    print(f"\nTop {args.top} functions by cumulative time:\n```")
    print("\n".join(top(st, 3, args.top)))
    print(f"```\nTop {args.top} functions by own time:\n```")
    print("\n".join(top(st, 2, args.top)))
    print("```")
    if args.dump:
        prof.dump_stats(f"{args.dump}-{label.split()[0]}.prof")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", action="store_true", help="PostgreSQL (database portail_profile) instead of SQLite")
    ap.add_argument("--alg", choices=["RS256", "ES256"], default="RS256")
    ap.add_argument("-n", type=int, default=300, help="requests per profiled path (max 2000)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--dump", help="also write .prof files with this prefix (e.g. /tmp/token)")
    args = ap.parse_args()
    args.n = max(10, min(args.n, 2000))
    ns = argparse.Namespace(sqlite=not args.pg, sqlite_path="/tmp/portail-bench/profile.sqlite3",
                            pg_admin="postgresql://postgres@127.0.0.1:5432/postgres", pg_user="postgres",
                            pg_port=5432, pg_db="portail_profile")
    url = bench_run.fresh_database(ns)
    from idp.migrations import upgrade

    upgrade(url)
    issuer = "http://127.0.0.1:9300"
    secret = "bench-profile-" + secrets.token_hex(8)
    bench_run.seed(url, secret, issuer)
    from idp import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret, "ISSUER": issuer, "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False, "AUTHORIZATION_CODE_LIFETIME": 3600})
    client_id = "bench-client" if args.alg == "RS256" else "bench-client-es256"
    with app.test_client() as client:
        print(f"# Token path profile ({args.alg}, {'PostgreSQL' if args.pg else 'SQLite'}, "
              f"Flask test client, no HTTP server)")
        codes = mint_codes(client, client_id, args.n + 20)
        for code, verifier in codes[:20]:  # warm-up: keys parsed, caches filled, imports done
            rt = exchange(client, client_id, code, verifier)["refresh_token"]
        for _ in range(20):
            rt = refresh(client, client_id, rt)["refresh_token"]
        tokens: list[str] = []

        def run_exchanges() -> None:
            for code, verifier in codes[20:]:
                tokens.append(exchange(client, client_id, code, verifier)["refresh_token"])

        profile("code exchange (grant_type=authorization_code)", run_exchanges, args.n, args)
        chain = [tokens[-1]]

        def run_refreshes() -> None:
            for _ in range(args.n):
                chain[0] = refresh(client, client_id, chain[0])["refresh_token"]

        profile("refresh (grant_type=refresh_token)", run_refreshes, args.n, args)


if __name__ == "__main__":
    main()
