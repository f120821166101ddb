#!/usr/bin/env python3
"""One million routing keys through the A/B bucketing algorithm, computed independently with
Python's mmh3 (PyPI). Writes million.json: per-variant counts and a SHA-256 digest of every key's
variant index (one byte per key, keys "user-0" .. "user-999999" in order), so the Swift test can
prove each of its 1,000,000 assignments equals this reference without shipping them all.

    python3 proto-spec/vectors/ab/million.py          # regenerate
    python3 proto-spec/vectors/ab/million.py --check  # verify the committed file
"""
import hashlib, json, os, sys
import mmh3

SALT = "churn-2026"
VARIANTS = [("stable", 9000), ("canary", 950), ("challenger", 50)]
N = 1_000_000

def variant_index(bucket):
    start = 0
    for i, (_, w) in enumerate(VARIANTS):
        if bucket < start + w:
            return i
        start += w
    raise AssertionError

def main():
    owners = bytearray()
    counts = [0] * len(VARIANTS)
    for i in range(N):
        bucket = mmh3.hash(f"{SALT}:user-{i}", 0, signed=False) % 10000
        v = variant_index(bucket)
        owners.append(v)
        counts[v] += 1
    doc = {
        "salt": SALT,
        "key_format": "user-{i}",
        "keys": N,
        "variants": [{"name": n, "weight": w} for n, w in VARIANTS],
        "counts": {VARIANTS[i][0]: c for i, c in enumerate(counts)},
        "sha256_of_variant_indices": hashlib.sha256(bytes(owners)).hexdigest(),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "million.json")
    text = json.dumps(doc, indent=2) + "\n"
    if "--check" in sys.argv:
        if open(path).read() != text:
            sys.exit("million.json differs from the reference computation")
        print("million.json matches")
    else:
        open(path, "w").write(text)
        print(json.dumps(doc["counts"]))

main()
