#!/usr/bin/env python3
"""Fetch ONNX Runtime's C API headers from Debian's ``libonnxruntime-dev`` package.

Used by the build only when no headers were found on the machine. It downloads the package
with ``apt-get download`` through a private apt configuration (its own package lists and cache),
using the mirror URIs this machine already has configured, unpacks only the headers into
``CACHE_DIR`` and prints the include directory. It never installs the package and changes
nothing on the system. Exit status 1 with a message on stderr when it cannot.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "libonnxruntime-dev"
DEBIAN_SUITE = "trixie"  # Debian 13: the first Debian release with libonnxruntime-dev
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
HEADER = "onnxruntime_c_api.h"


def _os_release() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key.strip()] = value.strip().strip('"')
    return info


def _sources() -> list[tuple[str, list[str]]]:
    """(URI, suites) of every binary package source configured on this machine."""
    found: list[tuple[str, list[str]]] = []
    one_line = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    for name in one_line:
        try:
            lines = Path(name).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                found.append((line[1], [line[2]]))
    for name in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = Path(name).read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            suites = fields.get("suites", "").split()
            for uri in fields.get("uris", "").split():
                found.append((uri, suites))
    return found


def _debian_archive_uris() -> list[str]:
    """Mirror URIs of the main Debian archive (not security, updates or backports)."""
    uris: list[str] = []
    for uri, suites in _sources():
        if "security" in uri:
            continue
        if any("-" not in s and "/" not in s for s in suites) and uri not in uris:
            uris.append(uri)
    return uris


def _apt(work: Path, source_list: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    opts = [
        "-o", f"Dir::State::Lists={work / 'lists'}",
        "-o", f"Dir::Cache={work / 'cache'}",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root" if os.geteuid() == 0 else "APT::Sandbox::User=",
    ]  # fmt: skip
    if source_list is not None:
        opts += ["-o", f"Dir::Etc::sourcelist={source_list}", "-o", "Dir::Etc::sourceparts=/dev/null"]
    return subprocess.run(["apt-get", "-q", *opts, *args], cwd=work / "deb", capture_output=True, text=True)


def _download(work: Path, source_list: Path | None) -> Path | None:
    for sub in ("lists/partial", "cache/archives/partial", "deb"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    update = _apt(work, source_list, "update")
    if update.returncode != 0:
        sys.stderr.write(update.stderr[-2000:])
        return None
    got = _apt(work, source_list, "download", PACKAGE)
    if got.returncode != 0:
        sys.stderr.write(got.stderr[-2000:])
        return None
    debs = sorted((work / "deb").glob(f"{PACKAGE}_*.deb"))
    return debs[-1] if debs else None


def fetch(cache_dir: Path) -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError("apt-get/dpkg-deb not found: not a Debian-like system")
    os_id = _os_release()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ort-headers-", dir=cache_dir) as tmp:
        work = Path(tmp)
        deb: Path | None = None
        if os_id.get("ID") == "debian":
            uris = _debian_archive_uris()
            if not uris:
                raise RuntimeError("no Debian mirror URI found in /etc/apt/sources*")
            for uri in uris:
                src = work / "sources.list"
                signed = f"[signed-by={DEBIAN_KEYRING}] " if os.path.exists(DEBIAN_KEYRING) else ""
                src.write_text(f"deb {signed}{uri} {DEBIAN_SUITE} main\n")
                deb = _download(work, src)
                if deb is not None:
                    break
        else:
            # Ubuntu and other derivatives: their own archive, their own suites.
            deb = _download(work, None)
        if deb is None:
            raise RuntimeError(f"could not download {PACKAGE} with apt-get")
        version = deb.name.split("_")[1].replace(":", "_")
        target = cache_dir / f"onnxruntime-headers-{version}"
        if (target / HEADER).is_file():
            return target
        unpacked = work / "x"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        headers = unpacked / "usr" / "include" / "onnxruntime"
        if not (headers / HEADER).is_file():
            raise RuntimeError(f"{PACKAGE} {version} has no {HEADER}")
        staging = work / "headers"
        shutil.copytree(headers, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache_dir", type=Path)
    args = parser.parse_args()
    existing = sorted(args.cache_dir.glob(f"onnxruntime-headers-*/{HEADER}"))
    if existing:
        print(existing[-1].parent)
        return 0
    try:
        print(fetch(args.cache_dir))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"fetch_ort_headers: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
