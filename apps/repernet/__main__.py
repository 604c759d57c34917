"""`python -m apps.repernet [--host H] [--port P]`: serve the embedded demo (make run) with gunicorn."""

from __future__ import annotations

import argparse
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description="REPERNET (démo)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    os.environ.setdefault("REPERNET_DEMO", "true")
    print(f"REPERNET : http://{args.host}:{args.port}/", flush=True)
    argv = [sys.executable, "-m", "gunicorn", "apps.repernet.wsgi:app", "--bind", f"{args.host}:{args.port}",
            "--workers", "1", "--threads", "4", "--access-logfile", "-"]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with gunicorn


if __name__ == "__main__":
    main()
