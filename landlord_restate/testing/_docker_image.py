"""The image a test `DockerDaemon` serves: a static busybox with httpd, built from files here.

No registry is reachable from the tests, so the image is not pulled: it is a rootfs tar
(`/bin/busybox`, a link per applet, a page for httpd) that the daemon imports. Only a
static busybox (Debian's `busybox-static`) runs in a rootfs without a C library.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path
from typing import Literal

#: the image built from the static busybox: `httpd -f -p 8080 -h /www` unless told otherwise
DEFAULT_IMAGE = "landlord-test-busybox:1"
DEFAULT_PAGE = "hello from landlord\n"
#: the applets linked in /bin (`busybox <applet>` runs any other): a few dozen, since the
#: vfs driver copies every file of the image for each container (all 400 cost ~0.4 s each)
APPLETS = (
    "sh", "httpd", "nc", "wget", "sleep", "true", "false", "echo", "printf", "cat", "ls",
    "env", "id", "ps", "kill", "test", "[", "mkdir", "rm", "touch", "grep", "sed", "head",
    "tail", "date", "hostname", "pwd", "sync",
)


def _static_busybox() -> str:
    """The machine's busybox, if it is static; a clear error otherwise."""
    for candidate in ("/bin/busybox", shutil.which("busybox")):
        if candidate and Path(candidate).exists() and _is_static(Path(candidate)):
            return candidate
    raise RuntimeError("a static busybox was not found: install Debian's busybox-static")


def _is_static(binary: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP) runs in an empty rootfs."""
    with binary.open("rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        order: Literal["little", "big"] = "little" if header[5] == 1 else "big"
        phoff = int.from_bytes(header[32:40], order)
        phentsize = int.from_bytes(header[54:56], order)
        phnum = int.from_bytes(header[56:58], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(
        int.from_bytes(table[i * phentsize:i * phentsize + 4], order) != 3  # PT_INTERP
        for i in range(phnum)
    )


def _rootfs_tar(busybox: str, page: str) -> bytes:
    """/bin/busybox, a link per applet of `APPLETS`, /www/index.html, /tmp, as a tar."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for folder in ("bin", "www", "tmp", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name, text in (
            ("www/index.html", page),
            ("etc/passwd", "root:x:0:0:root:/:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
