#!/usr/bin/env python3
"""Portail benchmark (issue item 9): the IdP under gunicorn on loopback, beside the reference peers.

A script, not a test. Run it from the repository root with the project's venv:

    .venv/bin/python bench/run.py                 # PostgreSQL 127.0.0.1:5432, database portail_bench
    .venv/bin/python bench/run.py --sqlite        # SQLite file under /tmp instead
    .venv/bin/python bench/run.py --peers         # also re-measure peer A (oidc-provider) and B (Canaille)

What it does, each step bounded in time, all traffic on 127.0.0.1:
  1. creates a fresh database (DROP/CREATE portail_bench, or a new SQLite file), runs the migrations;
  2. seeds the peers' conventions through the IdP's Python API: users alice@bench.test and
     bench0..bench199@bench.test, clients bench-client (RS256 ID tokens) and bench-client-es256;
  3. measures the argon2id hash time with the configured (OWASP) parameters: the login target;
  4. starts the IdP on 127.0.0.1:9300 with each serving model of --servers in turn (granian's WSGI
     interface, gunicorn gthread, gunicorn sync; one worker per core, same threads), waits for discovery;
  5. runs /work/shared/peers/bench_op.py (discovery, jwks, client_credentials, refresh_token,
     userinfo, login) and bench/code_exchange.py (the token endpoint's code exchange alone), for the
     RS256 client, then refresh/login/code exchange for the ES256 client;
  6. reads each worker's resident memory, stops the server (then the next serving model);
  7. with --peers, measures the peers the same way (one server at a time);
  8. writes JSON under bench/results/ and prints the side-by-side table (summarize.py) and the targets.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PEERS = Path("/work/shared/peers")
PEERS_DIR = Path(os.environ.get("PEERS_DIR", "/tmp/peers"))
DRIVER_PY = PEERS_DIR / "venv" / "bin" / "python"
REDIRECT = "http://127.0.0.1:9999/callback"
SCOPE = "openid profile email structures"  # Portail's clients; the peers get PEER_SCOPE
PEER_SCOPE = "openid profile email"
CLIENT_APP = "sam"  # the application whose roles the bench clients see in the structure claims
# The bench users are spread over two structures (a siège and its établissement; even numbers in the
# first, odd in the second) with SAM roles, so the token and userinfo figures include the structure
# claims (SPEC §5.2). One structure each: a member of several gets the structure choice at every
# login, which would add a page to the login row and break the peers' like-for-like flow.
STRUCTURES = [
    ("Bench Formation", "12345678200010", ["sam:redacteur", "sam:signataire", "repernet:lecteur"]),
    ("Bench Formation — établissement", "12345678200028", ["sam:redacteur"]),
]
N_USERS = 200
USER_TEMPLATE = "bench{i}@bench.test"
USER_PASSWORD = "bench-password-123"

# Targets of issue item 9, per CPU core (one gunicorn worker per core).
TARGETS = {  # scenario -> req/s per core
    "client_credentials": 800, "userinfo": 1000, "discovery": 1500, "jwks": 1500,
    "code_exchange@RS256": 300, "refresh_token@RS256": 300,
    "code_exchange@ES256": 500, "refresh_token@ES256": 500,
}
RSS_LIMIT_MB = 150


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ database and seed

def make_schema(url: str, mode: str) -> None:
    """The IdP's migrations (default), or the models' metadata (`--schema models`: while a branch's
    migrations lag behind its models; never what production runs)."""
    if mode == "migrations":
        from idp.migrations import upgrade

        upgrade(url)
        return
    from sqlalchemy import create_engine

    import idp.models  # noqa: F401  (registers every table)
    from idp.models.base import Base

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def fresh_database(args: argparse.Namespace) -> str:
    if args.sqlite:
        path = Path(args.sqlite_path)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(args.pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.pg_db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.pg_db}"')
    return f"postgresql+psycopg://{args.pg_user}@127.0.0.1:{args.pg_port}/{args.pg_db}"


class _OnceHasher:
    """Hashes each distinct password once (argon2id, real parameters): seeding 201 users stays fast."""

    def __init__(self, hasher):
        self.hasher, self.cache = hasher, {}

    def hash(self, password: str) -> str:
        if password not in self.cache:
            self.cache[password] = self.hasher.hash(password)
        return self.cache[password]

    def __getattr__(self, name):
        return getattr(self.hasher, name)


def seed(url: str, secret_key: str, issuer: str) -> None:
    """Users, structures, memberships and clients through the IdP's own API (idp.core.accounts,
    idp.core.structures, idp.core.memberships, idp.oidc.clients)."""
    from sqlalchemy import select

    from idp import create_app
    from idp.core.accounts import create_user, find_user
    from idp.core.catalogue import ensure_catalogue
    from idp.core.memberships import add_member, grants_by_key, membership_of, operator_authority
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure, find_by_siret
    from idp.extensions import db
    from idp.models import Client
    from idp.oidc.clients import ClientSpec, create_client
    from idp.oidc.keys import ensure_keys

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret_key, "ISSUER": issuer})
    with app.app_context():
        session = db.session
        hasher = _OnceHasher(app.extensions["hasher"])
        ensure_keys(session, app.config)
        people = [("alice@bench.test", "alice-password-123", "Alice", "Bench")]
        people += [(USER_TEMPLATE.format(i=i), USER_PASSWORD, "Bench", f"User{i}") for i in range(N_USERS)]
        users = []
        for email, password, given, family in people:
            user = find_user(session, email) or create_user(
                session, hasher, SYSTEM, email=email, password=password, given_name=given, family_name=family,
                verified=True)
            users.append(user)
        ensure_catalogue(session)
        for k, (name, siret, grants) in enumerate(STRUCTURES):
            structure = find_by_siret(session, siret) or create_structure(
                session, StructureData(siret=siret, name=name, city="Lyon", postal_code="69003"), SYSTEM)
            auth, role_ids = operator_authority(session, structure), grants_by_key(session, grants)
            for user in users[k::len(STRUCTURES)]:
                if membership_of(session, user.id, structure.id) is None:
                    add_member(session, auth, user, SYSTEM, role_ids=role_ids)
        for client_id, alg in (("bench-client", "RS256"), ("bench-client-es256", "ES256")):
            if session.scalar(select(Client.id).where(Client.client_id == client_id)) is None:
                create_client(session, ClientSpec(
                    name=f"bench {alg}", client_id=client_id, client_secret="bench-secret",
                    redirect_uris=[REDIRECT], grant_types=["authorization_code", "refresh_token", "client_credentials"],
                    trusted=True, scope=SCOPE, app=CLIENT_APP, id_token_signed_response_alg=alg), SYSTEM)
        session.commit()
        db.engine.dispose()


def argon2_hash_time(n: int = 20) -> dict:
    """Median wall time of one argon2id hash with the IdP's configured parameters (idp/config.py)."""
    from argon2 import PasswordHasher

    from idp import config

    ph = PasswordHasher(time_cost=config.ARGON2_TIME_COST, memory_cost=config.ARGON2_MEMORY_COST,
                        parallelism=config.ARGON2_PARALLELISM)
    ph.hash("warm-up")
    times = []
    for i in range(n):
        t = time.perf_counter()
        ph.hash(f"bench-password-{i}")
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"params": {"t": config.ARGON2_TIME_COST, "m_kib": config.ARGON2_MEMORY_COST, "p": config.ARGON2_PARALLELISM},
            "median_s": med, "min_s": min(times), "max_s": max(times),
            "login_target_per_core": 0.8 / med}


# ------------------------------------------------------------------ gunicorn

def wait_http(url: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback only
                if r.status == 200:
                    return True
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.3)
    return False


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


SERVERS = ("gthread", "sync", "granian")  # the serving models --servers can measure side by side


def server_command(kind: str, args: argparse.Namespace) -> list[str]:
    """The command line of one serving model, all of them on the same app, port and worker count."""
    workers, bind = str(args.gunicorn_workers), f"127.0.0.1:{args.port}"
    if kind == "granian":
        return [str(ROOT / ".venv" / "bin" / "granian"), "--interface", "wsgi", "idp.wsgi:app",
                "--host", "127.0.0.1", "--port", str(args.port), "--workers", workers,
                "--blocking-threads", str(args.threads), "--no-ws", "--log-level", "warning"]
    gunicorn = [str(ROOT / ".venv" / "bin" / "gunicorn"), "idp.wsgi:app", "-w", workers, "-b", bind,
                "--no-control-socket", "--log-level", "warning"]
    if kind == "sync":
        return gunicorn + ["--worker-class", "sync"]
    return gunicorn + ["--worker-class", "gthread", "--threads", str(args.threads)]


def start_server(kind: str, args: argparse.Namespace, url: str, secret_key: str, issuer: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({
        "IDP_DATABASE_URL": url, "IDP_ISSUER": issuer, "IDP_SECRET_KEY": secret_key,
        # the login benchmark must not meet the rate limits: high limits (the limiter still runs)
        "IDP_RATELIMIT_LOGIN_IP": "1000000/minute", "IDP_RATELIMIT_LOGIN_ACCOUNT": "1000000/minute",
        "IDP_RATELIMIT_TOKEN_IP": "", "IDP_RATELIMIT_SIGNUP_IP": "1000000/minute",
        "IDP_RATELIMIT_RESET_IP": "1000000/minute",
        # Resident memory (issue: < 150 MB per worker). argon2id takes 7 MiB per hash: one hash at
        # a time per worker (one worker per core, so the box hashes on every core at most), and few
        # malloc arenas so the freed 7 MiB blocks are reused rather than kept per thread.
        "IDP_ARGON2_MAX_CONCURRENCY": str(args.argon2_concurrency),
        "MALLOC_ARENA_MAX": str(args.malloc_arena_max),
    })
    if args.redis:
        env["IDP_REDIS_URL"] = "redis://127.0.0.1:6379/15"
    cmd = server_command(kind, args)
    logf = open(RESULTS / f"server-{kind}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    if not wait_http(f"{issuer}/.well-known/openid-configuration", 40):
        stop(proc)
        sys.exit(f"the IdP did not answer discovery; see {RESULTS / f'server-{kind}.log'}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------ driver

def bench_op(args, issuer, label, out, *, client_id="bench-client", user=USER_TEMPLATE, password=USER_PASSWORD,
             users=N_USERS, server_pid=None, scenarios=None, scope=SCOPE) -> Path:
    cmd = [str(DRIVER_PY), str(PEERS / "bench_op.py"), issuer, "--client-id", client_id, "--scope", scope,
           "--client-secret", "bench-secret", "--redirect-uri", REDIRECT, "--user", user, "--password", password,
           "--users", str(users), "--workers", str(args.driver_workers), "--duration", str(args.duration),
           "--repeat", str(args.repeat), "--label", label, "--json-out", str(out)]
    if scenarios:
        cmd += ["--scenarios", scenarios]
    if server_pid:
        cmd += ["--server-pid", str(server_pid)]
    log(f"bench_op {label} ({scenarios or 'all scenarios'})")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=3600)
    return out


def code_exchange(args, issuer, label, *, client_id="bench-client", user=USER_TEMPLATE, password=USER_PASSWORD,
                  users=N_USERS, scope=SCOPE) -> dict | None:
    out = RESULTS / f"{label}-code_exchange.json"
    cmd = [str(DRIVER_PY), str(ROOT / "bench" / "code_exchange.py"), issuer, "--client-id", client_id, "--scope", scope,
           "--client-secret", "bench-secret", "--user", user, "--password", password, "--users", str(users),
           "--workers", str(args.driver_workers), "--duration", str(args.duration), "--repeat", str(args.repeat),
           "--json-out", str(out)]
    log(f"code exchange {label}")
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=600)
    except subprocess.SubprocessError as e:
        log(f"code exchange {label} failed: {e}")
        return None
    return json.loads(out.read_text())


def merge(json_path: Path, extra: dict[str, dict], rename: dict[str, str] | None = None) -> None:
    """Add scenarios (e.g. code_exchange) to a bench_op JSON so summarize.py shows them as rows."""
    doc = json.loads(json_path.read_text())
    for old, new in (rename or {}).items():
        if old in doc["summary"]:
            doc["summary"][new] = doc["summary"].pop(old)
            doc["config"]["scenarios"] = [new if s == old else s for s in doc["config"]["scenarios"]]
    for name, entry in extra.items():
        if entry is None:
            continue
        doc["summary"][name] = entry
        if name not in doc["config"]["scenarios"]:
            doc["config"]["scenarios"].append(name)
    json_path.write_text(json.dumps(doc, indent=1))


def descendants(pid: int) -> list[int]:
    out = []
    for child in children(pid):
        out += [child, *descendants(child)]
    return out


def bench_portail(args, url: str) -> tuple[list[Path], dict]:
    """Every serving model of --servers on the same database, one after another; the ES256 rows
    (refresh, login, code exchange) only for the first one unless --es256-all."""
    secret_key = "bench-" + os.urandom(16).hex()
    issuer = f"http://127.0.0.1:{args.port}"
    log(f"seeding {url}")
    seed(url, secret_key, issuer)
    extra: dict = {"servers": {}}
    files = []
    tag = "pg" if not args.sqlite else "sqlite"
    for n, kind in enumerate(args.servers.split(",")):
        proc = start_server(kind, args, url, secret_key, issuer)
        info: dict = {"workers": args.gunicorn_workers, "threads": args.threads, "master_pid": proc.pid}
        try:
            rs = RESULTS / f"portail-{tag}-{kind}-rs256.json"
            bench_op(args, issuer, f"portail-{tag} {kind} RS256", rs, server_pid=proc.pid, scenarios=args.scenarios)
            merge(rs, {"code_exchange": code_exchange(args, issuer, f"portail-{tag}-{kind}-rs256")})
            files.append(rs)
            if not args.no_es256 and (n == 0 or args.es256_all):
                es = RESULTS / f"portail-{tag}-{kind}-es256.json"
                bench_op(args, issuer, f"portail-{tag} {kind} ES256", es, client_id="bench-client-es256",
                         server_pid=proc.pid, scenarios="refresh_token,login")
                merge(es, {"code_exchange": code_exchange(args, issuer, f"portail-{tag}-{kind}-es256",
                                                          client_id="bench-client-es256")})
                files.append(es)
            info["rss_mb"] = {"master": rss_mb(proc.pid), "workers": {w: rss_mb(w) for w in descendants(proc.pid)}}
        finally:
            stop(proc)
        extra["servers"][kind] = info
        time.sleep(1)
    first = extra["servers"][args.servers.split(",")[0]]
    extra["rss_mb"] = first.get("rss_mb")
    return files, extra


def bench_peers(args) -> list[Path]:
    files = []
    env = dict(os.environ, PEERS_DIR=str(PEERS_DIR))
    for conf in args.peer_configs.split(","):
        subprocess.run([str(PEERS / "stop_peers.sh")], env=env, check=False, stdout=subprocess.DEVNULL)
        try:
            if conf.startswith("a-"):
                subprocess.run([str(PEERS / "start_peer_a.sh")], env=dict(env, PEER_A_STORE=conf[2:]), check=True)
                issuer, pidf = "http://127.0.0.1:9100", "peer_a.pid"
            elif conf.startswith("b-"):
                subprocess.run([str(PEERS / "setup_peer_b.sh")], env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                subprocess.run([str(PEERS / "start_peer_b.sh")], env=dict(env, PEER_B_SERVER=conf[2:]), check=True)
                issuer, pidf = "http://127.0.0.1:9200", "peer_b.pid"
            else:
                sys.exit(f"unknown peer config {conf}")
            pid = int((PEERS_DIR / "run" / pidf).read_text())
            out = RESULTS / f"peer-{conf}.json"
            bench_op(args, issuer, conf, out, user="bench{i}", server_pid=pid, scenarios=args.scenarios,
                     scope=PEER_SCOPE)
            merge(out, {"code_exchange": code_exchange(args, issuer, f"peer-{conf}", user="bench{i}",
                                                       scope=PEER_SCOPE)})
            files.append(out)
        finally:
            subprocess.run([str(PEERS / "stop_peers.sh")], env=env, check=False, stdout=subprocess.DEVNULL)
    return files


# ------------------------------------------------------------------ report

def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": model, "mem_gib": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "kernel": platform.release()}


def targets_report(files: list[Path], argon: dict, extra: dict, cores: int) -> list[str]:
    lines = ["| target (per core) | needed on this box | measured | met |", "|---|---|---|---|"]
    docs = {json.loads(f.read_text())["label"]: json.loads(f.read_text()) for f in files}
    rs = next((d for k, d in docs.items() if k.startswith("portail") and "RS256" in k), None)
    es = next((d for k, d in docs.items() if k.startswith("portail") and "ES256" in k), None)

    def rps(doc, name):
        e = (doc or {}).get("summary", {}).get(name) or {}
        return e.get("rps") if e.get("supported", True) else None

    for key, per_core in TARGETS.items():
        name, _, alg = key.partition("@")
        doc = es if alg == "ES256" else rs
        got = rps(doc, name)
        need = per_core * cores
        lines.append(f"| {key}: ≥ {per_core}/s | ≥ {need:,}/s | {got if got is not None else '-'} | "
                     f"{'yes' if got is not None and got >= need else 'no'} |")
    need = argon["login_target_per_core"] * cores
    for doc, alg in ((rs, "RS256"), (es, "ES256")):
        got = rps(doc, "login")
        lines.append(f"| login@{alg}: ≥ 0.8 / argon2id ({argon['median_s'] * 1000:.1f} ms) = "
                     f"{argon['login_target_per_core']:.1f}/s | ≥ {need:.1f}/s | {got if got is not None else '-'} | "
                     f"{'yes' if got is not None and got >= need else 'no'} |")
    for pid, mb in (extra.get("rss_mb", {}).get("workers") or {}).items():
        lines.append(f"| worker {pid} RSS < {RSS_LIMIT_MB} MB | | {mb:.1f} MB | {'yes' if mb and mb < RSS_LIMIT_MB else 'no'} |")
    return lines


def ratio_tables(files: list[Path], peer_files: list[Path]) -> list[str]:
    """Req/s of every Portail column beside peer A and B, with Portail ÷ peer A per server; then the
    same per fully used server core (req/s ÷ the server's CPU share; the database's CPU not counted)."""
    docs = [json.loads(f.read_text()) for f in files + peer_files]
    portail = [d for d in docs if d["label"].startswith("portail")]
    peer_a = next((d for d in docs if d["label"].startswith("a-")), None)
    peers = [d for d in docs if not d["label"].startswith("portail")]
    scenarios: list[str] = []
    for d in docs:
        scenarios += [s for s in d["config"]["scenarios"] if s not in scenarios]

    def entry(doc, name):
        e = (doc or {}).get("summary", {}).get(name) or {}
        return e if e.get("supported", True) and e.get("rps") is not None else None

    def per_core(e):
        cpu = e and e.get("server_cpu_pct")
        return e["rps"] / (cpu / 100) if cpu else None

    lines = []
    for title, value in (("req/s", lambda e: e["rps"] if e else None), ("req/s per server core", per_core)):
        head = [d["label"] for d in portail + peers] + [f"{d['label'].removeprefix('portail-')} ÷ A" for d in portail]
        lines += [f"### {title}", "", "| scenario | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
        for name in scenarios:
            cells, ratios = [], []
            a = value(entry(peer_a, name)) if peer_a else None
            for d in portail + peers:
                v = value(entry(d, name))
                cells.append(f"{v:,.1f}" if v is not None else "-")
            for d in portail:
                v = value(entry(d, name))
                ratios.append(f"{v / a:.2f}" if v is not None and a else "-")
            lines.append(f"| {name} | " + " | ".join(cells + ratios) + " |")
        lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sqlite", action="store_true", help="SQLite file instead of PostgreSQL")
    ap.add_argument("--sqlite-path", default="/tmp/portail-bench/idp.sqlite3")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--pg-user", default="postgres")
    ap.add_argument("--pg-port", type=int, default=5432)
    ap.add_argument("--pg-db", default="portail_bench")
    ap.add_argument("--schema", choices=["migrations", "models"], default="migrations",
                    help="build the schema with the migrations (default) or from the models' metadata")
    ap.add_argument("--redis", action="store_true", help="rate-limit storage in Redis (127.0.0.1:6379/15)")
    ap.add_argument("--port", type=int, default=9300)
    ap.add_argument("--gunicorn-workers", type=int, default=os.cpu_count() or 2, help="default: one per core")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker (gthread; granian's blocking threads)")
    ap.add_argument("--servers", default="gthread",
                    help=f"comma-separated serving models to measure, in order, among {', '.join(SERVERS)}")
    ap.add_argument("--es256-all", action="store_true", help="ES256 rows for every server, not only the first")
    ap.add_argument("--argon2-concurrency", type=int, default=1, help="IDP_ARGON2_MAX_CONCURRENCY per worker")
    ap.add_argument("--malloc-arena-max", type=int, default=1, help="MALLOC_ARENA_MAX for gunicorn (idp serve's)")
    ap.add_argument("--driver-workers", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (max 10)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per scenario (max 2)")
    ap.add_argument("--scenarios", default=None, help="bench_op scenarios for the RS256 run (default: all)")
    ap.add_argument("--no-es256", action="store_true")
    ap.add_argument("--peers", action="store_true", help="also measure the peers in this run")
    ap.add_argument("--peer-configs", default="a-sqlite,b-gunicorn")
    ap.add_argument("--peer-results", nargs="*", default=[],
                    help="earlier peer JSONs to put in the table (when not --peers)")
    args = ap.parse_args()
    args.duration = max(1.0, min(args.duration, 10.0))
    args.repeat = max(1, min(args.repeat, 2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    if unknown := set(args.servers.split(",")) - set(SERVERS):
        sys.exit(f"unknown servers: {', '.join(sorted(unknown))}")
    if not DRIVER_PY.exists():
        sys.exit(f"{DRIVER_PY} missing: run {PEERS / 'install_peers.sh'} first")
    # whole-run watchdog
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("bench/run.py watchdog")))
    signal.alarm(3 * 3600)

    info = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    log(f"machine: {info['machine']}")
    log("argon2id hash time (median of 20)")
    info["argon2"] = argon2_hash_time()
    log(f"argon2id: {info['argon2']['median_s'] * 1000:.1f} ms -> login target "
        f"{info['argon2']['login_target_per_core']:.1f}/s per core")
    url = fresh_database(args)
    log(f"schema ({args.schema}) on {url}")
    make_schema(url, args.schema)
    info["schema"] = args.schema
    files, extra = bench_portail(args, url)
    info.update(extra)
    peer_files = bench_peers(args) if args.peers else [Path(p) for p in args.peer_results]
    (RESULTS / "run-info.json").write_text(json.dumps(info, indent=1, default=str))
    table = subprocess.run([str(DRIVER_PY), str(PEERS / "summarize.py"), *map(str, files + peer_files)],
                           check=True, capture_output=True, text=True).stdout
    print(f"## Figures ({info['started']}, {info['machine']['nproc']} cores, {info['machine']['cpu']})\n")
    print(table)
    print("\n".join(ratio_tables(files, peer_files)))
    print("## Targets\n")
    print("\n".join(targets_report(files, info["argon2"], extra, args.gunicorn_workers)))
    print(f"\nRSS: {json.dumps(extra.get('rss_mb'))}")
    if not args.sqlite:
        log(f"database {args.pg_db} left in place for inspection")


if __name__ == "__main__":
    main()
