"""A small strict parser of the Prometheus text exposition format 0.0.4, for tests.

parse(text) -> {family: {"type", "help", "samples": [(name, labels dict, value)]}}; any
deviation from the format raises ValueError naming the line."""
import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def _value(text, where):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)", text):
        raise ValueError("%s: bad value %r" % (where, text))
    return float(text)


def _labels(text, where):
    labels, i = {}, 0
    while i < len(text):
        m = re.compile(r"(%s)=\"" % LABEL).match(text, i)
        if not m:
            raise ValueError("%s: bad label at %r" % (where, text[i:]))
        i, value = m.end(), []
        while True:
            if i >= len(text):
                raise ValueError("%s: unterminated label value" % where)
            ch = text[i]
            if ch == "\\":
                esc = text[i + 1:i + 2]
                if esc not in ("\\", '"', "n"):
                    raise ValueError("%s: bad escape \\%s" % (where, esc))
                value.append("\n" if esc == "n" else esc)
                i += 2
            elif ch == '"':
                i += 1
                break
            elif ch == "\n":
                raise ValueError("%s: raw line feed in a label value" % where)
            else:
                value.append(ch)
                i += 1
        if m.group(1) in labels:
            raise ValueError("%s: label %s twice" % (where, m.group(1)))
        labels[m.group(1)] = "".join(value)
        if i < len(text):
            if text[i] != ",":
                raise ValueError("%s: expected ',' between labels" % where)
            i += 1
    return labels


def _family_of(name, families):
    if name in families:
        return name
    for fam, f in families.items():
        if any(name == fam + s for s in SUFFIXES.get(f["type"], ())):
            return fam
    return None


def _check_histogram(fam, f):
    series = {}
    for name, labels, value in f["samples"]:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if name == fam + "_bucket":
            if "le" not in labels:
                raise ValueError("%s: a bucket without le" % fam)
            s["buckets"].append((_value(labels["le"], fam), value))
        elif name == fam + "_count":
            s["count"] = value
        elif name == fam + "_sum":
            s["sum"] = value
        else:
            raise ValueError("%s: sample %s in a histogram" % (fam, name))
    for s in series.values():
        bounds = [b for b, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        if not bounds or bounds[-1] != math.inf or bounds != sorted(bounds):
            raise ValueError("%s: buckets not ascending to +Inf: %s" % (fam, bounds))
        if counts != sorted(counts):
            raise ValueError("%s: bucket counts not cumulative: %s" % (fam, counts))
        if s["count"] is None or s["sum"] is None or s["count"] != counts[-1]:
            raise ValueError("%s: _count/_sum missing or _count != +Inf bucket" % fam)


def parse(text):
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a line feed")
    families, seen = {}, set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d" % n
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (%s) (.*)" % NAME, line)
            if not m:
                if line.startswith("# HELP") or line.startswith("# TYPE"):
                    raise ValueError("%s: bad %r" % (where, line))
                continue  # a plain comment
            kind, name, rest = m.groups()
            f = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if f["samples"]:
                raise ValueError("%s: %s for %s after its samples" % (where, kind, name))
            if kind == "TYPE":
                if f["type"] or rest not in TYPES:
                    raise ValueError("%s: TYPE %s twice or unknown (%r)" % (where, name, rest))
                f["type"] = rest
            else:
                if f["help"] is not None:
                    raise ValueError("%s: HELP %s twice" % (where, name))
                f["help"] = rest
            continue
        m = re.fullmatch(r"(%s)(?:\{(.*)\})? (\S+)(?: (-?\d+))?" % NAME, line)
        if not m:
            raise ValueError("%s: not a sample: %r" % (where, line))
        name, ltext, vtext, _ = m.groups()
        labels = _labels(ltext or "", where)
        fam = _family_of(name, families)
        if fam is None or families[fam]["type"] is None:
            raise ValueError("%s: %s has no TYPE before it" % (where, name))
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError("%s: series %s twice" % (where, key))
        seen.add(key)
        families[fam]["samples"].append((name, labels, _value(vtext, where)))
    for fam, f in families.items():
        if f["type"] == "histogram":
            _check_histogram(fam, f)
    return families


def value(families, name, **labels):
    """The value of one series (labels must match exactly), or None."""
    fam = _family_of(name, families)
    for n, l, v in (families[fam]["samples"] if fam else []):
        if n == name and l == labels:
            return v
    return None
