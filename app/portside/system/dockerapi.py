"""HTTP over a unix socket: Docker's Engine API (and supervisord's XML-RPC transport).
Imported only when a daemon is asked."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from .services import API_TIMEOUT, Unreachable


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (Docker's API, supervisord's XML-RPC)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def request(path: str, method: str, url: str, timeout: float = API_TIMEOUT
            ) -> tuple[int, Any]:
    """One request to the Engine API on a unix socket: (status, decoded JSON or None)."""
    conn = UnixConnection(path, timeout)
    try:
        conn.request(method, url, headers={"Host": "docker"})
        resp = conn.getresponse()
        body = resp.read(8 << 20)
    except PermissionError as exc:
        raise Unreachable(f"the Docker API at {path} refused this user ({exc.strerror}): "
                          "run with sudo, or join the docker group") from None
    except FileNotFoundError:
        raise Unreachable(f"no Docker API socket at {path}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(f"the Docker API at {path} did not answer: {exc}") from None
    finally:
        conn.close()
    try:
        return resp.status, json.loads(body) if body else None
    except ValueError:
        return resp.status, None
