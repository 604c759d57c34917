"""`python -m apps.repernet [--host H] [--port P]`: serve the embedded demo (make run)."""

from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from apps.repernet import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="REPERNET (démo)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    app = create_app({"DEMO": True})
    print(f"REPERNET : http://{args.host}:{args.port}/", flush=True)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
