"""deploy/udev/60-flashrack.rules covers the ids it must: every DFU, WTF and
recovery product id gets group flashrack and mode 0660, every normal/restore-mode
id is tagged, nothing else of Apple's or anyone else's is touched. udev itself is
not on this machine (Debian 12's udevadm has no 'verify'), so the rules are read
here the way udev matches them: ATTR/ENV keys compared with fnmatch-style globs,
GOTO skipping to its LABEL."""
import fnmatch
import os
import re

from harness import check, main

RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "udev",
                     "60-flashrack.rules")
KEY = re.compile(r'\s*([A-Z_]+(?:\{[^}]*\})?)\s*(==|!=|\+=|=)\s*"([^"]*)"\s*')


def parse(path):
    """[(line number, [(key, op, value), ...])] for each rule line; comments and blanks skipped."""
    rules = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            pairs = []
            for part in line.split(","):
                m = KEY.fullmatch(part)
                check(m is not None, "%s:%d: cannot read %r" % (path, n, part))
                pairs.append(m.groups())
            rules.append((n, pairs))
    return rules


def apply(rules, device):
    """What udev would do to device (a dict of ATTR{..}/ENV{..}/SUBSYSTEM/ACTION values)."""
    result = {"GROUP": None, "MODE": None, "TAG": set(), "ENV": dict(device.get("ENV", {}))}
    skip_to = None
    for n, pairs in rules:
        if skip_to:
            if pairs == [("LABEL", "=", skip_to)]:
                skip_to = None
            continue
        matched, actions = True, []
        for key, op, value in pairs:
            if op in ("==", "!="):
                have = device.get(key, result["ENV"].get(key[4:-1]) if key.startswith("ENV{") else None)
                ok = have is not None and fnmatch.fnmatchcase(have, value)
                if (op == "==") != ok:
                    matched = False
            else:
                actions.append((key, op, value))
        if not matched:
            continue
        for key, op, value in actions:
            if key == "GOTO":
                skip_to = value
            elif key in ("GROUP", "MODE"):
                result[key] = value
            elif key == "TAG" and op == "+=":
                result["TAG"].add(value)
            elif key.startswith("ENV{"):
                result["ENV"][key[4:-1]] = value
    return result


def usb(vid, pid, action="add"):
    return {"ACTION": action, "SUBSYSTEM": "usb", "ENV": {"DEVTYPE": "usb_device"},
            "ATTR{idVendor}": vid, "ATTR{idProduct}": pid}


def ids_covered(bindir):
    rules = parse(RULES)
    for pid, mode in [("1227", "dfu"), ("1222", "dfu")] + [("%04x" % p, "recovery")
                                                           for p in range(0x1280, 0x1284)]:
        r = apply(rules, usb("05ac", pid))
        check(r["GROUP"] == "flashrack" and r["MODE"] == "0660" and r["ENV"].get("FLASHRACK_MODE") == mode,
              "05ac:%s: %s" % (pid, r))
    normal = ["%04x" % p for p in range(0x1290, 0x12b0)] + ["%04x" % p for p in range(0x1901, 0x1906)]
    for pid in normal:
        r = apply(rules, usb("05ac", pid))
        check("flashrack" in r["TAG"] and r["ENV"].get("FLASHRACK_MODE") == "normal"
              and r["GROUP"] is None, "05ac:%s: %s" % (pid, r))
    for vid, pid in (("05ac", "1284"), ("05ac", "127f"), ("05ac", "12b0"), ("05ac", "1906"),
                     ("05ac", "8600"), ("1234", "1227")):
        r = apply(rules, usb(vid, pid))
        check(r["GROUP"] is None and not r["TAG"], "%s:%s untouched: %s" % (vid, pid, r))
    r = apply(rules, usb("05ac", "1227", action="remove"))
    check(r["GROUP"] is None, "remove events are left alone: %s" % r)
    intf = usb("05ac", "1227")
    intf["ENV"] = {"DEVTYPE": "usb_interface"}
    check(apply(rules, intf)["GROUP"] is None, "interfaces are left alone")


def no_uaccess_and_says_why(bindir):
    with open(RULES) as f:
        text = f.read()
    rule_lines = [l for l in text.splitlines() if l.strip() and not l.startswith("#")]
    check(not any("uaccess" in l for l in rule_lines), "no uaccess tag in the rules")
    check("uaccess" in text and "seat" in text, "the comment says why uaccess is not enough")


if __name__ == "__main__":
    main(ids_covered, no_uaccess_and_says_why)
