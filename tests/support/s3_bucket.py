#!/usr/bin/env python3
"""Creates buckets on the test object store: s3_bucket.py ENV_FILE BUCKET...

ENV_FILE is what rgw_server.sh start writes (RGW_ENDPOINT, RGW_ACCESS_KEY, RGW_SECRET_KEY,
RGW_REGION). A bucket that already exists and is ours counts as created. The request is
signed with AWS Signature V4 here (standard library only), independently of regfs's signer,
so a test setup never depends on the code under test.
"""
import datetime
import hashlib
import hmac
import http.client
import sys
import urllib.parse


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            env[key] = value.strip('"')
    return env


def create_bucket(env, bucket):
    endpoint = urllib.parse.urlparse(env["RGW_ENDPOINT"])
    region = env.get("RGW_REGION", "us-east-1")
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    path = "/" + urllib.parse.quote(bucket, safe="-_.~")
    headers = {"host": endpoint.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["PUT", path, "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                           signed, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + env["RGW_SECRET_KEY"]).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={env['RGW_ACCESS_KEY']}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    headers["Content-Length"] = "0"
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    conn.request("PUT", path, body=b"", headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status == 200 or b"BucketAlreadyOwnedByYou" in body:
        return
    sys.exit(f"s3_bucket.py: creating bucket {bucket} failed: HTTP {response.status} {body[:300]!r}")


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: s3_bucket.py ENV_FILE BUCKET...")
    env = read_env(sys.argv[1])
    for bucket in sys.argv[2:]:
        create_bucket(env, bucket)


if __name__ == "__main__":
    main()
