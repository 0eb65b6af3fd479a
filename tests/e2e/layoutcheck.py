#!/usr/bin/env python3
"""Check a registry root against the registry:2 (CNCF Distribution) on-disk layout.

    layoutcheck.py ROOT [--expect REPO:TAG=DIGEST ...] [--links-only]

Always:
  * every file named "link" under ROOT/docker/registry/v2 holds exactly
    "sha256:<64 hex>" (71 bytes, no trailing newline);
  * every ROOT/docker/registry/v2/blobs/sha256/<xx>/<hex>/data hashes to <hex>
    and sits under the right two-character prefix (skipped with --links-only).
For each --expect REPO:TAG=DIGEST:
  * repositories/REPO/_manifests/tags/TAG/current/link = DIGEST
  * repositories/REPO/_manifests/tags/TAG/index/sha256/<hex>/link = DIGEST
  * repositories/REPO/_manifests/revisions/sha256/<hex>/link = DIGEST for the
    manifest and, for an index, each child manifest;
  * repositories/REPO/_layers/sha256/<hex>/link for the config and each layer;
  * the blob data of all of them exists.
"""
import argparse
import hashlib
import json
import os
import re
import sys

LINK_RE = re.compile(rb"\Asha256:[0-9a-f]{64}\Z")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--links-only", action="store_true")
    a = ap.parse_args()
    v2 = os.path.join(a.root, "docker", "registry", "v2")
    errors = []

    def err(msg):
        errors.append(msg)
        print("layoutcheck: ERROR: " + msg, file=sys.stderr)

    if not os.path.isdir(v2):
        err("%s does not exist" % v2)
        return 1

    nlinks = 0
    for dirpath, _dirs, files in os.walk(v2):
        if "link" in files:
            p = os.path.join(dirpath, "link")
            with open(p, "rb") as f:
                data = f.read()
            nlinks += 1
            if not LINK_RE.match(data):
                err("%s: bad link content %r (want 'sha256:<hex>' without newline)"
                    % (os.path.relpath(p, a.root), data[:100]))

    nblobs = 0
    blobdir = os.path.join(v2, "blobs", "sha256")
    if not a.links_only and os.path.isdir(blobdir):
        for prefix in sorted(os.listdir(blobdir)):
            for hexd in sorted(os.listdir(os.path.join(blobdir, prefix))):
                p = os.path.join(blobdir, prefix, hexd, "data")
                if not hexd.startswith(prefix) or len(prefix) != 2:
                    err("blob dir %s/%s has the wrong prefix" % (prefix, hexd))
                if not os.path.isfile(p):
                    err("blob %s has no data file" % hexd)
                    continue
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                if h.hexdigest() != hexd:
                    err("blob data %s hashes to %s" % (os.path.relpath(p, a.root), h.hexdigest()))
                nblobs += 1

    def blob_path(digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(blobdir, hexd[:2], hexd, "data")

    def expect_link(path, digest):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            err("missing link %s (%s)" % (os.path.relpath(path, a.root), e.strerror))
            return
        if data != digest.encode():
            err("%s holds %r, expected %s" % (os.path.relpath(path, a.root), data[:100], digest))

    def walk_manifest(repo_dir, digest):
        hexd = digest.split(":", 1)[1]
        expect_link(os.path.join(repo_dir, "_manifests", "revisions", "sha256", hexd, "link"), digest)
        try:
            with open(blob_path(digest), "rb") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            err("manifest blob %s unreadable: %s" % (digest, e))
            return
        if "manifests" in doc:
            for child in doc["manifests"]:
                walk_manifest(repo_dir, child["digest"])
            return
        for d in [doc.get("config")] + list(doc.get("layers") or []):
            if not d:
                continue
            lh = d["digest"].split(":", 1)[1]
            expect_link(os.path.join(repo_dir, "_layers", "sha256", lh, "link"), d["digest"])
            if not os.path.isfile(blob_path(d["digest"])):
                err("blob data for %s (referenced by %s) is missing" % (d["digest"], digest))

    for e in a.expect:
        ref, _, digest = e.partition("=")
        repo, _, tag = ref.rpartition(":")
        repo_dir = os.path.join(v2, "repositories", repo)
        hexd = digest.split(":", 1)[1]
        tagdir = os.path.join(repo_dir, "_manifests", "tags", tag)
        expect_link(os.path.join(tagdir, "current", "link"), digest)
        expect_link(os.path.join(tagdir, "index", "sha256", hexd, "link"), digest)
        walk_manifest(repo_dir, digest)

    print("layoutcheck: %d link files, %d blobs, %d expected tags checked, %d errors"
          % (nlinks, nblobs, len(a.expect), len(errors)), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
