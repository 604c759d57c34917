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
    ("DB round-trips (driver execute/commit)", re.compile(r"psycopg|sqlite3|_sqlite|libpq")),
    ("JWS sign/verify (RSA/EC: cryptography + joserfc)",
     re.compile(r"cryptography|joserfc|_rust|RSAP|ECP|EllipticCurve")),
    ("SQLAlchemy (ORM, Core, pool)", re.compile(r"sqlalchemy")),
    ("authlib (OAuth2 grant logic)", re.compile(r"authlib")),
    ("Flask / Werkzeug / Jinja / extensions", re.compile(r"flask|werkzeug|jinja2|markupsafe|babel|limits|wtforms|itsdangerous")),
    ("Portail code (idp/)", re.compile(r"(^|/)idp/")),
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


def flat_breakdown(flat_lines: list[str]) -> list[tuple[str, float]]:
    """Own time per component, from pyinstrument's flat listing ("6.4% Func  file:line")."""
    acc: dict[str, float] = {}
    for line in flat_lines:
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(.*)$", line)
        if not m:
            continue
        pct, func, file = float(m.group(1)), m.group(2), m.group(3)
        key = f"{file}:{func}"
        if file.startswith("<built-in>") and re.search(r"^(Connection|Cursor)\.", func):
            name = DB_BUILTIN
        else:
            name = next((label for label, rx in CATEGORIES if rx.search(key)), "other (stdlib, interpreter)")
        acc[name] = acc.get(name, 0.0) + pct
    total = sum(acc.values()) or 1e-9  # normalised over the functions pyinstrument lists
    return sorted(((k, 100 * v / total) for k, v in acc.items()), key=lambda x: -x[1])


DB_BUILTIN = "DB round-trips (driver execute/commit)"


SQL_LOG: list[str] = []


def print_sql(n: int) -> None:
    kinds: dict[str, int] = {}
    for stmt in SQL_LOG:
        kinds[stmt] = kinds.get(stmt, 0) + 1
    print(f"SQL statements per request: {len(SQL_LOG) / n:.1f} ("
          + ", ".join(f"{k} {v / n:.1f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])) + ")\n")


def cpu_cost(label: str, fn, n: int) -> None:
    """CPU time of this process per request, without a profiler (PostgreSQL's own CPU is not in it):
    steadier than wall time when the box is shared."""
    SQL_LOG.clear()
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    c1, t1 = time.process_time(), time.perf_counter()
    print(f"\n{label}, without profiler: {1e6 * (c1 - c0) / n:.0f} µs CPU, {1000 * (t1 - t0) / n:.2f} ms wall "
          f"per request; {len(SQL_LOG) / n:.1f} SQL statements per request")


def wsgi_calls(app, n: int, method: str, path: str, headers: dict[str, str], data: dict[str, str] | None = None):
    """N calls of the WSGI application itself with a prebuilt environ, as a server makes them: the
    cost of the test client (building the environ, wrapping the response) is left out."""
    import io

    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(method=method, path=path, headers=headers, data=data,
                             environ_base={"REMOTE_ADDR": "127.0.0.1"})
    template = builder.get_environ()
    body = template["wsgi.input"].read()
    statuses: list[str] = []

    def start_response(status: str, _headers, _exc_info=None) -> None:
        statuses.append(status)

    def run() -> None:
        for _ in range(n):
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO(body)
            chunks = app(environ, start_response)
            try:
                for _chunk in chunks:
                    pass
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        assert all(s.startswith("200") for s in statuses), statuses[:3]
        statuses.clear()

    return run


def profile(label: str, fn, n: int, args) -> None:
    if args.other_paths and not label.startswith(("code exchange", "refresh")):
        cpu_cost(label, fn, n)  # the same requests once more, unprofiled (these paths are repeatable)
    SQL_LOG.clear()
    if args.profiler == "pyinstrument":
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0005)
        t0 = time.perf_counter()
        prof.start()
        fn()
        prof.stop()
        wall = time.perf_counter() - t0
        print(f"\n### {label}: {n} requests, {1000 * wall / n:.2f} ms per request under pyinstrument\n")
        print_sql(n)
        flat = prof.output_text(flat=True, time="percent_of_total").splitlines()
        body = [line for line in flat if re.match(r"\s*[\d.]+%", line) and "[self]" not in line
                and "profile_token.py" not in line]
        print("By component (own time):\n")
        for name, pct in flat_breakdown(body):
            if pct >= 0.5:
                print(f"- {pct:5.1f}%  {name}")
        print(f"\nTop {args.top} functions by own time (pyinstrument, flat):\n```")
        print("\n".join(line.replace(str(Path(sys.prefix)), "venv") for line in body[: args.top]))
        print("```")
        tree = prof.output_text(time="percent_of_total")
        if args.dump:
            Path(f"{args.dump}-{label.split()[0]}.txt").write_text(tree)
        return
    # "cpu": the thread's CPU time as the clock, so waiting on PostgreSQL or on a busy box counts nothing.
    prof = cProfile.Profile(time.thread_time) if args.profiler == "cpu" else cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof)
    print(f"\n### {label}: {n} requests, {1000 * wall / n:.2f} ms per request under cProfile{' (CPU clock)' if args.profiler == 'cpu' else ''} "
          f"(profiler overhead included; {n / wall:.0f} req/s in one thread)\n")
    print_sql(n)
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
    ap.add_argument("--schema", choices=["migrations", "models"], default="migrations")
    ap.add_argument("--alg", choices=["RS256", "ES256"], default="RS256")
    ap.add_argument("-n", type=int, default=300, help="requests per profiled path (max 2000)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--other-paths", action="store_true",
                    help="also profile client_credentials, userinfo and discovery")
    try:
        import pyinstrument  # noqa: F401
        default_profiler = "pyinstrument"
    except ImportError:
        default_profiler = "cprofile"
    ap.add_argument("--profiler", choices=["pyinstrument", "cprofile", "cpu"], default=default_profiler,
                    help="pyinstrument (sampling, low overhead; default when installed), cProfile (stdlib), or "
                         "cpu: cProfile timing the thread's CPU only (robust on a loaded box)")
    ap.add_argument("--dump", help="also write the full profiles with this prefix (e.g. /tmp/token)")
    ap.add_argument("--only-other-paths", action="store_true",
                    help="client_credentials, userinfo and discovery only (no code exchange or refresh profile)")
    ap.add_argument("--pg-db", default="portail_profile", help="the PostgreSQL database to create afresh")
    ap.add_argument("--limiter", action="store_true",
                    help="keep the rate limiter on (memory storage), as `run.py` does; off by default")
    args = ap.parse_args()
    args.n = max(10, min(args.n, 2000))
    args.other_paths = args.other_paths or args.only_other_paths
    ns = argparse.Namespace(sqlite=not args.pg, sqlite_path="/tmp/portail-bench/profile.sqlite3",
                            pg_admin="postgresql://postgres@127.0.0.1:5432/postgres", pg_user="postgres",
                            pg_port=5432, pg_db=args.pg_db)
    url = bench_run.fresh_database(ns)
    bench_run.make_schema(url, args.schema)
    issuer = "http://127.0.0.1:9300"
    secret = "bench-profile-" + secrets.token_hex(8)
    bench_run.seed(url, secret, issuer)
    from idp import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret, "ISSUER": issuer, "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": args.limiter, "AUTHORIZATION_CODE_LIFETIME": 3600,
                      "RATELIMIT_CLIENT_AUTH_IP": "1000000/minute", "RATELIMIT_CLIENT_AUTH_CLIENT": "1000000/minute"})
    client_id = "bench-client" if args.alg == "RS256" else "bench-client-es256"
    from sqlalchemy import event

    def _count(_conn, _cursor, statement, *_a) -> None:
        words = statement.split(None, 3)
        verb = words[0].upper() if words else "?"
        table = ""
        if verb in ("INSERT", "DELETE") and len(words) > 2:
            table = words[2]
        elif verb == "UPDATE" and len(words) > 1:
            table = words[1]
        elif verb == "SELECT":
            m = re.search(r"\bFROM\s+(\w+)", statement)
            table = m.group(1) if m else ""
        SQL_LOG.append(f"{verb} {table}".strip())

    def _commit(_conn) -> None:
        SQL_LOG.append("COMMIT")

    from sqlalchemy import Engine

    # Every engine (the audit connection of client_credentials has its own pool).
    event.listen(Engine, "before_cursor_execute", _count)
    event.listen(Engine, "commit", _commit)
    with app.test_client() as browser:
        client = browser
        print(f"# Token path profile ({args.alg}, {'PostgreSQL' if args.pg else 'SQLite'}, "
              f"Flask test client, no HTTP server)")
        if args.only_other_paths:  # one code for the access token; no code exchange or refresh profile
            code, verifier = mint_codes(client, client_id, 1)[0]
            chain = [exchange(client, client_id, code, verifier)["refresh_token"]]
            client = app.test_client(use_cookies=False)
        else:
            codes = mint_codes(client, client_id, 2 * args.n + 20)
            for code, verifier in codes[:20]:  # warm-up: keys parsed, caches filled, imports done
                rt = exchange(client, client_id, code, verifier)["refresh_token"]
            for _ in range(20):
                rt = refresh(client, client_id, rt)["refresh_token"]
            # the same work without a profiler: the real cost per request in one thread
            c0, t0 = time.process_time(), time.perf_counter()
            for code, verifier in codes[20:20 + args.n]:
                rt = exchange(client, client_id, code, verifier)["refresh_token"]
            c1, t1 = time.process_time(), time.perf_counter()
            for _ in range(args.n):
                rt = refresh(client, client_id, rt)["refresh_token"]
            c2, t2 = time.process_time(), time.perf_counter()
            print(f"\nWithout profiler, one thread, in-process: code exchange {1000 * (t1 - t0) / args.n:.2f} ms/request "
                  f"({args.n / (t1 - t0):.0f}/s, {1e6 * (c1 - c0) / args.n:.0f} µs CPU), refresh "
                  f"{1000 * (t2 - t1) / args.n:.2f} ms/request ({args.n / (t2 - t1):.0f}/s, "
                  f"{1e6 * (c2 - c1) / args.n:.0f} µs CPU)")
            tokens: list[str] = []
            client = app.test_client(use_cookies=False)  # API clients send no cookies

            def run_exchanges() -> None:
                for code, verifier in codes[20 + args.n:]:
                    tokens.append(exchange(client, client_id, code, verifier)["refresh_token"])

            profile("code exchange (grant_type=authorization_code)", run_exchanges, args.n, args)
            chain = [tokens[-1]]

            def run_refreshes() -> None:
                for _ in range(args.n):
                    chain[0] = refresh(client, client_id, chain[0])["refresh_token"]

            profile("refresh (grant_type=refresh_token)", run_refreshes, args.n, args)
        if args.other_paths:
            access = refresh(client, client_id, chain[0])["access_token"]

            def run_cc() -> None:
                for _ in range(args.n):
                    r = client.post("/oauth/token", headers=basic(client_id), data={"grant_type": "client_credentials"})
                    assert r.status_code == 200, r.text[:300]

            def run_userinfo() -> None:
                for _ in range(args.n):
                    r = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access}"})
                    assert r.status_code == 200, r.text[:300]

            # The test client's own cost, for comparison with earlier figures; then the server's side
            # only (the WSGI application called with a prebuilt environ), profiled.
            cpu_cost("client_credentials, Flask test client", run_cc, args.n)
            cpu_cost("userinfo (GET, Bearer), Flask test client", run_userinfo, args.n)
            bearer = {"Authorization": f"Bearer {access}"}
            profile("client_credentials (WSGI call)", wsgi_calls(app, args.n, "POST", "/oauth/token", basic(client_id),
                                                                 {"grant_type": "client_credentials"}), args.n, args)
            profile("userinfo (GET, Bearer; WSGI call)", wsgi_calls(app, args.n, "GET", "/oauth/userinfo", bearer),
                    args.n, args)
            profile("userinfo (POST, form; WSGI call)",
                    wsgi_calls(app, args.n, "POST", "/oauth/userinfo", {}, {"access_token": access}), args.n, args)
            profile("discovery (GET /.well-known/openid-configuration; WSGI call)",
                    wsgi_calls(app, args.n, "GET", "/.well-known/openid-configuration", {}), args.n, args)

if __name__ == "__main__":
    main()
