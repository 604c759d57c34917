#!/usr/bin/env python3
"""Code-exchange scenario: requests/s and latency of the token endpoint alone (grant_type=authorization_code).

bench_op.py has no scenario for the code exchange by itself (its `login` times the whole flow), so
this script adds one, for any OP that follows the peers' conventions:

  1. untimed: each worker thread logs in once (bench_op.code_flow, real forms), keeping its cookies;
  2. untimed: with those sessions, it mints authorization codes (authorize -> 302 to the redirect URI,
     forms answered if the OP shows any), at most --codes in all and for at most --mint-seconds;
  3. timed: the threads exchange the codes at the token endpoint (client_secret_basic + PKCE
     verifier) on keep-alive connections (bench_op.FastHTTP), for at most --duration seconds.

Run it with the driver's venv (/tmp/peers/venv/bin/python); it imports bench_op.py from
--peers-dir. Loopback issuers only. It prints one JSON object (and writes --json-out): the
bench_op-style summary entry for the `code_exchange` scenario.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("issuer")
ap.add_argument("--client-id", required=True)
ap.add_argument("--client-secret", required=True)
ap.add_argument("--redirect-uri", default="http://127.0.0.1:9999/callback")
ap.add_argument("--user", required=True, help="user name, or a template with {i} (with --users)")
ap.add_argument("--password", required=True)
ap.add_argument("--users", type=int, default=1)
ap.add_argument("--scope", default="openid profile email")
ap.add_argument("--workers", type=int, default=8)
ap.add_argument("--codes", type=int, default=4000, help="codes minted in all (cap)")
ap.add_argument("--mint-seconds", type=float, default=20.0, help="time cap on minting (codes live ~60 s)")
ap.add_argument("--duration", type=float, default=10.0, help="time cap on the timed exchange (max 10)")
ap.add_argument("--repeat", type=int, default=1, help="mint+exchange rounds (max 2); summary = median")
ap.add_argument("--peers-dir", default="/work/shared/peers")
ap.add_argument("--json-out")
args = ap.parse_args()
args.duration = min(args.duration, 10.0)
args.repeat = max(1, min(args.repeat, 2))
args.mint_seconds = min(args.mint_seconds, 30.0)

sys.path.insert(0, args.peers_dir)
import bench_op as bo  # noqa: E402

if not bo.check_loopback(args.issuer):
    sys.exit("loopback issuers only")
# watchdog: the whole run is bounded whatever happens
signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
signal.alarm(int(120 + args.repeat * (args.mint_seconds + args.duration + 30)))

cfg = {
    "issuer": args.issuer, "client_id": args.client_id, "client_secret": args.client_secret,
    "redirect_uri": args.redirect_uri, "scope": args.scope,
    "users": [(args.user.format(i=i) if "{i}" in args.user else args.user, args.password)
              for i in range(max(1, args.users))],
}
meta = bo.new_session().get(args.issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=bo.TIMEOUT).json()


def mint(sess, max_steps=10):
    """One authorization code with an existing login session: (code, verifier)."""
    verifier, challenge = bo.pkce_pair()
    state = secrets.token_urlsafe(12)
    q = {"response_type": "code", "client_id": cfg["client_id"], "redirect_uri": cfg["redirect_uri"],
         "scope": cfg["scope"], "state": state, "nonce": secrets.token_urlsafe(12),
         "code_challenge": challenge, "code_challenge_method": "S256"}
    ep = meta["authorization_endpoint"]
    resp = sess.get(ep + ("&" if "?" in ep else "?") + urllib.parse.urlencode(q), allow_redirects=False, timeout=bo.TIMEOUT)
    for _ in range(max_steps):
        loc = resp.headers.get("Location")
        if resp.status_code in (301, 302, 303) and loc:
            nxt = urllib.parse.urljoin(resp.url, loc)
            if nxt.startswith(cfg["redirect_uri"]):
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(nxt).query))
                if params.get("state") != state or "code" not in params:
                    raise bo.FlowError(f"bad redirect {nxt}")
                return params["code"], verifier
            resp = sess.get(nxt, allow_redirects=False, timeout=bo.TIMEOUT)
            continue
        if resp.status_code != 200:
            raise bo.FlowError(f"HTTP {resp.status_code} at {resp.url}")
        p = bo.FormParser()
        p.feed(resp.text)
        ranked = sorted(((({"password": 0, "login": 1, "consent": 2}[k]), k, f) for f in p.forms
                         for k in [bo.classify_form(f)] if k), key=lambda x: x[0])
        if not ranked:
            raise bo.FlowError(f"no usable form at {resp.url}")
        _, kind, form = ranked[0]
        data, _ = bo.fill_form(form, kind, "", "")  # a logged-in session only meets consent forms
        resp = bo.submit_form(sess, resp.url, form, data)
    raise bo.FlowError("too many steps")


def one_round():
    W = args.workers
    # each thread logs in users i, i+W, i+2W, ... and mints round-robin over them, so two codes of one
    # user are far apart in time (Canaille fails a second token for one user and client in one second)
    sessions = [[] for _ in range(W)]
    login_errors = []

    def login(i):
        for u in range(i, max(W, len(cfg["users"])), W):
            s = bo.new_session()
            try:
                bo.code_flow(cfg, meta, s, user_idx=u)
                sessions[i].append(s)
            except Exception as e:  # noqa: BLE001
                login_errors.append(repr(e)[:200])

    ts = [threading.Thread(target=login, args=(i,)) for i in range(W)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    pools = [[] for _ in range(W)]
    mint_errors = [0]
    stop_at = time.monotonic() + args.mint_seconds
    per = args.codes // W

    def minter(i):
        k = 0
        while sessions[i] and len(pools[i]) < per and time.monotonic() < stop_at:
            try:
                k += 1
                pools[i].append(mint(sessions[i][k % len(sessions[i])]))
            except Exception:  # noqa: BLE001
                mint_errors[0] += 1
                if mint_errors[0] > 50:
                    return

    t0 = time.monotonic()
    ts = [threading.Thread(target=minter, args=(i,)) for i in range(W)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    mint_s = time.monotonic() - t0
    # timed exchange
    import base64
    basic = "Basic " + base64.b64encode(
        f"{urllib.parse.quote(cfg['client_id'], safe='')}:{urllib.parse.quote(cfg['client_secret'], safe='')}".encode()).decode()
    hdrs = {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}
    lat, statuses, errs = [[] for _ in range(W)], {}, []
    lock = threading.Lock()
    barrier = threading.Barrier(W + 1)
    end = [0.0]

    def exchanger(i):
        h = bo.FastHTTP()
        barrier.wait()
        for code, verifier in pools[i]:
            if time.monotonic() >= end[0]:
                break
            body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": cfg["redirect_uri"], "code_verifier": verifier}).encode()
            s = time.perf_counter()
            try:
                st, data = h.request("POST", meta["token_endpoint"], body=body, headers=hdrs)
            except Exception as e:  # noqa: BLE001
                st, data = 0, str(e).encode()
            d = time.perf_counter() - s
            with lock:
                statuses[st] = statuses.get(st, 0) + 1
            if st == 200 and b"id_token" in data:
                lat[i].append(d)
            elif len(errs) < 3:
                errs.append(f"{st}: {data[:200].decode(errors='replace')}")
        h.close()

    ts = [threading.Thread(target=exchanger, args=(i,)) for i in range(W)]
    [t.start() for t in ts]
    end[0] = time.monotonic() + args.duration
    t0 = time.monotonic()
    barrier.wait()
    [t.join() for t in ts]
    elapsed = time.monotonic() - t0
    all_lat = sorted(x for per in lat for x in per)
    n_err = sum(v for k, v in statuses.items() if k != 200)
    return {"rps": len(all_lat) / elapsed if elapsed else 0.0, "ok": len(all_lat), "errors": n_err,
            "elapsed_s": round(elapsed, 2), "codes_minted": sum(map(len, pools)), "mint_s": round(mint_s, 2),
            "mint_errors": mint_errors[0], "login_errors": login_errors[:3],
            "sessions": sum(map(len, sessions)), "exhausted": elapsed < args.duration - 0.05,
            "p50_ms": round(bo.percentile(all_lat, 50) * 1000, 2) if all_lat else None,
            "p95_ms": round(bo.percentile(all_lat, 95) * 1000, 2) if all_lat else None,
            "p99_ms": round(bo.percentile(all_lat, 99) * 1000, 2) if all_lat else None,
            "statuses": {str(k): v for k, v in statuses.items()}, "error_sample": errs}


runs = []
for r in range(args.repeat):
    runs.append(one_round())
    print(f"code_exchange run {r + 1}: {runs[-1]['rps']:.1f}/s p50={runs[-1]['p50_ms']} ms "
          f"p95={runs[-1]['p95_ms']} ms ok={runs[-1]['ok']} err={runs[-1]['errors']} "
          f"(minted {runs[-1]['codes_minted']} in {runs[-1]['mint_s']} s"
          f"{', pool exhausted before the time cap' if runs[-1]['exhausted'] else ''})", file=sys.stderr)
med = sorted(runs, key=lambda x: x["rps"])[len(runs) // 2]
out = dict(med, supported=True, rps=round(med["rps"], 1), rps_runs=[round(x["rps"], 1) for x in runs], runs=runs)
if args.json_out:
    with open(args.json_out, "w") as f:
        json.dump(out, f, indent=1)
print(json.dumps(out))
