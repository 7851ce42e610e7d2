"""Generate a realistic CloudTrail trail for the benchmarks, with planted exposures and a manifest.

    python bench/gen_trail.py [OUT_DIR] [--records 1000000] [--files 600] [--seed 7]

Writes `OUT_DIR/AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<ts>_<rand>.json.gz`
(compact `{"Records":[…]}`, keys in CloudTrail's order, eventVersion first) and `OUT_DIR/manifest.json`
listing the planted event ids. Background records are cloned from ../shared/corpus/background-real.json.gz
with fresh ids, times, IPs and accounts; about 3% are S3 management events (mostly reads, some benign
writes, some look-alikes that must not alert) and a few hundred are exposures of the four benchmark
rules, in both the old (list-valued) and new (string) request-parameter shapes. Deterministic per seed.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "trail"
# The order CloudTrail writes a record's keys in; anything else keeps its place after these.
CT_ORDER = (
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
    "sourceIPAddress", "userAgent", "errorCode", "errorMessage", "requestParameters",
    "responseElements", "additionalEventData", "requestID", "eventID", "readOnly", "resources",
    "eventType", "apiVersion", "managementEvent", "recipientAccountId", "sharedEventID",
    "vpcEndpointId", "eventCategory", "tlsDetails", "sessionCredentialFromConsole",
)  # fmt: skip
ACCOUNTS = ("123456789012", "210987654321", "555566667777")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
RULES = ("bucket_bpa_weakened", "bucket_bpa_deleted", "bucket_acl_public", "bucket_policy_public")
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
S3_SHARE = 0.03
READS = (
    ("GetBucketAcl", "acl"), ("GetBucketLocation", "location"), ("ListBuckets", None),
    ("GetBucketPolicyStatus", "policyStatus"), ("GetBucketVersioning", "versioning"),
    ("GetBucketEncryption", "encryption"), ("GetBucketPublicAccessBlock", "publicAccessBlock"),
    ("GetBucketPolicy", "policy"), ("GetBucketTagging", "tagging"), ("GetBucketLogging", "logging"),
    ("GetBucketOwnershipControls", "ownershipControls"), ("HeadBucket", None),
)  # fmt: skip
AGENTS = (
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.750 Linux/5.10.223-190.873.amzn2int.x86_64]",
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.9"
    " cfg/retry-mode#standard",
    "Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.12.4"
    " cfg/retry-mode#legacy",
    "APN/1.0 HashiCorp/1.0 Terraform/1.8.5 (+https://www.terraform.io) terraform-provider-aws/5.59.0"
    " aws-sdk-go-v2/1.30.3",
    "[aws-sdk-go/1.54.19 (go1.22.5; linux; amd64)]",
    "cloudformation.amazonaws.com",
)


def uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ordered(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: record[k] for k in CT_ORDER if k in record}
    out.update((k, v) for k, v in record.items() if k not in out)
    return out


def load_background(account: str) -> list[dict[str, Any]]:
    """The real records as templates for one account: Logstash fields dropped, keys in CloudTrail order."""
    data = orjson.loads(gzip.decompress((CORPUS / "background-real.json.gz").read_bytes()))
    out = []
    for record in data["Records"]:
        # Move every account id the record names to ours, so identities and ARNs agree with the file.
        text = orjson.dumps(record).decode().replace(str(record.get("recipientAccountId")), account)
        rec = orjson.loads(text)
        rec.pop("@version", None)
        rec.pop("@timestamp", None)
        rec.setdefault("eventTime", "")
        out.append(ordered(rec))
    return out


def random_ip(rng: random.Random) -> str:
    first = rng.choice((3, 18, 34, 52, 54, 81, 91, 185, 203))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def actors(account: str) -> list[dict[str, Any]]:
    """A few identities that touch S3 in this account: IAM users, roles, SSO, root."""
    out: list[dict[str, Any]] = []
    for name in ("brett", "dana", "ci-deployer"):
        out.append({"type": "IAMUser", "principalId": f"AIDA{account[:8]}{name.upper()[:4]}",
                    "arn": f"arn:aws:iam::{account}:user/{name}", "accountId": account,
                    "accessKeyId": "AKIA" + account + "EXMP", "userName": name})  # fmt: skip
    roles = (("TerraformApply", "gh-actions-4711"), ("AWSReservedSSO_Admin_0a1b2c3d", "priya@example.com"))
    for role, session in roles:
        out.append({
            "type": "AssumedRole", "principalId": f"AROA{account}XYZ:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "accountId": account,
            "accessKeyId": "ASIA" + account + "TEMP",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": f"AROA{account}XYZ",
                                  "arn": f"arn:aws:iam::{account}:role/{role}", "accountId": account, "userName": role},
                "attributes": {"creationDate": "2025-03-01T08:00:00Z", "mfaAuthenticated": "true"},
            },
        })  # fmt: skip
    out.append({"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account,
                "accessKeyId": "ASIA" + account + "ROOT"})  # fmt: skip
    return out


class FileMaker:
    """Builds one log file's records; every choice comes from the file's own seeded generator."""

    def __init__(self, seed: int, account: str, region: str, end: datetime):
        self.rng = random.Random(seed)
        self.account, self.region, self.end = account, region, end
        words = ("logs", "assets", "backup", "data", "site") * 8
        self.buckets = [f"{w}-{account[-4:]}-{i}" for i, w in enumerate(words)]
        self.actors = actors(account)

    def when(self) -> str:
        moment = self.end - timedelta(seconds=self.rng.uniform(0, 300))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def clone(self, template: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        rec = dict(template)
        rec["eventTime"] = self.when()
        rec["awsRegion"] = self.region
        rec["eventID"] = uid(rng)
        if rec.get("requestID"):
            rec["requestID"] = uid(rng)
        ip = rec.get("sourceIPAddress")
        if isinstance(ip, str) and ip[:1].isdigit():
            rec["sourceIPAddress"] = random_ip(rng)
        identity = rec.get("userIdentity")
        if isinstance(identity, dict) and "accessKeyId" in identity:
            identity = dict(identity)
            identity["accessKeyId"] = "ASIA" + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=16))
            rec["userIdentity"] = identity
        return rec

    def s3(self, name: str, params: dict[str, Any] | None, *, old: bool = False, read_only: bool = False,
           error: tuple[str, str] | None = None, bucket: str | None = None) -> dict[str, Any]:  # fmt: skip
        """One S3 management event in the shape of its era (old: eventVersion 1.05, no tlsDetails)."""
        rng = self.rng
        rec: dict[str, Any] = {
            "eventVersion": "1.05" if old else rng.choice(("1.09", "1.10")),
            "userIdentity": rng.choice(self.actors),
            "eventTime": self.when(),
            "eventSource": "s3.amazonaws.com",
            "eventName": name,
            "awsRegion": self.region,
            "sourceIPAddress": random_ip(rng),
            "userAgent": rng.choice(AGENTS),
        }
        if error:
            rec["errorCode"], rec["errorMessage"] = error
        rec["requestParameters"] = params
        rec["responseElements"] = None
        rec["additionalEventData"] = {
            "SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader", "x-amz-id-2": "".join(rng.choices("abcdefABCDEF0123456789+/", k=76)),
            "bytesTransferredOut": rng.randrange(0, 900),
        }  # fmt: skip
        rec["requestID"] = f"{rng.getrandbits(64):016X}"
        rec["eventID"] = uid(rng)
        rec["readOnly"] = read_only
        if bucket:
            rec["resources"] = [{"accountId": self.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        rec["eventType"] = "AwsApiCall"
        rec["managementEvent"] = True
        rec["recipientAccountId"] = self.account
        if not old:
            rec["eventCategory"] = "Management"
            host = f"{bucket}.s3.{self.region}.amazonaws.com" if bucket else f"s3.{self.region}.amazonaws.com"
            rec["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                 "clientProvidedHostHeader": host}  # fmt: skip
        return rec

    def params(self, bucket: str, old: bool, extra: dict[str, Any]) -> dict[str, Any]:
        """bucketName + host in the era's shape (old: host as a list; new: capitalised Host) + sub-resource."""
        host = f"{bucket}.s3.amazonaws.com" if old else f"{bucket}.s3.{self.region}.amazonaws.com"
        base: dict[str, Any] = {"bucketName": bucket, "host": [host]} if old else {"bucketName": bucket, "Host": host}
        return base | {k: ([v] if old and isinstance(v, str) else v) for k, v in extra.items()}

    def bpa(self, flags: dict[str, bool]) -> dict[str, Any]:
        return {"xmlns": XMLNS} | {f: flags[f] for f in self.rng.sample(FLAGS, 4)}

    def policy(self, bucket: str, principal: Any, condition: dict[str, Any] | None = None,
               effect: str = "Allow") -> dict[str, Any]:  # fmt: skip
        statement: dict[str, Any] = {"Sid": self.rng.choice(("PublicRead", "AllowGet", "Stmt1")), "Effect": effect,
                                     "Principal": principal, "Action": "s3:GetObject",
                                     "Resource": f"arn:aws:s3:::{bucket}/*"}  # fmt: skip
        if condition:
            statement["Condition"] = condition
        statements = [statement]
        if self.rng.random() < 0.5:  # a second, harmless statement, as real policies often carry
            statements.insert(0, {"Sid": "DenyInsecure", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                  "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                                  "Condition": {"Bool": {"aws:SecureTransport": "false"}}})  # fmt: skip
        # One statement comes as a list or as a bare object, both as AWS accepts them.
        single = len(statements) == 1 and self.rng.random() < 0.5
        return {"Version": "2012-10-17", "Statement": statement if single else statements}

    def exposure(self, rule: str, old: bool) -> dict[str, Any]:
        """A planted exposure of one of the four rules."""
        rng, bucket = self.rng, self.rng.choice(self.buckets)
        if rule == "bucket_bpa_weakened":
            flags = {f: False for f in FLAGS} if rng.random() < 0.6 else {f: rng.random() < 0.5 for f in FLAGS}
            flags[rng.choice(FLAGS)] = False
            extra = {"publicAccessBlock": "", "PublicAccessBlockConfiguration": self.bpa(flags)}
            return self.s3("PutBucketPublicAccessBlock", self.params(bucket, old, extra), old=old, bucket=bucket)
        if rule == "bucket_bpa_deleted":
            params = self.params(bucket, old, {"publicAccessBlock": ""})
            return self.s3("DeleteBucketPublicAccessBlock", params, old=old, bucket=bucket)
        if rule == "bucket_acl_public":
            canned = rng.choice(("public-read", "public-read", "public-read-write", "authenticated-read"))
            params = self.params(bucket, old, {"acl": "", "x-amz-acl": canned})
            return self.s3("PutBucketAcl", params, old=old, bucket=bucket)
        principal = "*" if rng.random() < 0.7 else {"AWS": "*"}
        extra = {"bucketPolicy": self.policy(bucket, principal), "policy": ""}
        return self.s3("PutBucketPolicy", self.params(bucket, old, extra), old=old, bucket=bucket)

    def lookalike(self, old: bool) -> dict[str, Any]:
        """Near misses that must not alert: failed calls, pinned or denying policies, private ACLs."""
        rng, bucket = self.rng, self.rng.choice(self.buckets)
        denied = ("AccessDenied", "Access Denied")
        kind = rng.randrange(5)
        if kind == 0:
            extra = {"publicAccessBlock": "", "PublicAccessBlockConfiguration": self.bpa(dict.fromkeys(FLAGS, False))}
            params = self.params(bucket, old, extra)
            return self.s3("PutBucketPublicAccessBlock", params, old=old, error=denied, bucket=bucket)
        if kind == 1:
            params = self.params(bucket, old, {"acl": "", "x-amz-acl": "public-read"})
            return self.s3("PutBucketAcl", params, old=old, error=denied, bucket=bucket)
        if kind == 2:
            error = ("NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found")
            params = self.params(bucket, old, {"publicAccessBlock": ""})
            return self.s3("DeleteBucketPublicAccessBlock", params, old=old, error=error, bucket=bucket)
        condition = {"StringEquals": {"aws:SourceVpce": f"vpce-{rng.getrandbits(32):08x}"}}
        policy = self.policy(bucket, "*", condition) if kind == 3 else self.policy(bucket, "*", effect="Deny")
        return self.s3("PutBucketPolicy", self.params(bucket, old, {"bucketPolicy": policy, "policy": ""}),
                       old=old, bucket=bucket)  # fmt: skip

    def routine(self) -> dict[str, Any]:
        """Everyday S3 management traffic: mostly reads, some benign writes."""
        rng, bucket = self.rng, self.rng.choice(self.buckets)
        old = rng.random() < 0.2
        if rng.random() < 0.85:
            name, sub = rng.choice(READS)
            if name == "ListBuckets":
                return self.s3(name, {"Host": f"s3.{self.region}.amazonaws.com"}, read_only=True)
            params = self.params(bucket, old, {sub: ""} if sub else {})
            return self.s3(name, params, old=old, read_only=True, bucket=bucket)
        choice = rng.randrange(6)
        if choice == 0:
            tags = {"xmlns": XMLNS, "TagSet": {"Tag": [{"Key": "team", "Value": rng.choice(("data", "web", "sec"))}]}}
            extra: dict[str, Any] = {"tagging": "", "Tagging": tags}
            name = "PutBucketTagging"
        elif choice == 1:
            extra = {"publicAccessBlock": "", "PublicAccessBlockConfiguration": self.bpa(dict.fromkeys(FLAGS, True))}
            name = "PutBucketPublicAccessBlock"
        elif choice == 2:
            extra, name = {"acl": "", "x-amz-acl": rng.choice(("private", "bucket-owner-full-control"))}, "PutBucketAcl"
        elif choice == 3:
            principal = {"AWS": f"arn:aws:iam::{self.account}:role/TerraformApply"}
            extra, name = {"bucketPolicy": self.policy(bucket, principal), "policy": ""}, "PutBucketPolicy"
        elif choice == 4:
            extra = {"versioning": "", "VersioningConfiguration": {"xmlns": XMLNS, "Status": "Enabled"}}
            name = "PutBucketVersioning"
        else:
            rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}
            extra = {"encryption": "", "ServerSideEncryptionConfiguration": {"xmlns": XMLNS, "Rule": rule}}
            name = "PutBucketEncryption"
        return self.s3(name, self.params(bucket, old, extra), old=old, bucket=bucket)


def make_file(job: dict[str, Any]) -> dict[str, Any]:
    """Write one gzip log file; return its planted event ids and counts."""
    end = datetime.fromisoformat(job["end"])
    maker = FileMaker(job["seed"], job["account"], job["region"], end)
    templates = BACKGROUND[job["account"]]
    records = []
    for _ in range(job["records"]):
        records.append(maker.routine() if maker.rng.random() < S3_SHARE else maker.clone(maker.rng.choice(templates)))
    # A file is roughly in time order (CloudTrail promises no strict order); specials go in afterwards
    # so that some sit exactly at the first and last place, the edges of a byte-search fast path.
    records.sort(key=lambda r: r["eventTime"])
    planted, lookalikes = [], 0
    # Look-alikes first, so that no later insertion pushes a planted record off the first or last place.
    for where, spec in sorted(job["specials"], key=lambda s: s[1] != "lookalike"):
        position = round(where * len(records))  # a fraction of the way into the file: 0 first, 1 last
        if spec == "lookalike":
            records.insert(position, maker.lookalike(old=maker.rng.random() < 0.5))
            lookalikes += 1
            continue
        rule, old = spec
        record = maker.exposure(rule, old)
        records.insert(position, record)
        planted.append({"event_id": record["eventID"], "rule": rule, "shape": "old" if old else "new",
                        "bucket": record["requestParameters"]["bucketName"], "file": job["path"]})  # fmt: skip
    body = b'{"Records":[' + b",".join(orjson.dumps(r) for r in records) + b"]}"
    path = Path(job["root"]) / job["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body, compresslevel=6, mtime=0))
    s3 = sum(1 for r in records if r["eventSource"] == "s3.amazonaws.com")
    return {"planted": planted, "records": len(records), "s3": s3, "lookalikes": lookalikes, "bytes": len(body)}


BACKGROUND: dict[str, list[dict[str, Any]]] = {}


def _init() -> None:
    for account in ACCOUNTS:
        BACKGROUND[account] = load_background(account)


def plan(out: Path, records: int, files: int, planted: int, lookalikes: int, seed: int) -> list[dict[str, Any]]:
    """Which file gets how many records and which planted exposures (and where in the file)."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0, 0.6) for _ in range(files)]
    specials: list[list[tuple[float, Any]]] = [[] for _ in range(files)]
    counts = [max(1, int(records * w / sum(weights))) for w in weights]
    for i in range(planted):
        rule, old = RULES[i % len(RULES)], (i // len(RULES)) % 2 == 0
        # Some at the very start and end of a file: the edges of a byte-search fast path.
        where = (0.0, 1.0, rng.random())[i % 3]
        specials[rng.randrange(files)].append((where, (rule, old)))
    for _ in range(lookalikes):
        specials[rng.randrange(files)].append((rng.random(), "lookalike"))
    start = datetime(2025, 3, 3, tzinfo=UTC)
    jobs = []
    for i in range(files):
        account, region = ACCOUNTS[i % len(ACCOUNTS)], REGIONS[(i // len(ACCOUNTS)) % len(REGIONS)]
        end = start + timedelta(minutes=5 * (i // (len(ACCOUNTS) * len(REGIONS))) * 7, seconds=rng.randrange(240))
        stamp = end.strftime("%Y%m%dT%H%MZ")
        tail = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=16))
        name = f"{account}_CloudTrail_{region}_{stamp}_{tail}.json.gz"
        path = f"AWSLogs/{account}/CloudTrail/{region}/{end:%Y/%m/%d}/{name}"
        jobs.append({"root": str(out), "path": path, "account": account, "region": region, "end": end.isoformat(),
                     "records": max(0, counts[i] - len(specials[i])), "specials": specials[i],
                     "seed": rng.getrandbits(63)})  # fmt: skip
    # The exact total asked for, specials included.
    biggest = max(jobs, key=lambda j: j["records"])
    biggest["records"] += records - sum(j["records"] + len(j["specials"]) for j in jobs)
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--planted", type=int, default=400)
    parser.add_argument("--lookalikes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    if not (CORPUS / "background-real.json.gz").exists():
        print(f"gen_trail: {CORPUS}/background-real.json.gz not found", file=sys.stderr)
        return 2
    began = time.perf_counter()
    out: Path = args.out
    if (out / "AWSLogs").exists():
        for old in sorted((out / "AWSLogs").rglob("*.json.gz")):
            old.unlink()
    jobs = plan(out, args.records, args.files, args.planted, args.lookalikes, args.seed)
    manifest: dict[str, Any] = {"seed": args.seed, "files": len(jobs), "records": 0, "s3_records": 0,
                                "lookalikes": 0, "uncompressed_bytes": 0, "planted": []}  # fmt: skip
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_init) as pool:
        for result in pool.map(make_file, jobs, chunksize=4):
            manifest["records"] += result["records"]
            manifest["s3_records"] += result["s3"]
            manifest["lookalikes"] += result["lookalikes"]
            manifest["uncompressed_bytes"] += result["bytes"]
            manifest["planted"].extend(result["planted"])
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    compressed = sum(p.stat().st_size for p in (out / "AWSLogs").rglob("*.json.gz"))
    print(
        f"wrote {manifest['files']} files, {manifest['records']:,} records ({manifest['s3_records']:,} S3, "
        f"{len(manifest['planted'])} planted exposures, {manifest['lookalikes']} look-alikes), "
        f"{manifest['uncompressed_bytes'] / 1e6:.0f} MB JSON / {compressed / 1e6:.0f} MB gzip under {out} "
        f"in {time.perf_counter() - began:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
