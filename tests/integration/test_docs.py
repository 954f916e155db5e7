"""The man pages and the bash completion cannot drift from the programs: every page
renders without a warning (man -l, groff -ww) and carries the build's version, the
CLI's page names every verb, and the completion offers every verb of `flashrack
--help` and every option of each `flashrack VERB --help`."""
import os
import re
import subprocess

from harness import check, main

PAGES = ("flashrack.1", "flashrackd.8", "flashrack-agent.8", "flashrack-sim.1")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, **kw)


def cli_verbs(bindir):
    out = run([os.path.join(bindir, "flashrack"), "--help"]).stdout
    block = out.split("Verbs:\n", 1)[1].split("\n\n", 1)[0]
    verbs = [line.split()[0] for line in block.splitlines() if line.strip()]
    check(len(verbs) >= 5, "verbs from --help: %s" % verbs)
    return verbs


def complete(bindir, *words):
    """What the completion offers after 'flashrack WORDS...' (the last word being typed)."""
    script = os.path.join(bindir, "..", "completion", "flashrack")
    words = ["flashrack"] + list(words)
    prog = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _flashrack; printf "%%s\\n" "${COMPREPLY[@]}"'
            % (script, " ".join("'%s'" % w for w in words), len(words) - 1))
    r = run(["bash", "--norc", "--noprofile", "-c", prog])
    check(r.returncode == 0 and not r.stderr, "completion ran: %r" % r.stderr)
    return set(r.stdout.split())


def man_pages_render_without_warnings(bindir):
    version = run([os.path.join(bindir, "flashrack"), "--version"]).stdout.split()[1]
    for page in PAGES:
        path = os.path.join(bindir, "..", "man", page)
        r = run(["man", "--warnings", "-l", path], env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8",
                                                           MAN_KEEP_FORMATTING="0"))
        check(r.returncode == 0 and not r.stderr.strip(), "%s: man: %r" % (page, r.stderr))
        name = page.rsplit(".", 1)[0]
        check(re.search(r"^NAME\s*\n\s*%s " % re.escape(name), re.sub(".\b", "", r.stdout), re.M),
              "%s: its NAME section" % page)
        r = run(["groff", "-ww", "-z", "-man", path])
        check(r.returncode == 0 and not r.stderr.strip(), "%s: groff: %r" % (page, r.stderr))
        check(("flashrack %s" % version) in open(path).read(), "%s carries version %s" % (page, version))
    text = open(os.path.join(bindir, "..", "man", "flashrack.1")).read()
    for verb in cli_verbs(bindir):
        check(re.search(r"^\.B %s\b" % verb, text, re.M), "flashrack(1) describes '%s'" % verb)


def completion_offers_every_verb_and_option(bindir):
    verbs = cli_verbs(bindir)
    offered = complete(bindir, "")
    check(set(verbs) <= offered, "verbs offered: %s, missing %s" % (offered, set(verbs) - offered))
    check(not {w for w in offered if not w.startswith("-")} - set(verbs),
          "no verb the CLI lacks: %s" % (offered - set(verbs)))
    check(complete(bindir, "rep") == {"report"}, "a prefix completes")
    for verb in verbs:
        helptext = run([os.path.join(bindir, "flashrack"), verb, "--help"]).stdout
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", helptext))
        got = complete(bindir, verb, "--")
        check(options <= got, "%s: options %s not offered (got %s)" % (verb, options - got, got))
    check(complete(bindir, "-o", "j") == {"json"}, "output formats")


if __name__ == "__main__":
    main(man_pages_render_without_warnings, completion_offers_every_verb_and_option)
