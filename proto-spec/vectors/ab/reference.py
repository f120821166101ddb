#!/usr/bin/env python3
"""An independent reference implementation of the A/B bucketing algorithm of PROTOCOL.md, on
Python's mmh3 (PyPI). Writes murmur3.json (hash vectors) and assignments.json (bucket and variant
for routing keys under initial layouts, plus rebalancing cases).

    python3 proto-spec/vectors/ab/reference.py [--check]
"""
import json, os, sys
import mmh3

HERE = os.path.dirname(os.path.abspath(__file__))
BUCKETS = 10000


def bucket(salt, key):
    return mmh3.hash(f"{salt}:{key}".encode("utf-8"), 0, signed=False) % BUCKETS


def initial(variants):
    owners = []
    for i, (_, w) in enumerate(variants):
        owners += [i] * w
    assert len(owners) == BUCKETS
    return [variants[i][0] for i in owners]


def rebalance(owners, new_variants):
    """Unchanged variants keep their buckets; a shrinking variant gives up its highest buckets; a
    removed variant gives up all; freed buckets, ascending, go to growing variants in listed order."""
    by = {}
    for b, name in enumerate(owners):
        by.setdefault(name, []).append(b)
    names = [n for n, _ in new_variants]
    freed = [b for n, bs in by.items() if n not in names for b in bs]
    out = [None] * BUCKETS
    for name, w in new_variants:
        current = by.get(name, [])
        keep = min(len(current), w)
        for b in current[:keep]:
            out[b] = name
        freed += current[keep:]
    freed.sort()
    i = 0
    for name, w in new_variants:
        have = min(len(by.get(name, [])), w)
        for _ in range(w - have):
            out[freed[i]] = name
            i += 1
    assert None not in out
    return out


def main():
    inputs = ["", "a", "ab", "abc", "abcd", "abcde", "hello", "The quick brown fox jumps over the lazy dog",
              "churn-2026:user-1", "churn-2026:user-42", "churn-2026:", ":", "salt:key", "é", "日本語", "emoji 🎉",
              "user-0", "user-9999999", "x" * 100, "tab\tnew\nline", "0", "00", "000", "0000", "00000",
              "canary", "stable", "s:" + "k" * 31, "s:" + "k" * 32, "s:" + "k" * 33]
    murmur = [{"input": s, "seed": 0, "hash": mmh3.hash(s.encode("utf-8"), 0, signed=False)} for s in inputs]
    murmur += [{"input": "hello", "seed": seed, "hash": mmh3.hash(b"hello", seed, signed=False)} for seed in (1, 42, 4294967295)]
    splits = [("churn-2026", [("stable", 9000), ("canary", 1000)]),
              ("pricing", [("a", 3334), ("b", 3333), ("c", 3333)]),
              ("fraud-v2", [("control", 5000), ("treatment", 5000)]),
              ("x", [("only", 10000)])]
    keys = ["user-1", "user-2", "user-42", "user-1000", "alice", "bob", "🎉", "", "customer:778899"]
    assignments = []
    for salt, variants in splits:
        owners = initial(variants)
        for key in keys:
            b = bucket(salt, key)
            assignments.append({"salt": salt, "routing_key": key, "bucket": b,
                                "variants": [{"name": n, "weight": w} for n, w in variants], "variant": owners[b]})
    rebalancing = []
    for salt, before, after in [("churn-2026", [("stable", 9000), ("canary", 500), ("holdout", 500)], [("stable", 7500), ("canary", 2000), ("holdout", 500)]),
                                ("churn-2026", [("stable", 9000), ("canary", 1000)], [("stable", 5000), ("canary", 5000)]),
                                ("pricing", [("a", 5000), ("b", 5000)], [("a", 2500), ("b", 5000), ("c", 2500)]),
                                ("pricing", [("a", 2500), ("b", 5000), ("c", 2500)], [("a", 5000), ("b", 5000)])]:
        o1 = initial(before)
        o2 = rebalance(o1, after)
        for b in [0, 2499, 2500, 4999, 5000, 7499, 7500, 8999, 9000, 9499, 9500, 9999]:
            rebalancing.append({"salt": salt, "before": [{"name": n, "weight": w} for n, w in before],
                                "after": [{"name": n, "weight": w} for n, w in after],
                                "bucket": b, "variant_before": o1[b], "variant_after": o2[b]})
    files = {"murmur3.json": json.dumps(murmur, indent=1, ensure_ascii=False) + "\n",
             "assignments.json": json.dumps({"initial": assignments, "rebalancing": rebalancing}, indent=1, ensure_ascii=False) + "\n"}
    if "--check" in sys.argv:
        for name, text in files.items():
            if open(os.path.join(HERE, name), encoding="utf-8").read() != text:
                sys.exit(f"{name} differs from the reference computation")
        print("A/B vectors match")
        return
    for name, text in files.items():
        open(os.path.join(HERE, name), "w", encoding="utf-8").write(text)
    print(f"{len(murmur)} hash vectors, {len(assignments)} assignments, {len(rebalancing)} rebalancing cases")


main()
