#!/usr/bin/env python3
"""Walk a registry over the Distribution API and verify everything reachable.

    regcheck.py URL [--repo REPO ...] [--expect REPO:TAG=DIGEST ...] [--json OUT]

For every repository (from /v2/_catalog unless --repo is given) and every tag
in /v2/<repo>/tags/list:
  * GET the manifest by tag: status 200, Docker-Content-Digest present and
    equal to sha256(body), Content-Type equal to the body's mediaType;
  * GET it again by digest: identical bytes;
  * for an index / manifest list: the same for every child manifest;
  * for an image manifest: every blob (config + layers) is retrievable with
    GET (sha256 and length match the descriptor) and HEAD (Content-Length).
--expect checks that REPO:TAG exists and resolves to DIGEST.
--json writes {"repo:tag": digest} for all tags found.

Exit status 1 and one line per problem on stderr when anything is wrong.
"""
import argparse
import hashlib
import json
import re
import sys
import urllib.error
import urllib.request

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
TIMEOUT = 60


class Checker:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.errors = []
        self.blobs_ok = set()
        self.manifests_ok = set()
        self.nbytes = 0
        self.tags = {}

    def err(self, msg):
        self.errors.append(msg)
        print("regcheck: ERROR: " + msg, file=sys.stderr)

    def req(self, path, method="GET", accept=ACCEPT):
        url = path if path.startswith("http") else self.base + path
        r = urllib.request.Request(url, method=method, headers={"Accept": accept})
        try:
            return urllib.request.urlopen(r, timeout=TIMEOUT)
        except urllib.error.HTTPError as e:
            return e

    def paged(self, path, key, missing_ok=False):
        out = []
        while path:
            resp = self.req(path)
            body = resp.read()
            if resp.status == 404 and missing_ok and b"NAME_UNKNOWN" in body:
                # registry:2 lists a repository that has blobs (e.g. from an
                # unfinished push) but no tag yet, and answers tags/list with
                # NAME_UNKNOWN for it: that is "no tags", not an error.
                print("regcheck: note: %s -> 404 NAME_UNKNOWN (repository without tags)" % path,
                      file=sys.stderr)
                return out
            if resp.status != 200:
                self.err("GET %s -> %d %s" % (path, resp.status, body[:200]))
                return out
            try:
                out.extend(json.loads(body).get(key) or [])
            except ValueError:
                self.err("GET %s: invalid JSON %r" % (path, body[:200]))
                return out
            link = resp.headers.get("Link")
            m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link or "")
            path = m.group(1) if m else None
        return out

    def manifest(self, repo, ref, expect_digest=None, expect_type=None):
        resp = self.req("/v2/%s/manifests/%s" % (repo, ref))
        body = resp.read()
        where = "%s@%s" % (repo, ref) if ref.startswith("sha256:") else "%s:%s" % (repo, ref)
        if resp.status != 200:
            self.err("GET manifest %s -> %d %s" % (where, resp.status, body[:200]))
            return None
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        header = resp.headers.get("Docker-Content-Digest")
        if header is None:
            self.err("manifest %s: no Docker-Content-Digest header" % where)
        elif header != actual:
            self.err("manifest %s: Docker-Content-Digest %s but body hashes to %s"
                     % (where, header, actual))
        if expect_digest and actual != expect_digest:
            self.err("manifest %s: body hashes to %s, expected %s" % (where, actual, expect_digest))
        try:
            doc = json.loads(body)
        except ValueError:
            self.err("manifest %s: invalid JSON" % where)
            return None
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        mtype = doc.get("mediaType") or expect_type
        if mtype and ctype != mtype:
            self.err("manifest %s: Content-Type %r, mediaType %r" % (where, ctype, mtype))
        return actual, body, doc

    def check_tree(self, repo, digest, body, doc):
        key = (repo, digest)
        if key in self.manifests_ok:
            return
        self.manifests_ok.add(key)
        # By digest: same bytes.
        again = self.manifest(repo, digest, expect_digest=digest, expect_type=doc.get("mediaType"))
        if again and again[1] != body:
            self.err("manifest %s@%s: bytes by digest differ from bytes by tag" % (repo, digest))
        mtype = doc.get("mediaType")
        if mtype in INDEX_TYPES or (mtype is None and "manifests" in doc):
            for child in doc.get("manifests", []):
                r = self.manifest(repo, child["digest"], expect_digest=child["digest"],
                                  expect_type=child.get("mediaType"))
                if r is None:
                    continue
                if len(r[1]) != child.get("size"):
                    self.err("manifest %s@%s: %d bytes, index says %s"
                             % (repo, child["digest"], len(r[1]), child.get("size")))
                self.check_tree(repo, r[0], r[1], r[2])
            return
        if doc.get("schemaVersion") != 2:
            self.err("manifest %s@%s: unexpected schemaVersion %r" % (repo, digest, doc.get("schemaVersion")))
            return
        descs = [doc.get("config")] + list(doc.get("layers") or [])
        for d in descs:
            if not d or "digest" not in d:
                self.err("manifest %s@%s: descriptor without digest" % (repo, digest))
                continue
            self.blob(repo, d["digest"], d.get("size"))

    def blob(self, repo, digest, size):
        key = (repo, digest)
        if key in self.blobs_ok:
            return
        where = "%s@%s" % (repo, digest)
        resp = self.req("/v2/%s/blobs/%s" % (repo, digest), method="HEAD", accept="*/*")
        resp.read()
        if resp.status != 200:
            self.err("HEAD blob %s -> %d" % (where, resp.status))
        else:
            cl = resp.headers.get("Content-Length")
            if cl is None or int(cl) != size:
                self.err("HEAD blob %s: Content-Length %s, descriptor size %s" % (where, cl, size))
            hd = resp.headers.get("Docker-Content-Digest")
            if hd is not None and hd != digest:
                self.err("HEAD blob %s: Docker-Content-Digest %s" % (where, hd))
        resp = self.req("/v2/%s/blobs/%s" % (repo, digest), accept="*/*")
        if resp.status != 200:
            self.err("GET blob %s -> %d %s" % (where, resp.status, resp.read()[:200]))
            return
        h = hashlib.sha256()
        n = 0
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        self.nbytes += n
        actual = "sha256:" + h.hexdigest()
        if actual != digest:
            self.err("GET blob %s: content hashes to %s" % (where, actual))
        elif n != size:
            self.err("GET blob %s: %d bytes, descriptor size %s" % (where, n, size))
        else:
            self.blobs_ok.add(key)

    def run(self, repos):
        if not repos:
            repos = self.paged("/v2/_catalog?n=1000", "repositories")
        for repo in sorted(repos):
            tags = self.paged("/v2/%s/tags/list" % repo, "tags", missing_ok=True)
            for tag in sorted(tags):
                r = self.manifest(repo, tag)
                if r is None:
                    continue
                self.tags["%s:%s" % (repo, tag)] = r[0]
                self.check_tree(repo, r[0], r[1], r[2])
        return repos


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--repo", action="append", default=[])
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--json")
    a = ap.parse_args()
    c = Checker(a.url)
    repos = c.run(a.repo)
    for e in a.expect:
        ref, _, digest = e.partition("=")
        got = c.tags.get(ref)
        if got is None:
            c.err("expected tag %s is missing" % ref)
        elif got != digest:
            c.err("tag %s resolves to %s, expected %s" % (ref, got, digest))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(c.tags, f, indent=1, sort_keys=True)
    print("regcheck: %d repos, %d tags, %d manifests, %d blobs (%d bytes) verified, %d errors"
          % (len(repos), len(c.tags), len(c.manifests_ok), len(c.blobs_ok), c.nbytes, len(c.errors)),
          file=sys.stderr)
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main())
