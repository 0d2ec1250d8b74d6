"""The ceiling for benchmarks/catalog.py: a trivial ASGI app under uvicorn answering every GET with one fixed
JSON body, so loadTable's throughput can be read as a fraction of what Python HTTP allows on this machine.

    .venv/bin/python benchmarks/ceiling_app.py --port 8299 --bytes 1700

Same uvicorn settings as `icemesh serve` (default loop and HTTP parser, log level, keep-alive), so the only
difference between the two servers is what icemesh does per request.
"""

from __future__ import annotations

import argparse
import os


def make_app(body: bytes):
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope, receive, send):
        if scope["type"] != "http":  # lifespan: nothing to set up
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            if message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def fixed_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least 12)."""
    head, tail = b'{"padding":"', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def main(argv=None) -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bytes", type=int, default=1700, help="size of the fixed body")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    if args.workers > 1:  # uvicorn's multi-process mode needs an import string: hand it the size
        os.environ["ICEMESH_CEILING_BYTES"] = str(args.bytes)
        uvicorn.run("ceiling_app:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                    log_level="warning", access_log=False, timeout_keep_alive=75, app_dir=os.path.dirname(os.path.abspath(__file__)))
    else:
        uvicorn.run(make_app(fixed_body(args.bytes)), host=args.host, port=args.port, log_level="warning", access_log=False,
                    timeout_keep_alive=75)


def app_from_env():
    return make_app(fixed_body(int(os.environ["ICEMESH_CEILING_BYTES"])))


if __name__ == "__main__":
    main()
