#!/usr/bin/env python3
"""Fill a registry with REPOS repositories of TAGS tags each (small OCI images sharing two
blobs, linked by cross-repository mount), for measuring listings and the file tree.

With --garbage, every image also gets a layer of its own, and every other tag's manifest is
then deleted by digest: half the images become garbage, for measuring garbage collection.

    populate.py URL [--repos 1000] [--tags 10] [--garbage]
"""
import argparse
import hashlib
import http.client
import json
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--garbage", action="store_true")
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port)

    def req(method, path, body=b"", headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
        return r

    config, layer = b"{}", b"regfs populate layer"
    blobs = [(config, "application/vnd.oci.image.config.v1+json"),
             (layer, "application/vnd.oci.image.layer.v1.tar")]
    digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b, _ in blobs]
    first = "bench/r0000"
    for (b, _), d in zip(blobs, digests):
        req("POST", f"/v2/{first}/blobs/uploads/?digest={d}", b,
            {"Content-Type": "application/octet-stream"})
    for i in range(a.repos):
        repo = f"bench/r{i:04d}"
        if i:
            for d in digests:
                req("POST", f"/v2/{repo}/blobs/uploads/?mount={d}&from={first}")
        for t in range(a.tags):
            layers = [{"mediaType": blobs[1][1], "digest": digests[1], "size": len(layer)}]
            if a.garbage:
                own = f"layer of {repo}:t{t}".encode() * 64
                d = "sha256:" + hashlib.sha256(own).hexdigest()
                req("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", own,
                    {"Content-Type": "application/octet-stream"})
                layers.append({"mediaType": blobs[1][1], "digest": d, "size": len(own)})
            m = json.dumps({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": blobs[0][1], "digest": digests[0], "size": len(config)},
                "layers": layers,
                "annotations": {"tag": f"t{t}"}}).encode()
            req("PUT", f"/v2/{repo}/manifests/t{t}", m,
                {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            if a.garbage and t % 2 == 1:
                md = "sha256:" + hashlib.sha256(m).hexdigest()
                req("DELETE", f"/v2/{repo}/manifests/{md}")
    print(f"populated {a.repos} repositories x {a.tags} tags")


if __name__ == "__main__":
    main()
