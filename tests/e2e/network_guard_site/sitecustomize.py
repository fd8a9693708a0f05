"""Refuses, and records, every connection and name lookup that leaves this machine, in every Python process
started with this folder on PYTHONPATH and DREAMCORE_TEST_NETWORK_LOG naming a file.

The first-run test starts `dreamcore demo` so; Prefect's temporary server runs in a subprocess of its own that
only the environment reaches, and Python imports `sitecustomize` from sys.path when it starts: so the guard is
in every process of the run, without a hook in production code. Loopback addresses, "localhost" and Unix
sockets pass; anything else is written to the log (process id, what, where, the calling frames) and refused
as an unreachable network would refuse it.
"""

import errno
import ipaddress
import os
import socket
import traceback

_LOG = os.environ.get("DREAMCORE_TEST_NETWORK_LOG")


def _is_loopback(host) -> bool:
    if host is None or host in ("localhost", b"localhost", ""):
        return True  # None/"": a passive (bind) lookup
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host).is_loopback
    except ValueError:
        return False  # a name: looking it up asks a DNS server


def _record(what: str, target) -> None:
    frames = "".join(traceback.format_stack(limit=12)[:-2])
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"[{os.getpid()}] {what} {target!r}\n{frames}\n")


def _install() -> None:
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    gethostbyname = socket.gethostbyname

    def outbound(sock, address) -> bool:
        return sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0])

    def guarded_connect(sock, address):
        if outbound(sock, address):
            _record("connect", address)
            raise OSError(errno.ENETUNREACH, f"network refused by the test guard: {address!r}")
        return connect(sock, address)

    def guarded_connect_ex(sock, address):
        if outbound(sock, address):
            _record("connect_ex", address)
            return errno.ENETUNREACH
        return connect_ex(sock, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            _record("getaddrinfo", host)
            raise socket.gaierror(socket.EAI_NONAME, f"name lookup refused by the test guard: {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    def guarded_gethostbyname(host):
        if not _is_loopback(host):
            _record("gethostbyname", host)
            raise socket.gaierror(socket.EAI_NONAME, f"name lookup refused by the test guard: {host!r}")
        return gethostbyname(host)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
    socket.getaddrinfo, socket.gethostbyname = guarded_getaddrinfo, guarded_gethostbyname


if _LOG:
    _install()
