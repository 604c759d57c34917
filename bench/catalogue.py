"""Timing of the public search and the LHEO export at 1k and 100k sessions (issue 14, "bench"):
p50 / p95 of the search, the export's duration and peak memory, on SQLite or PostgreSQL.

    .venv/bin/python bench/catalogue.py                      # SQLite files under /tmp
    .venv/bin/python bench/catalogue.py --postgres URL       # e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/catalogue.py --sizes 1000         # only 1k sessions

A script, not a test: it builds a fresh database per size (published offers of 2 actions with 2
sessions each, spread over 100 cities and a few dozen titles), then, in a fresh process (so that
its memory is the server's, not the build's), calls the same functions as the pages
(`search.search_actions`, the `/lheo.xml` view through the test client). The export runs twice:
once timed, reading the process's peak resident memory, once under tracemalloc (peak Python
memory; slower, not timed). Each row carries the load average before and after: on a shared box
the timings are only comparable at a similar load.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import time
import tracemalloc
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import create_engine, insert, text

from apps.catalogue import create_app, search
from apps.catalogue.models import (
    Offer,
    OfferVersion,
    Organisation,
    PublicAction,
    PublicSession,
    SearchDay,
    db,
)
from apps.catalogue.search import FTS_INSERT, department
from apps.catalogue.text import fold, index_text
from shared import main as app_command

TITLES = ["Électricité des bâtiments", "Maçonnerie générale", "Secrétariat et bureautique", "Comptabilité",
          "Cuisine de collectivité", "Soudure à l'arc", "Aide à domicile", "Développement web", "Logistique et cariste",
          "Anglais professionnel", "Peinture en bâtiment", "Accueil et tourisme", "Petite enfance", "Plomberie",
          "Menuiserie", "Vente en magasin", "Agent de sécurité", "Conduite routière", "Jardinier paysagiste", "Boulangerie"]
CITIES = [(f"Ville {i}", f"{(i % 95) + 1:02d}{i % 1000:03d}") for i in range(100)]
QUERIES: list[dict[str, Any]] = [
    {"keywords": "electricite batiment"}, {"keywords": "maçons"}, {"keywords": "comptabilite", "place": "38"},
    {"place": "Ville 7"}, {}, {"keywords": "anglais", "certifying": False},
]


def build(url: str, sessions: int) -> Any:
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "bench"})
    app_command("catalogue", "CATALOGUE", 8003, lambda: app, ["db", "upgrade"])
    rng = random.Random(42)
    today = date.today()
    with app.app_context():
        org = Organisation(siret="12345678200010", name="Organisme de banc d'essai", certification_keys=[],
                           nda="84691234569", address="1 rue du Banc", postal_code="69003", city="Lyon")
        db.session.add(org)
        db.session.flush()
        n_offers = max(1, sessions // 4)
        offer_rows, version_rows, action_rows, session_rows, fts_rows = [], [], [], [], []
        action_id = session_id = 0
        for i in range(1, n_offers + 1):
            title = f"{rng.choice(TITLES)} {i}"
            actions = []
            for _a in range(2):
                city, postal = rng.choice(CITIES)
                start = today + timedelta(days=rng.randint(-400, 300))
                items = []
                for _s in range(2):
                    end = start + timedelta(days=rng.randint(20, 200))
                    items.append({"key": uuid.uuid4().hex[:8], "start": start.isoformat(), "end": end.isoformat(),
                                  "registration_address": "1 rue", "registration_postal_code": postal,
                                  "registration_city": city, "recruitment": "1",
                                  "contact": {"contact_id": None, "name": "Contact", "phone": "0400000000", "email": ""}})
                    start = end + timedelta(days=10)
                actions.append({"key": uuid.uuid4().hex[:8], "place_name": "", "address": "1 rue", "postal_code": postal,
                                "city": city, "publics": ["83056"], "public_info": "", "entry_mode": "fixes", "rhythm": "",
                                "teaching_mode": "0", "hours": 100, "entry_level_required": False, "accessibility": "",
                                "transport": "", "accommodation": "", "catering": "", "funders": "", "sessions": items})
            doc = {"formation": {"title": title, "objectives": f"Objectifs de {title}.", "content": "Contenu détaillé. " * 10,
                                 "expected_results": "", "prerequisites": "", "certifying": i % 3 == 0, "certification": None,
                                 "formacodes": [], "romes": [], "nsf": [], "entry_level": "0", "path": "1", "keywords": ""},
                   "actions": actions}
            offer_rows.append({"id": i, "organisation_id": org.id, "document": doc, "title": title, "published_version_id": i,
                               "returned": False, "version": 1})
            version_rows.append({"id": i, "offer_id": i, "number": 1, "data": doc, "submitted_by": "bench",
                                 "decision": "published"})
            for action in actions:
                action_id += 1
                body = index_text(title, doc["formation"]["objectives"], doc["formation"]["content"], org.name)
                action_rows.append({"id": action_id, "offer_id": i, "action_key": action["key"], "title": title,
                                    "organisation_name": org.name, "summary": "", "certifying": i % 3 == 0,
                                    "entry_mode": "fixes", "city": action["city"], "city_folded": fold(action["city"]),
                                    "postal_code": action["postal_code"], "department": department(action["postal_code"]),
                                    "search_text": body, "next_start": search.next_start(action["sessions"], today)})
                fts_rows.append({"id": action_id, "body": body})
                for item in action["sessions"]:
                    session_id += 1
                    session_rows.append({"id": session_id, "action_id": action_id, "start": date.fromisoformat(item["start"]),
                                         "end": date.fromisoformat(item["end"])})
        for model, rows in ((Offer, offer_rows), (OfferVersion, version_rows), (PublicAction, action_rows),
                            (PublicSession, session_rows)):
            for chunk in range(0, len(rows), 5000):
                db.session.execute(insert(model), rows[chunk:chunk + 5000])
        if db.engine.dialect.name == "sqlite":
            db.session.execute(FTS_INSERT, fts_rows)
        db.session.add(SearchDay(id=1, day=today - timedelta(days=1)))  # the daily refresh is measured
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does after a bulk load: statistics and the visibility map (index-only counts).
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
    return app


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _rss_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident memory, from Linux's /proc: unlike
    getrusage's ru_maxrss, the peak starts afresh in a spawned process (ru_maxrss survives exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024


def _export(client: Any) -> int:
    response = client.get("/lheo.xml", buffered=False)
    size = sum(len(chunk) for chunk in response.response)
    response.close()
    return size


def measure(url: str, runs: int) -> dict[str, Any]:
    """In a fresh process: the daily refresh, the searches, then the export (timed, then traced)."""
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "bench"})
    today = date.today()
    timings: list[float] = []
    with app.app_context():
        started = time.perf_counter()
        search.refresh_current(db.session, today)  # the once-a-day recomputation of `next_start`
        db.session.commit()
        daily = (time.perf_counter() - started) * 1000
        for criteria in QUERIES * runs:
            started = time.perf_counter()
            search.search_actions(db.session, search.Criteria(**criteria), today)
            timings.append((time.perf_counter() - started) * 1000)
            db.session.rollback()
    client = app.test_client()
    rss_before = _rss_mb()
    started = time.perf_counter()
    size = _export(client)
    export_s = time.perf_counter() - started
    rss_peak = _rss_mb()
    tracemalloc.start()
    _export(client)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with app.app_context():
        db.engine.dispose()
    return {"daily_refresh_ms": round(daily, 1), "search_ms_p50": round(statistics.median(timings), 2),
            "search_ms_p95": round(percentile(timings, 0.95), 2), "search_calls": len(timings),
            "lheo_seconds": round(export_s, 2), "lheo_bytes": size, "lheo_peak_python_mb": round(peak / 1e6, 1),
            "rss_peak_mb_before_export": round(rss_before, 1), "rss_peak_mb_after_export": round(rss_peak, 1)}


def _measure_child(url: str, runs: int, out: Any) -> None:
    out.put(measure(url, runs))


def measure_apart(url: str, runs: int) -> dict[str, Any]:
    """`measure` in a spawned process: its resident memory owes nothing to the build's rows."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_measure_child, args=(url, runs, out))
    child.start()
    result = out.get(timeout=3600)
    child.join()
    return result


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python bench/catalogue.py")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created and dropped per size)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results = {}
    for size in args.sizes:
        name = f"catalogue_bench_{uuid.uuid4().hex[:8]}"
        admin = None
        if args.postgres:
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
        else:
            url = f"sqlite:////tmp/{name}.sqlite3"
        load_before = _load()
        started = time.perf_counter()
        app = build(url, size)
        built = time.perf_counter() - started
        with app.app_context():
            db.engine.dispose()
        results[size] = {"engine": "postgresql" if args.postgres else "sqlite", "build_seconds": round(built, 1),
                         **measure_apart(url, args.runs), "load_before": load_before, "load_after": _load()}
        if admin is None:
            os.remove(url.removeprefix("sqlite:///"))
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        print(json.dumps({size: results[size]}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
