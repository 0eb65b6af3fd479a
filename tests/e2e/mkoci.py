#!/usr/bin/env python3
"""Generate a small OCI image layout for the regfs end-to-end tests.

    mkoci.py DIR TAG [--platforms linux/amd64,linux/arm64] [--index]
                     [--layers N] [--size BYTES] [--seed TEXT]
                     [--shared-layer TEXT ...]

Writes (or adds to) the OCI image layout DIR: one image manifest per platform,
each with a config and N gzip'ed tar layers holding a text file and SIZE bytes
of pseudo-random (incompressible) data derived from SEED.  With
--shared-layer, the first layer of every platform is derived from that text
alone, so images generated with the same value share that layer blob; given
again, the second layer from the second text, and so on.  With more than one
platform, or with --index, the manifests are wrapped in an OCI image index.
The top-level manifest is referenced from DIR/index.json with the
org.opencontainers.image.ref.name annotation TAG.  Output is deterministic for
a given argument list.  Prints the top-level digest on stdout.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
EPOCH = 1700000000


def put_blob(root, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(root, "blobs", "sha256", digest)
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return "sha256:" + digest, len(data)


def canon(obj):
    return json.dumps(obj, indent=2, sort_keys=False).encode() + b"\n"


def make_layer(rng, label, size):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data, mode=0o644):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = EPOCH
            info.mode = mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))

        d = tarfile.TarInfo("e2e")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        d.mtime = EPOCH
        tar.addfile(d)
        add("e2e/%s.txt" % label, ("regfs e2e layer %s\n" % label).encode())
        add("e2e/%s.bin" % label, rng.randbytes(size))
    raw = buf.getvalue()
    gz = gzip.compress(raw, compresslevel=1, mtime=0)
    return raw, gz


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("tag")
    ap.add_argument("--platforms", default="linux/amd64")
    ap.add_argument("--index", action="store_true")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--size", type=int, default=64 * 1024)
    ap.add_argument("--seed", default="")
    ap.add_argument("--shared-layer", action="append", default=[])
    a = ap.parse_args()

    root = a.dir
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    platforms = [p for p in a.platforms.split(",") if p]
    manifests = []
    for plat in platforms:
        os_, arch = plat.split("/")[:2]
        rng = random.Random("%s|%s|%s" % (a.seed, a.tag, plat))
        layers, diff_ids, history = [], [], []
        for i in range(a.layers):
            label = "%s-%s-%s-%d" % (a.seed or "x", os_, arch, i)
            if i < len(a.shared_layer):
                label = "shared-%s" % a.shared_layer[i]
                raw, gz = make_layer(random.Random(label), label, a.size)
            else:
                raw, gz = make_layer(rng, label, a.size)
            dgst, size = put_blob(root, gz)
            layers.append({"mediaType": MT_LAYER, "digest": dgst, "size": size})
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            history.append({"created": "2023-11-14T22:13:20Z",
                            "created_by": "mkoci.py layer %d" % i})
        config = {
            "created": "2023-11-14T22:13:20Z",
            "architecture": arch,
            "os": os_,
            "config": {"Env": ["E2E_SEED=%s" % a.seed], "Cmd": ["/e2e/none"],
                       "Labels": {"regfs.e2e.tag": a.tag}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
        cdig, csize = put_blob(root, canon(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": cdig, "size": csize},
            "layers": layers,
            "annotations": {"regfs.e2e.platform": plat},
        }
        mdig, msize = put_blob(root, canon(manifest))
        manifests.append({"mediaType": MT_MANIFEST, "digest": mdig, "size": msize,
                          "platform": {"architecture": arch, "os": os_}})

    if len(manifests) > 1 or a.index:
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
        tdig, tsize = put_blob(root, canon(index))
        top = {"mediaType": MT_INDEX, "digest": tdig, "size": tsize}
    else:
        top = dict(manifests[0])
        top.pop("platform")
    top["annotations"] = {REF_NAME: a.tag}

    ipath = os.path.join(root, "index.json")
    try:
        with open(ipath) as f:
            layout_index = json.load(f)
    except FileNotFoundError:
        layout_index = {"schemaVersion": 2, "manifests": []}
    layout_index["manifests"] = [
        m for m in layout_index.get("manifests", [])
        if m.get("annotations", {}).get(REF_NAME) != a.tag] + [top]
    with open(ipath, "w") as f:
        json.dump(layout_index, f, indent=2)
    print(top["digest"])


if __name__ == "__main__":
    sys.exit(main())
