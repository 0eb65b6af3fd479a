#!/usr/bin/env python3
"""Keep pushing small images to a registry, as a busy CI would, until told to stop.

    pusher.py URL LOG [--repos live/a,live/b] [--count N] [--max N] [--stop FILE]
                      [--seed TEXT] [--pause SECONDS]

Each image is an OCI image manifest with a config and two layers: one layer shared by
every image (so pushes keep linking an existing blob) and one unique layer of random
bytes. Blobs go up as monolithic uploads (POST, then PUT ?digest=), in the order real
clients use (blobs, then the manifest), then the manifest is PUT under a new tag
"<seed>-<n>"; every third image also moves the tag "latest" of its repository. Every
fifth image is multi-platform: two such manifests PUT by digest, then an OCI index
naming them PUT under the tag.

After each acknowledged manifest PUT (201) one line "REPO TAG DIGEST" is appended to
LOG and flushed, so a line in LOG means the registry has confirmed that push.

Stops after --count images (default: unlimited), when FILE exists (--stop), or after
--max images; exits 0, or 1 on any unexpected response.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import sys
import time
import urllib.parse

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Client:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, r, data
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(c, repo, data):
    digest = sha(data)
    status, _, _ = c.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
    if status == 200:
        return digest, len(data)
    status, r, body = c.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"",
                                headers={"Content-Length": "0"})
    if status != 202:
        raise RuntimeError("POST upload in %s: %d %s" % (repo, status, body[:200]))
    loc = r.getheader("Location")
    u = urllib.parse.urlsplit(loc)
    path = u.path + ("?" + u.query + "&" if u.query else "?") + "digest=" + urllib.parse.quote(digest)
    status, _, body = c.request("PUT", path, body=data, headers={
        "Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    if status != 201:
        raise RuntimeError("PUT blob %s in %s: %d %s" % (digest, repo, status, body[:200]))
    return digest, len(data)


def image_manifest(c, repo, rng, shared, tag, arch):
    """Pushes the config and layers of one image; returns its manifest's bytes."""
    layers = [push_blob(c, repo, shared),
              push_blob(c, repo, rng.randbytes(rng.randint(1000, 12000)))]
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Labels": {"pusher.tag": tag}},
        "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
    }, sort_keys=True).encode()
    cdig, csize = push_blob(c, repo, config)
    return json.dumps({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": cdig, "size": csize},
        "layers": [{"mediaType": MT_LAYER, "digest": d, "size": s} for d, s in layers],
    }, indent=2).encode()


def put_manifest(c, repo, reference, body, media_type):
    status, _, resp = c.request("PUT", "/v2/%s/manifests/%s" % (repo, reference), body=body,
                                headers={"Content-Type": media_type})
    if status != 201:
        raise RuntimeError("PUT manifest %s:%s: %d %s" % (repo, reference, status, resp[:200]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("log")
    ap.add_argument("--repos", default="live/a,live/b")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--max", type=int, default=100000)
    ap.add_argument("--stop")
    ap.add_argument("--seed", default="p")
    ap.add_argument("--pause", type=float, default=0.0)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    repos = [r for r in a.repos.split(",") if r]
    c = Client(a.url)
    shared = random.Random("pusher-shared-layer").randbytes(4096)
    n = 0
    with open(a.log, "a") as log:
        while True:
            if a.count and n >= a.count:
                break
            if n >= a.max or (a.stop and os.path.exists(a.stop)):
                break
            repo = repos[n % len(repos)]
            tag = "%s-%d" % (a.seed, n)
            if n % 5 == 4:
                children = []
                for arch in ("amd64", "arm64"):
                    body = image_manifest(c, repo, rng, shared, tag, arch)
                    put_manifest(c, repo, sha(body), body, MT_MANIFEST)
                    children.append({"mediaType": MT_MANIFEST, "digest": sha(body), "size": len(body),
                                      "platform": {"architecture": arch, "os": "linux"}})
                manifest = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX,
                                       "manifests": children}, indent=2).encode()
                media_type = MT_INDEX
            else:
                manifest = image_manifest(c, repo, rng, shared, tag, "amd64")
                media_type = MT_MANIFEST
            mdig = sha(manifest)
            for t in [tag] + (["latest"] if n % 3 == 0 else []):
                put_manifest(c, repo, t, manifest, media_type)
                log.write("%s %s %s\n" % (repo, t, mdig))
                log.flush()
            n += 1
            if a.pause:
                time.sleep(a.pause)
    print("pusher: %d images pushed" % n, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
