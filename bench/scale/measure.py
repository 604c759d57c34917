#!/usr/bin/env python3
"""Scale benchmark (issue 3): the same requests on the small and on the large database.

    .venv/bin/python bench/scale/measure.py                      # both databases, then the comparison table
    .venv/bin/python bench/scale/measure.py --db portail_scale   # one database only (writes its JSON)
    .venv/bin/python bench/scale/measure.py --compare            # table from the JSON files already written

The databases come from ``bench/scale/generate.py`` (``portail_scale`` and ``portail_scale_small``).
The IdP runs **in-process**: ``create_app()`` and the Flask test client, one request at a time, so the
figures are the server-side cost of a request (routing, ORM, SQL round trips to PostgreSQL on
127.0.0.1, signing, templates), without HTTP parsing or a load driver competing for the two cores.
Each database is measured in its own subprocess (fresh app, fresh caches).

Scenarios (each: ``--warmup`` untimed requests, then ``-n`` timed ones):

* ``token.code``: ``POST /oauth/token`` grant_type=authorization_code (PKCE, client_secret_basic) for the
  ``multi*`` users (six memberships each, grants for sam, repernet and catalogue), client
  ``scale-client`` (``app="sam"``), scope ``openid profile email structures``; codes minted beforehand;
* ``token.refresh``: ``POST /oauth/token`` grant_type=refresh_token with the refresh tokens just issued;
* ``userinfo``: ``GET /oauth/userinfo`` with those access tokens;
* ``members.*``: ``GET /gestion/<id>/membres`` of the 50,000-member structure, logged in as its admin:
  page 1, page 1,000, ``?q=dupont``, ``?sort=last_login``, ``?sort=email&page=1000``.

For every request the script counts SQL statements and their time (SQLAlchemy ``before/after_cursor_execute``
on every engine). For each scenario, the slowest distinct SELECTs get an ``EXPLAIN (ANALYZE, BUFFERS)``
with the parameters they ran with; plans showing a sequential scan on a big table are flagged.
JSON results go to ``bench/results/scale-<db>.json``.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.scale.generate import (  # noqa: E402
    ADMIN_EMAIL,
    CLIENT_ID,
    CLIENT_SECRET,
    MULTI_EMAIL,
    PASSWORD,
    REDIRECT,
    SCOPE,
    SQLA,
    TOTP_SECRET,
)

RESULTS = ROOT / "bench" / "results"
DATABASES = ("portail_scale_small", "portail_scale")
BIG_TABLES = {"users", "memberships", "access_grants", "structures", "entitlements", "audit_events",
              "oauth_refresh_tokens", "oauth_codes", "login_sessions"}
TARGET_RATIO = 1.5
TARGET_MEMBERS_P95_MS = 100.0


# ------------------------------------------------------------------ statement log

class SqlLog:
    """Every statement of every engine: text, parameters, duration; grouped per request by the caller."""

    def __init__(self) -> None:
        self.current: list[tuple[str, object, float]] = []
        self._start: dict[int, float] = {}

    def install(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self.before)
        event.listen(Engine, "after_cursor_execute", self.after)

    def before(self, _conn, cursor, _statement, _params, _context, _many) -> None:
        self._start[id(cursor)] = time.perf_counter()

    def after(self, _conn, cursor, statement, params, _context, many) -> None:
        took = time.perf_counter() - self._start.pop(id(cursor), time.perf_counter())
        self.current.append((statement, None if many else params, took))

    def take(self) -> list[tuple[str, object, float]]:
        out, self.current = self.current, []
        return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def shape(statement: str) -> str:
    return " ".join(statement.split())


# ------------------------------------------------------------------ one database

def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()}


def login(client, email: str) -> None:
    from idp.core.totp import current_code

    r = client.post("/login", data={"email": email, "password": PASSWORD})
    if r.status_code in (302, 303) and "/login/totp" in r.headers.get("Location", ""):
        r = client.post("/login/totp", data={"code": current_code(TOTP_SECRET)})
        if r.status_code == 200:  # this 30 s step's code was used by an earlier run: wait for the next one
            time.sleep(30.5 - time.time() % 30)
            r = client.post("/login/totp", data={"code": current_code(TOTP_SECRET)})
    if r.status_code not in (302, 303) or "/login" in r.headers.get("Location", ""):
        raise SystemExit(f"login {email}: {r.status_code} {r.headers.get('Location')} {r.get_data(as_text=True)[:300]}")
    switch = urlsplit(r.headers["Location"]).path
    if "/structure" in switch:  # several structures: choose one, as the person does at login (SPEC §4.2)
        page = client.get(switch).get_data(as_text=True)
        ids = re.findall(r'value="([0-9a-f-]{36})"', page)
        if not ids:
            raise SystemExit(f"login {email}: no structure to choose at {switch}")
        r = client.post(switch, data={"structure": ids[-1]})
        if r.status_code not in (302, 303):
            raise SystemExit(f"login {email}: choosing a structure: {r.status_code}")


def mint_code(client) -> tuple[str, str]:
    verifier, challenge = pkce()
    q = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPE,
         "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
         "code_challenge_method": "S256"}
    r = client.get("/oauth/authorize?" + urlencode(q))
    loc = r.headers.get("Location", "")
    if not loc.startswith(REDIRECT):
        raise SystemExit(f"authorize: {r.status_code} {loc or r.get_data(as_text=True)[:300]}")
    return parse_qs(urlsplit(loc).query)["code"][0], verifier


def run_db(db: str, args: argparse.Namespace) -> dict:
    os.environ.setdefault("IDP_LOG_LEVEL", "WARNING")
    from sqlalchemy import select, text

    from idp import create_app
    from idp.extensions import db as sa
    from idp.models import Structure, StructureKind

    app = create_app({"DATABASE_URL": SQLA.format(db=db), "SECRET_KEY": "scale-measure", "ISSUER": "http://127.0.0.1:9300",
                      "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "AUTHORIZATION_CODE_LIFETIME": 3600})
    sql = SqlLog()
    sql.install()
    with app.app_context():
        big = sa.session.scalar(select(Structure.id).where(Structure.kind == StructureKind.REGION))
        counts = {t: sa.session.execute(text(f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{t}'")).scalar()
                  for t in ("users", "structures", "memberships", "access_grants", "audit_events")}
        size = sa.session.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
        sa.session.close()
    n, warm = args.n, args.warmup
    print(f"== {db} ({size}; ~{counts['users']:,} users, ~{counts['memberships']:,} memberships); big structure {big}",
          flush=True)

    # Logged-in browsers for a few multi-structure users (argon2: ~1 s each), codes minted untimed.
    browsers = []
    for i in range(args.users):
        c = app.test_client()
        login(c, MULTI_EMAIL.format(i=i))
        browsers.append(c)
    api = app.test_client()
    t = time.perf_counter()
    codes = [mint_code(browsers[k % len(browsers)]) for k in range(n + warm)]
    print(f"  {len(codes)} codes minted for {len(browsers)} users in {time.perf_counter() - t:.1f} s", flush=True)
    sql.take()

    results: dict[str, dict] = {}

    def measure(name: str, calls) -> list:
        times, stmts, sql_times, outs = [], [], [], []
        per_shape: dict[str, list] = {}
        for k, call in enumerate(calls):
            sql.take()
            t0 = time.perf_counter()
            out = call()
            took = time.perf_counter() - t0
            log = sql.take()
            outs.append(out)
            if k < warm:
                continue
            times.append(took * 1000)
            stmts.append(len(log))
            sql_times.append(sum(x[2] for x in log) * 1000)
            for statement, params, d in log:
                entry = per_shape.setdefault(shape(statement), [0, 0.0, 0.0, None])
                entry[0] += 1
                entry[1] += d * 1000
                if d * 1000 >= entry[2]:
                    entry[2], entry[3] = d * 1000, params
        res = {"n": len(times), "p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "mean_ms": statistics.fmean(times),
               "max_ms": max(times), "sql_per_request": statistics.fmean(stmts), "sql_ms_mean": statistics.fmean(sql_times),
               "statements": sorted(({"sql": s, "per_request": v[0] / len(times), "mean_ms": v[1] / v[0], "max_ms": v[2],
                                      "_params": v[3]} for s, v in per_shape.items()), key=lambda x: -x["mean_ms"])}
        results[name] = res
        print(f"  {name:22s} p50 {res['p50_ms']:7.2f}  p95 {res['p95_ms']:7.2f}  mean {res['mean_ms']:7.2f} ms  "
              f"SQL {res['sql_per_request']:.1f} stmts / {res['sql_ms_mean']:.2f} ms", flush=True)
        return outs

    def exchange(code: str, verifier: str):
        def call():
            r = api.post("/oauth/token", headers=basic(), data={"grant_type": "authorization_code", "code": code,
                                                                "redirect_uri": REDIRECT, "code_verifier": verifier})
            if r.status_code != 200:
                raise SystemExit(f"token: {r.status_code} {r.get_data(as_text=True)[:300]}")
            return r.get_json()
        return call

    tokens = measure("token.code", [exchange(c, v) for c, v in codes])
    body = tokens[0]
    claims = json.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[1] + "=="))
    print(f"  id_token structure claims: structure={claims.get('structure', {}).get('name')!r}, "
          f"{len(claims.get('structures', []))} structures, roles={claims.get('roles')}", flush=True)
    results["_sample_claims"] = {k: claims.get(k) for k in ("structure", "roles", "structures")}

    def refresh(token: str):
        def call():
            r = api.post("/oauth/token", headers=basic(), data={"grant_type": "refresh_token", "refresh_token": token})
            if r.status_code != 200:
                raise SystemExit(f"refresh: {r.status_code} {r.get_data(as_text=True)[:300]}")
            return r.get_json()
        return call

    refresh_tokens = [tok["refresh_token"] for tok in tokens]
    refreshed = measure("token.refresh", [refresh(tok) for tok in refresh_tokens])

    def userinfo(access: str):
        def call():
            r = api.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access}"})
            if r.status_code != 200:
                raise SystemExit(f"userinfo: {r.status_code} {r.get_data(as_text=True)[:300]}")
            return None
        return call

    access = [tok["access_token"] for tok in refreshed]
    measure("userinfo", [userinfo(access[k % len(access)]) for k in range(n + warm)])

    admin = app.test_client()
    login(admin, ADMIN_EMAIL)
    base = f"/gestion/{big}/membres"

    def page(query: str, expect: str | None = None):
        def call():
            r = admin.get(base + query)
            if r.status_code != 200:
                raise SystemExit(f"members{query}: {r.status_code} {r.get_data(as_text=True)[:300]}")
            if expect and expect not in r.get_data(as_text=True):
                raise SystemExit(f"members{query}: {expect!r} missing")
            return None
        return call

    pn = args.pages_n
    for name, query in (("members.page1", ""), ("members.page1000", "?page=1000"), ("members.search", "?q=dupont"),
                        ("members.last_login", "?sort=last_login"), ("members.email", "?sort=email&page=1000")):
        measure(name, [page(query, "Dupont" if "dupont" in query else None) for _ in range(pn + warm)][: pn + warm])
    print(f"  (members page scenarios: {pn} timed requests each)", flush=True)

    # EXPLAIN ANALYZE of the slowest SELECTs of each scenario, with their own parameters.
    import psycopg

    plans: dict[str, list] = {}
    with psycopg.connect(SQLA.format(db=db).replace("+psycopg", "")) as conn:
        for name, res in results.items():
            if name.startswith("_"):
                continue
            plans[name] = []
            for st in [s for s in res["statements"] if s["sql"].upper().startswith("SELECT")][: args.explain]:
                try:
                    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + st["sql"], st["_params"] or None).fetchall()
                    plan = "\n".join(r[0] for r in rows)
                except Exception as exc:  # noqa: BLE001 (a plan we cannot get is reported, not fatal)
                    conn.rollback()
                    plan = f"(no plan: {exc})"
                seq = sorted({m for m in re.findall(r"Seq Scan on (\w+)", plan) if m in BIG_TABLES})
                plans[name].append({"sql": st["sql"][:2000], "mean_ms": st["mean_ms"], "seq_scans_on_big_tables": seq,
                                    "plan": plan})
            conn.rollback()
    for res in results.values():
        for st in res.get("statements", []):
            st.pop("_params", None)
    return {"db": db, "size": size, "rows": counts, "big_structure": str(big), "results": results, "plans": plans,
            "users_logged_in": args.users, "machine": machine(), "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def machine() -> dict:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": cpu, "load_avg": os.getloadavg(), "python": sys.version.split()[0]}


# ------------------------------------------------------------------ comparison

SCENARIOS = ["token.code", "token.refresh", "userinfo", "members.page1", "members.page1000", "members.search",
             "members.last_login", "members.email"]


def compare() -> list[str]:
    docs = {}
    for db in DATABASES:
        path = RESULTS / f"scale-{db}.json"
        if path.exists():
            docs[db] = json.loads(path.read_text())
    if len(docs) < 2:
        return ["(both JSON files are needed for the comparison)"]
    small, large = docs[DATABASES[0]], docs[DATABASES[1]]
    lines = [f"small: {small['db']} ({small['size']}, measured {small['at']}, load {small['machine']['load_avg'][0]:.1f}); "
             f"large: {large['db']} ({large['size']}, measured {large['at']}, load {large['machine']['load_avg'][0]:.1f})", "",
             "| request | small p50 / p95 / mean (ms) | large p50 / p95 / mean (ms) | ratio p50 / p95 / mean | SQL stmts small → large | target |",
             "|---|---|---|---|---|---|"]
    for name in SCENARIOS:
        s, g = small["results"].get(name), large["results"].get(name)
        if not s or not g:
            continue
        ratios = [g[k] / s[k] for k in ("p50_ms", "p95_ms", "mean_ms")]
        ok = ratios[0] <= TARGET_RATIO and ratios[2] <= TARGET_RATIO
        target = f"{'met' if ok else 'NOT met'} (≤ {TARGET_RATIO}×)"
        if name.startswith("members"):
            ok_p95 = g["p95_ms"] < TARGET_MEMBERS_P95_MS
            target += f"; p95 < 100 ms: {'met' if ok_p95 else 'NOT met'}"
        lines.append(f"| {name} | {s['p50_ms']:.1f} / {s['p95_ms']:.1f} / {s['mean_ms']:.1f} | "
                     f"{g['p50_ms']:.1f} / {g['p95_ms']:.1f} / {g['mean_ms']:.1f} | "
                     f"{ratios[0]:.2f} / {ratios[1]:.2f} / {ratios[2]:.2f} | "
                     f"{s['sql_per_request']:.1f} → {g['sql_per_request']:.1f} | {target} |")
    flagged = [(name, p["seq_scans_on_big_tables"], p["sql"][:160]) for name, ps in large["plans"].items() for p in ps
               if p["seq_scans_on_big_tables"]]
    lines += ["", "Sequential scans on big tables in the large database's plans: "
              + ("none" if not flagged else "; ".join(f"{n}: {t} in `{s}`" for n, t, s in flagged))]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="measure this database only (in this process)")
    ap.add_argument("--compare", action="store_true", help="only print the comparison of the JSON files")
    ap.add_argument("-n", type=int, default=300, help="timed requests per token/userinfo scenario")
    ap.add_argument("--pages-n", type=int, default=300, help="timed requests per members-page scenario")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--users", type=int, default=10, help="multi-structure users logged in for the token flows")
    ap.add_argument("--explain", type=int, default=3, help="slowest SELECTs explained per scenario")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.compare:
        print("\n".join(compare()))
        return
    if args.db:
        doc = run_db(args.db, args)
        path = RESULTS / f"scale-{args.db}.json"
        path.write_text(json.dumps(doc, indent=1, default=str))
        print(f"  → {path}")
        return
    for db in DATABASES:
        cmd = [sys.executable, __file__, "--db", db, "-n", str(args.n), "--pages-n", str(args.pages_n),
               "--warmup", str(args.warmup), "--users", str(args.users), "--explain", str(args.explain)]
        subprocess.run(cmd, check=True, timeout=3600)
    print()
    print("\n".join(compare()))


if __name__ == "__main__":
    main()
