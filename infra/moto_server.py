"""Moto in server mode for Nightshift's tests: loopback only, one request at a time.

Moto's stock server handles requests on threads without a lock, so two conditional writes
can both succeed. Serving one request at a time makes them atomic, as on DynamoDB.

Usage: python infra/moto_server.py [PORT]   (0 or nothing: a free port)
Prints "moto listening on http://127.0.0.1:<port>" once ready, and exits when its standard
input closes, so a test run that dies never leaves a server behind.
"""

import os
import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


def exit_when_parent_goes() -> None:
    sys.stdin.read()
    os._exit(0)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", port, app, threaded=False, processes=1)
    threading.Thread(target=exit_when_parent_goes, daemon=True).start()
    print(f"moto listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
