#!/usr/bin/env python3
"""Writes a stand-in IPSW for the simulated rack: a real zip holding a
BuildManifest.plist shaped like Apple's (version, build, SupportedProductTypes,
one Erase and one Update identity per model) and a filler "filesystem" of the
size asked for. `flashrack firmware inspect` reads it like a real one.

A real IPSW serves one family of models; this one lists every model of the rack
so that one job covers the whole demo.

With --catalog DIR --url URL it also writes, per model, the ipsw.me v4 device
document a catalog source would give for it (DIR/<model>.json: this build,
signed, at URL, with its SHA-256 and size), so that jobs can say "latest".

usage: make-demo-ipsw.py OUT --rack RACK.ini [--size-mb N] [--version V] [--build B]
                         [--catalog DIR --url URL]
"""
import argparse
import hashlib
import json
import os
import plistlib
import re
import sys
import zipfile


def rack_models(path):
    models = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = re.match(r"\s*product_types?\s*=\s*(.+)", line)
            if m:
                for t in m.group(1).split():
                    if not re.fullmatch(r"iPhone\d+,\d+", t):
                        sys.exit("%s:%d: expected models like iPhone12,1, got '%s'" % (path, n, t))
                    if t not in models:
                        models.append(t)
    if not models:
        sys.exit("%s: no product_types: nothing to build an IPSW for" % path)
    return models


def identity(i, model, behavior):
    variant = "Customer %s Install (IPSW)" % ("Erase" if behavior == "Erase" else "Upgrade")
    return {
        "ApChipID": "0x%04x" % (0x8020 + i), "ApBoardID": "0x%02x" % (2 * i + 4),
        "Info": {"DeviceClass": "d%02dap" % (10 + i), "RestoreBehavior": behavior,
                 "Variant": variant},
        "Manifest": {"OS": {"Info": {"Path": "090-00000-000.dmg.aea"}}},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--rack", required=True)
    ap.add_argument("--size-mb", type=int, default=64)
    ap.add_argument("--version", default="18.2")
    ap.add_argument("--build", default="22C152")
    ap.add_argument("--catalog")
    ap.add_argument("--url")
    a = ap.parse_args()
    if bool(a.catalog) != bool(a.url):
        sys.exit("make-demo-ipsw.py: --catalog and --url go together")
    models = rack_models(a.rack)
    manifest = {
        "ProductVersion": a.version, "ProductBuildVersion": a.build,
        "SupportedProductTypes": models,
        "BuildIdentities": [identity(i, m, b) for i, m in enumerate(models)
                            for b in ("Erase", "Update")],
    }
    tmp = a.out + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        z.writestr("BuildManifest.plist", plistlib.dumps(manifest))
        with z.open("090-00000-000.dmg.aea", "w", force_zip64=True) as fs:
            chunk = os.urandom(1 << 20)
            for _ in range(a.size_mb):
                fs.write(chunk)
    os.replace(tmp, a.out)
    if a.catalog:
        write_catalog(a, models)


def write_catalog(a, models):
    h = hashlib.sha256()
    with open(a.out, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    os.makedirs(a.catalog, exist_ok=True)
    for m in models:
        doc = {"identifier": m, "firmwares": [{
            "identifier": m, "version": a.version, "buildid": a.build, "signed": True,
            "url": a.url, "sha256sum": h.hexdigest(), "filesize": os.path.getsize(a.out)}]}
        with open(os.path.join(a.catalog, m + ".json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
