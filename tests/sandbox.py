"""Run a command with netlink sockets refused, as a seccomp filter or a locked-down
container would: `python sandbox.py [--no-netlink] -- CMD...`.

The filter makes socket(AF_NETLINK, ...) fail with EPERM and allows everything else.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SYS_SOCKET = {"x86_64": 41, "aarch64": 198}
EPERM = 1


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def refuse_netlink() -> None:
    """Install the filter on this process (inherited by everything it execs)."""
    machine = os.uname().machine
    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K
    prog = b"".join([
        _insn(ld, 0, 0, 4),  # seccomp_data.arch
        _insn(jeq, 1, 0, AUDIT_ARCH[machine]),
        _insn(ret, 0, 0, SECCOMP_RET_ALLOW),
        _insn(ld, 0, 0, 0),  # seccomp_data.nr
        _insn(jeq, 0, 3, SYS_SOCKET[machine]),
        _insn(ld, 0, 0, 16),  # seccomp_data.args[0], low word: the family
        _insn(jeq, 0, 1, socket.AF_NETLINK),
        _insn(ret, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        _insn(ret, 0, 0, SECCOMP_RET_ALLOW),
    ])
    buf = ctypes.create_string_buffer(prog)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--no-netlink"]:
        refuse_netlink()
        args = args[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
