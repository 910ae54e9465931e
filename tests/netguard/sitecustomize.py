"""Network guard for the privacy tests: put this folder on PYTHONPATH and Python loads it at start-up.

Every attempt to reach beyond the loopback interface (connect, sendto, a DNS look-up of a name that
is not local, a bind to a non-loopback interface) is refused with OSError and recorded in the file
named by FAIRMOE_NETGUARD_LOG, with the Python stack that made it, so the test can show who tried.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import traceback

_LOG = os.environ.get("FAIRMOE_NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def _is_local(host: object) -> bool:
    if host is None or host == "" or isinstance(host, bytes | bytearray) and not host:
        return True
    if isinstance(host, bytes | bytearray):
        host = host.decode(errors="replace")
    host = str(host).split("%", 1)[0].strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(kind: str, target: object) -> None:
    if _LOG:
        stack = "".join(traceback.format_stack(limit=12)[:-2])
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"BLOCKED {kind} {target!r} (pid {os.getpid()})\n{stack}\n")
    raise OSError(errno.ENETUNREACH, f"network guard: {kind} {target!r} is not loopback")


def _host_of(address: object) -> object:
    return address[0] if isinstance(address, tuple) and address else None


def _wrap_address_method(name: str, kind: str, position: int) -> None:
    original = getattr(socket.socket, name)

    def guarded(self, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6) and len(args) > position:
            address = args[position]
            if not _is_local(_host_of(address)):
                _refuse(kind, address)
        return original(self, *args, **kwargs)

    guarded.__name__ = name
    setattr(socket.socket, name, guarded)


def _install() -> None:
    _wrap_address_method("connect", "connect", 0)
    _wrap_address_method("connect_ex", "connect", 0)
    _wrap_address_method("bind", "bind", 0)
    # sendto(data, address) or sendto(data, flags, address): the address is last
    original_sendto = socket.socket.sendto

    def sendto(self, data, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6) and args:
            address = args[-1]
            if not _is_local(_host_of(address)):
                _refuse("sendto", address)
        return original_sendto(self, data, *args)

    socket.socket.sendto = sendto
    original_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _refuse("getaddrinfo", host)
        return original_getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    original_gethostbyname = socket.gethostbyname

    def gethostbyname(host):
        if not _is_local(host):
            _refuse("gethostbyname", host)
        return original_gethostbyname(host)

    socket.gethostbyname = gethostbyname


if _LOG:
    _install()
