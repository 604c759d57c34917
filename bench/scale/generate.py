#!/usr/bin/env python3
"""Seed a PostgreSQL database for the scale benchmark (issue 3): users, structures, memberships,
access grants, entitlements and audit events, bulk-loaded with COPY.

    .venv/bin/python bench/scale/generate.py                 # portail_scale: 1,000,000 users, 200,000 structures,
                                                             # 2,000,000 memberships, 1,000,000 audit events
    .venv/bin/python bench/scale/generate.py --small         # portail_scale_small: 60,000 users, 2,000 structures,
                                                             # 70,000 memberships (the same 50,000-member structure)

The database is dropped and created again; the schema comes from ``idp.migrations.upgrade`` (which also
adds the applications/roles catalogue). Then, with foreign-key triggers off for the session
(``session_replication_role = replica``; the generated rows are consistent by construction):

* structures: valid SIREN and SIRET (Luhn keys via ``stdnum.luhn``), 8 % établissements secondaires
  sharing their siège's SIREN, 1 % lycées with a UAI code; structure 0 is the Région with exactly
  ``--big`` members (50,000) and every role entitled;
* sizes of the other structures follow a capped Pareto law: most have 1-5 members, a few thousands;
* users: every account has the same argon2id hash (computed once, real parameters), French names
  (common surnames, "Dupont" among them, and a long tail), 80 % with a last login date;
  per-user membership counts 0-10 (mean 2);
* fixed accounts for the measurements (password ``scale-password-123``, as for everyone, and TOTP with
  the secret ``TOTP_SECRET``, since administrators must use a second factor):
  ``admin.region@scale.test`` (admin of the 50,000-member structure) and
  ``multi0..multi199@scale.test`` (six memberships each, one of them in the big structure, with grants
  for sam, repernet and catalogue in every one);
* access grants: ~1 per membership among the structure's entitled roles, 10 % with an end date;
* audit events: token issuances and logins, like a platform that has been running for a while;
* an OIDC client ``scale-client`` / ``scale-secret`` (``app="sam"``, trusted, code + refresh), signing keys.

Ends with ``ANALYZE``. Prints progress and the time of each step.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from stdnum import luhn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PASSWORD = "scale-password-123"
ADMIN_EMAIL = "admin.region@scale.test"
MULTI_EMAIL = "multi{i}@scale.test"
N_MULTI = 200
MULTI_MEMBERSHIPS = 6
# The fixed accounts are admins somewhere, and admins must use TOTP (TOTP_REQUIRED_FOR_ADMINS): a known secret.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CLIENT_ID = "scale-client"
CLIENT_SECRET = "scale-secret"
REDIRECT = "http://127.0.0.1:9999/callback"
SCOPE = "openid profile email structures"
PG = "postgresql://postgres@127.0.0.1:5432/{db}"
SQLA = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"

LARGE = {"db": "portail_scale", "users": 1_000_000, "structures": 200_000, "memberships": 2_000_000,
         "audit": 1_000_000}
SMALL = {"db": "portail_scale_small", "users": 60_000, "structures": 2_000, "memberships": 70_000,
         "audit": 20_000}

SURNAMES = """martin bernard dubois thomas robert richard petit durand leroy moreau simon laurent lefebvre
michel garcia david bertrand roux vincent fournier morel girard andre lefevre mercier dupont lambert bonnet
francois martinez legrand garnier faure rousseau blanc guerin muller henry roussel nicolas perrin morin
mathieu clement gauthier dumont lopez fontaine chevalier robin masson sanchez gerard nguyen boyer denis
lemaire duval joly gautier roger roche roy noel meyer lucas meunier jean perez marchand dufour blanchard
marie barbier brun dumas brunet schmitt leroux colin fernandez pierre renard arnaud rolland caron aubert
giraud leclerc vidal bourgeois renaud lemoine picard gaillard philippe leclercq lacroix fabre dupuis
olivier rodriguez da-silva hubert louis charles guillot riviere le-gall guillaume adam rey moulin gonzalez
berger lecomte menard fleury deschamps carpentier julien benoit paris maillard marchal aubry vasseur
le-roux renault jacquet collet prevost poirier charpentier royer huet baron dupuy pons paul laine carre
breton remy schneider perrot guyot barre marty cousin dupontel duponchel""".split()  # noqa: SIM905
GIVEN = """marie jean pierre michel philippe nathalie isabelle sylvie catherine francoise alain patrick
nicolas christophe stephane sandrine valerie christine sophie laurent frederic david eric julien celine
aurelie camille lea manon emma chloe ines lucas hugo louis gabriel arthur jules adam raphael paul
thomas antoine mathilde juliette claire anne helene agnes bernard daniel""".split()  # noqa: SIM905
SYLLABLES = "ba be bi bo bu da de di do du fa fe fi lo la le li ma me mi mo na ne ni no ra re ri ro sa se si so ta te ti to va ve vi".split()  # noqa: SIM905
CITIES = [("Lyon", "69003"), ("Grenoble", "38000"), ("Saint-Étienne", "42000"), ("Clermont-Ferrand", "63000"),
          ("Annecy", "74000"), ("Valence", "26000"), ("Chambéry", "73000"), ("Bourg-en-Bresse", "01000"),
          ("Villeurbanne", "69100"), ("Roanne", "42300"), ("Vichy", "03200"), ("Aurillac", "15000"),
          ("Le Puy-en-Velay", "43000"), ("Privas", "07000"), ("Montélimar", "26200"), ("Vienne", "38200")]
ORG_WORDS = ["Association", "Centre de formation", "Institut", "Organisme", "Maison", "Atelier", "Collectif",
             "Agence", "École", "Groupement", "Académie", "Cabinet", "Réseau", "Fondation"]
ORG_TOPICS = ["des métiers", "du numérique", "de la santé", "des langues", "du bâtiment", "de l'industrie",
              "du tourisme", "de l'agriculture", "de la mobilité", "des arts", "de l'insertion", "du commerce"]

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def ts(dt: datetime | None) -> str:
    return r"\N" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S+00")


def fast_uuids(rng: random.Random, n: int) -> list[uuid.UUID]:
    """n random version-4 UUIDs from the seeded generator (reproducible runs)."""
    out = []
    for _ in range(n):
        b = bytearray(rng.getrandbits(128).to_bytes(16, "big"))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        out.append(uuid.UUID(bytes=bytes(b)))
    return out


def siren_of(base8: int) -> str:
    digits = f"{base8:08d}"
    return digits + luhn.calc_check_digit(digits)


def siret_of(siren: str, nic4: int) -> str:
    digits = f"{siren}{nic4:04d}"
    return digits + luhn.calc_check_digit(digits)


def pick_surname(rng: random.Random) -> str:
    if rng.random() < 0.65:  # common names, Zipf-like: the first ones are the most frequent
        return SURNAMES[min(int(rng.paretovariate(0.9)) - 1, len(SURNAMES) - 1) if rng.random() < 0.5
                        else rng.randrange(len(SURNAMES))]
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def fix_total(values: list[int], target: int, rng: random.Random, minimum: int) -> None:
    """Nudge random entries by ±1 (never below minimum) until the sum is exactly target."""
    diff = target - sum(values)
    n = len(values)
    while diff:
        i = rng.randrange(n)
        if diff > 0:
            values[i] += 1
            diff -= 1
        elif values[i] > minimum:
            values[i] -= 1
            diff += 1


class Copier:
    """COPY ... FROM STDIN in text format, fed in ~4 MB chunks."""

    def __init__(self, cur: psycopg.Cursor, table: str, columns: list[str]):
        self.cm = cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
        self.copy = self.cm.__enter__()
        self.buf: list[str] = []
        self.size = 0
        self.rows = 0

    def row(self, line: str) -> None:
        self.buf.append(line)
        self.size += len(line)
        self.rows += 1
        if self.size > 4_000_000:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.copy.write("\n".join(self.buf) + "\n")
            self.buf, self.size = [], 0

    def close(self) -> int:
        self.flush()
        self.cm.__exit__(None, None, None)
        return self.rows


def recreate_database(db: str) -> None:
    with psycopg.connect(PG.format(db="postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                     (db,))
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')


def generate(cfg: dict, args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    db, n_users, n_structures, n_members, n_audit = (cfg[k] for k in ("db", "users", "structures", "memberships", "audit"))
    big = args.big
    if n_members < big + N_MULTI * (MULTI_MEMBERSHIPS - 1) or n_users < big + 1:
        raise SystemExit("too few users or memberships for the big structure")
    now = datetime.now(UTC).replace(microsecond=0)

    log(f"database {db}: drop, create, migrate (idp.migrations.upgrade)")
    recreate_database(db)
    from idp import config
    from idp.migrations import upgrade

    upgrade(SQLA.format(db=db))

    from argon2 import PasswordHasher

    t = time.perf_counter()
    password_hash = PasswordHasher(time_cost=config.ARGON2_TIME_COST, memory_cost=config.ARGON2_MEMORY_COST,
                                   parallelism=config.ARGON2_PARALLELISM).hash(PASSWORD)
    log(f"one argon2id hash for every account ({1000 * (time.perf_counter() - t):.0f} ms): {password_hash[:32]}…")

    conn = psycopg.connect(PG.format(db=db))
    cur = conn.cursor()
    cur.execute("SET session_replication_role = replica")  # no FK triggers during the load
    cur.execute("SET maintenance_work_mem = '512MB'")
    roles = {f"{app}:{name}": (rid, region_only) for rid, app, name, region_only in
             cur.execute("SELECT id, app, name, region_only FROM app_roles")}
    normal_roles = [rid for rid, region_only in roles.values() if not region_only]
    by_app: dict[str, list[int]] = {}
    for key, (rid, region_only) in roles.items():
        if not region_only:
            by_app.setdefault(key.split(":")[0], []).append(rid)

    # ---------------------------------------------------------------- structures
    log(f"structures: {n_structures:,}")
    s_ids = fast_uuids(rng, n_structures)
    bases = rng.sample(range(10_000_000, 100_000_000), n_structures)
    s_siren: list[str] = []
    s_parent: list[int | None] = []
    nic_next: dict[int, int] = {}
    cp = Copier(cur, "structures", ["id", "siret", "siren", "name", "kind", "parent_id", "city", "postal_code", "code",
                                    "searchable", "admin_email", "search_text", "created_at", "updated_at", "version"])
    for i in range(n_structures):
        parent = None
        if i == 0:
            kind, name, code = "region", "Région Auvergne-Rhône-Alpes", None
        elif i > 100 and rng.random() < 0.08:  # an établissement secondaire of an earlier siège
            parent = rng.randrange(1, i)
            while s_parent[parent] is not None:
                parent = s_parent[parent]
            kind, name, code = "organisme", None, None
        elif rng.random() < 0.01:
            kind, name, code = "lycee", None, f"0{rng.randrange(100000, 999999)}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}"
        else:
            kind, name, code = "organisme", None, None
        city, postal = rng.choice(CITIES)
        if parent is not None:
            siren = s_siren[parent]
            nic_next[parent] = nic_next.get(parent, 1) + 1
            nic = nic_next[parent] * 10 + rng.randrange(10)
            name = f"Établissement {nic_next[parent]} – {i}"
        else:
            siren = siren_of(bases[i])
            nic = 10 + rng.randrange(10)
            if name is None:
                name = (f"Lycée {rng.choice(GIVEN).title()} {rng.choice(SURNAMES).title()} {i}" if kind == "lycee"
                        else f"{rng.choice(ORG_WORDS)} {rng.choice(ORG_TOPICS)} {city} {i}")
        s_siren.append(siren)
        s_parent.append(parent)
        siret = siret_of(siren, nic)
        search = " ".join(p for p in (name, city, code or "", siret) if p).lower()
        created = now - timedelta(days=rng.randrange(30, 2000))
        cp.row("\t".join((str(s_ids[i]), siret, siren, name, kind, str(s_ids[parent]) if parent is not None else r"\N",
                          city, postal, code or r"\N", "t", r"\N", search, ts(created), ts(created), "1")))
    log(f"  {cp.close():,} structures copied")

    # entitlements: the Région everything; the others a random subset of the ordinary roles
    s_roles: list[list[int]] = []
    for i in range(n_structures):
        if i == 0:
            chosen = sorted(rid for rid, _ in roles.values())
        else:
            chosen = sorted(rng.sample(normal_roles, rng.randint(1, len(normal_roles))))
        s_roles.append(chosen)
    # ---------------------------------------------------------------- memberships plan
    log("memberships: plan (sizes, per-user counts, pairing)")
    rest = n_members - big
    weights = [min(rng.paretovariate(1.15), 3000.0) for _ in range(n_structures - 1)]
    total_w = sum(weights)
    free = rest - (n_structures - 1)
    sizes = [1 + int(free * w / total_w) for w in weights]
    fix_total(sizes, rest, rng, 1)
    # big structure: the admin (user 0), the multi users (1..N_MULTI) and random others
    big_members = [0, *range(1, N_MULTI + 1)]
    big_members += rng.sample(range(N_MULTI + 1, n_users), big - len(big_members))
    # per-user counts outside the big structure
    dist = [(0, 0.15), (1, 0.30), (2, 0.25), (3, 0.15), (4, 0.08), (5, 0.03), (6, 0.02), (7, 0.01), (8, 0.006),
            (10, 0.004)]
    values, cum = [v for v, _ in dist], []
    acc = 0.0
    for _, p in dist:
        acc += p
        cum.append(acc)
    counts = []
    for _ in range(n_users):
        r = rng.random() * acc
        counts.append(next(v for v, c in zip(values, cum, strict=True) if r <= c))
    counts[0] = 0
    for u in range(1, N_MULTI + 1):
        counts[u] = MULTI_MEMBERSHIPS - 1
    diff = rest - sum(counts)
    while diff:
        u = rng.randrange(N_MULTI + 1, n_users)
        if diff > 0:
            counts[u] += 1
            diff -= 1
        elif counts[u] > 0:
            counts[u] -= 1
            diff += 1
    assert sum(counts) == rest
    user_slots = [u for u, c in enumerate(counts) for _ in range(c)]
    struct_slots = [s for s, size in enumerate(sizes, start=1) for _ in range(size)]
    rng.shuffle(user_slots)
    rng.shuffle(struct_slots)
    pairs: Counter[tuple[int, int]] = Counter(zip(user_slots, struct_slots, strict=True))
    clashes = [k for k in range(rest) if pairs[(user_slots[k], struct_slots[k])] > 1]
    for k in clashes:  # swap the user with another slot's until neither pair is a duplicate
        u, s = user_slots[k], struct_slots[k]
        if pairs[(u, s)] < 2:
            continue  # already repaired through its twin
        while True:
            j = rng.randrange(rest)
            v, t_ = user_slots[j], struct_slots[j]
            if j != k and u != v and s != t_ and not pairs[(v, s)] and not pairs[(u, t_)]:
                pairs[(u, s)] -= 1
                pairs[(v, t_)] -= 1
                pairs[(v, s)] += 1
                pairs[(u, t_)] += 1
                user_slots[k], user_slots[j] = v, u
                break
    assert all(c <= 1 for c in pairs.values())
    log(f"  {len(clashes):,} duplicate pairs repaired; largest other structure: {max(sizes):,} members; "
        f"structures with ≤ 5 members: {sum(1 for s in sizes if s <= 5) / len(sizes):.0%}")
    # the multi users' structures get sam, repernet and catalogue roles
    multi_structs = {s for u, s in zip(user_slots, struct_slots, strict=True) if 1 <= u <= N_MULTI}
    for s in multi_structs:
        s_roles[s] = sorted(set(s_roles[s]) | {by_app[a][0] for a in ("sam", "repernet", "catalogue")})
    cp = Copier(cur, "entitlements", ["structure_id", "role_id"])
    for i, chosen in enumerate(s_roles):
        sid = str(s_ids[i])
        for rid in chosen:
            cp.row(f"{sid}\t{rid}")
    log(f"  {cp.close():,} entitlements copied")

    # ---------------------------------------------------------------- users
    log(f"users: {n_users:,}")
    u_ids = fast_uuids(rng, n_users)
    cp = Copier(cur, "users", ["id", "email", "contact_email", "password_hash", "civility", "given_name", "family_name",
                               "state", "failed_logins", "is_admin", "managed", "totp_secret", "totp_enabled_at", "email_verified_at",
                               "password_changed_at", "last_login_at", "created_at", "updated_at", "version"])
    states = ["active"] * 96 + ["blocked", "deactivated", "pending", "active"]
    for i in range(n_users):
        if i == 0:
            given, family, email, state = "Camille", "Administratrice", ADMIN_EMAIL, "active"
        elif i <= N_MULTI:
            given, family, email, state = "Multi", f"Structures{i - 1}", MULTI_EMAIL.format(i=i - 1), "active"
        else:
            given, family = rng.choice(GIVEN), pick_surname(rng)
            email = f"{given}.{family}.{i}@exemple{i % 97}.fr"
            state = rng.choice(states)
        created = now - timedelta(seconds=rng.randrange(86400, 3 * 365 * 86400))
        last = None if (i > N_MULTI and rng.random() < 0.2) else now - timedelta(seconds=rng.randrange(60, 700 * 86400))
        verified = None if state == "pending" else created
        totp = (TOTP_SECRET, ts(created)) if i <= N_MULTI else (r"\N", r"\N")
        cp.row("\t".join((str(u_ids[i]), email, r"\N", password_hash, rng.choice(("mme", "m", r"\N")),
                          given.title(), family.replace("-", " ").title(), state, "0", "f", "f", *totp, ts(verified),
                          ts(created), ts(last), ts(created), ts(created), "1")))
    log(f"  {cp.close():,} users copied")

    # ---------------------------------------------------------------- memberships + grants
    log(f"memberships: {n_members:,} and their access grants")
    cm = Copier(cur, "memberships", ["id", "user_id", "structure_id", "role", "status", "created_at", "updated_at",
                                     "version"])
    grant_lines: list[str] = []  # one COPY at a time per connection: the grants follow the memberships
    seen_admin = [False] * n_structures
    mid = 0
    all_pairs = [(u, 0) for u in big_members] + list(zip(user_slots, struct_slots, strict=True))
    big_admins = set(big_members[:1] + rng.sample(big_members[N_MULTI + 1:], 19))
    for u, s in all_pairs:
        mid += 1
        multi = 1 <= u <= N_MULTI
        if s == 0:
            admin = u in big_admins
        else:
            admin = not seen_admin[s] or rng.random() < 0.03
        seen_admin[s] = True
        status = "suspended" if (not admin and not multi and rng.random() < 0.03) else "active"
        created = now - timedelta(seconds=rng.randrange(3600, 900 * 86400))
        cm.row(f"{mid}\t{u_ids[u]}\t{s_ids[s]}\t{'admin' if admin else 'member'}\t{status}\t{ts(created)}\t"
               f"{ts(created)}\t1")
        allowed = s_roles[s]
        if multi:
            chosen = [by_app[a][0] for a in ("sam", "repernet", "catalogue")]
        else:
            r = rng.random()
            k = 0 if r < 0.2 else 1 if r < 0.8 else 2
            chosen = rng.sample(allowed, min(k, len(allowed)))
        for rid in sorted(chosen):
            ends = None
            if not multi and rng.random() < 0.1:
                ends = now + timedelta(days=rng.randrange(-200, 400))
            grant_lines.append(f"{mid}\t{rid}\t{ts(ends)}\t{ts(created)}\t\\N")
    log(f"  {cm.close():,} memberships copied")
    # The members page's copies of the account (Membership.sort_key, user_email, last_login_at) are
    # kept by ORM listeners; COPY bypasses them.
    cur.execute("UPDATE memberships m SET sort_key = left(lower(u.family_name) || E'\\x01' || lower(u.given_name)"
                " || E'\\x01' || u.email, 460), user_email = u.email, last_login_at = u.last_login_at"
                " FROM users u WHERE u.id = m.user_id")
    log("  the members page's copies set")
    cg = Copier(cur, "access_grants", ["membership_id", "role_id", "ends_at", "granted_at", "granted_by"])
    for line in grant_lines:
        cg.row(line)
    del grant_lines
    log(f"  {cg.close():,} access grants copied")
    cur.execute("SELECT setval('memberships_id_seq', %s)", (mid,))

    # ---------------------------------------------------------------- audit events
    log(f"audit events: {n_audit:,}")
    ca = Copier(cur, "audit_events", ["at", "event", "actor_id", "subject_id", "structure_id", "client_id", "ip",
                                      "user_agent", "details"])
    events = ["token.issued"] * 6 + ["login.success"] * 3 + ["login.failure", "membership.grants"]
    for _ in range(n_audit):
        u = rng.randrange(n_users)
        ev = rng.choice(events)
        at = now - timedelta(seconds=rng.randrange(0, 365 * 86400))
        ca.row("\t".join((ts(at), ev, str(u_ids[u]), str(u_ids[u]), r"\N", CLIENT_ID if ev == "token.issued" else r"\N",
                          f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}", "Mozilla/5.0 (scale)",
                          json.dumps({"grant_type": "authorization_code"} if ev == "token.issued" else {}))))
    log(f"  {ca.close():,} audit events copied")
    conn.commit()
    cur.execute("SET session_replication_role = DEFAULT")
    conn.commit()
    conn.close()

    # ---------------------------------------------------------------- client, keys, ANALYZE
    log("client scale-client (app=sam) and signing keys through the IdP's own API")
    seed_client(db)
    log("VACUUM ANALYZE")
    with psycopg.connect(PG.format(db=db), autocommit=True) as c:
        c.execute("VACUUM ANALYZE")
        size = c.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        counts_sql = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                      for t in ("users", "structures", "memberships", "access_grants", "entitlements", "audit_events")}
        big_count = c.execute("SELECT count(*) FROM memberships WHERE structure_id = %s", (s_ids[0],)).fetchone()[0]
    log(f"done: {db} is {size}; " + ", ".join(f"{k} {v:,}" for k, v in counts_sql.items())
        + f"; big structure {s_ids[0]} has {big_count:,} members")


def seed_client(db: str) -> None:
    from sqlalchemy import select

    from idp import create_app
    from idp.core.security import SYSTEM
    from idp.extensions import db as sa
    from idp.models import Client
    from idp.oidc.clients import ClientSpec, create_client
    from idp.oidc.keys import ensure_keys

    app = create_app({"DATABASE_URL": SQLA.format(db=db), "SECRET_KEY": "scale-generate", "ISSUER": "http://127.0.0.1:9300"})
    with app.app_context():
        ensure_keys(sa.session, app.config)
        if sa.session.scalar(select(Client.id).where(Client.client_id == CLIENT_ID)) is None:
            create_client(sa.session, ClientSpec(
                name="scale bench", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT],
                grant_types=["authorization_code", "refresh_token"], trusted=True, scope=SCOPE, app="sam"), SYSTEM)
        sa.session.commit()
        sa.engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="the small database (portail_scale_small)")
    ap.add_argument("--db", help="database name (default: portail_scale, or portail_scale_small with --small)")
    ap.add_argument("--users", type=int)
    ap.add_argument("--structures", type=int)
    ap.add_argument("--memberships", type=int)
    ap.add_argument("--audit", type=int, help="audit events")
    ap.add_argument("--big", type=int, default=50_000, help="members of the big structure (default 50,000)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--min-free-gb", type=float, default=8.0, help="refuse to start with less free disk")
    args = ap.parse_args()
    cfg = dict(SMALL if args.small else LARGE)
    for key in ("db", "users", "structures", "memberships", "audit"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    free = shutil.disk_usage("/work").free / 2**30
    log(f"free disk on /work: {free:.1f} GiB; PostgreSQL data: "
        f"{shutil.disk_usage(os.environ.get('PGDATA', '/var/lib/postgresql')).free / 2**30:.1f} GiB free")
    if free < args.min_free_gb:
        raise SystemExit(f"less than {args.min_free_gb} GiB free: not generating")
    generate(cfg, args)


if __name__ == "__main__":
    main()
