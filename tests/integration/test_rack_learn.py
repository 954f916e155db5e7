"""`flashrack-agent rack learn` against the simulator's seams: the technician
moves one phone from port to port, the agent sees each attach through the same
discovery it always uses, proposes the next label, takes the answers from stdin
and writes the map at once; a second session extends the map; a rack map with a
duplicate label stops the agent at start naming file and line."""
import os
import queue
import subprocess
import threading

from harness import Site, check, main

RACK = """
[sim]
seed = 3
time_scale = 200
move_s = 0.5

[host A]
label_prefix = A-
fill = no
product_types = iPhone12,1

[hub A.1]
host = A
bus = 1
depth = 1
ports = 3

[unit 0x000A1B2C3D4E5F60]
at = A-01
product_type = iPhone12,1
mode = recovery
"""


class Learner:
    """flashrack-agent rack learn with pipes; its stdout read line by line on a thread."""

    def __init__(self, site, ini, *args):
        self.p = subprocess.Popen([os.path.join(site.bin, "flashrack-agent"), "rack", "learn",
                                   "-c", ini] + list(args), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=site.env)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, text, limit_s=20):
        while True:
            try:
                line = self.lines.get(timeout=limit_s)
            except queue.Empty:
                raise AssertionError("no line with %r; saw %s" % (text, self.seen[-8:]))
            self.seen.append(line)
            if text in line:
                return line

    def answer(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def finish(self):
        self.answer("done")
        self.p.stdin.close()
        rc = self.p.wait(timeout=20)
        return rc, self.p.stderr.read()


def learn_ini(site, rack_map):
    path = site.agent_ini("A")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("[seams]\n", "[seams]\nrack_map = %s\n" % rack_map))
    return path


def read(path):
    with open(path) as f:
        return f.read()


def ports_section(path):
    lines = read(path).splitlines()
    start = lines.index("[ports]") + 1
    return [l for l in lines[start:] if l and not l.startswith("[")][:10]


def labels_each_port_in_turn(bindir):
    site = Site(bindir, RACK, agents=())
    try:
        site.start_sim()
        rack_map = os.path.join(site.dir, "rack-map.ini")
        ini = learn_ini(site, rack_map)
        l = Learner(site, ini, "--prefix", "S-")
        l.expect("3 ports on this host")
        l.expect("port '1-1.1' (hub 'A.1'): label? [S-01]")
        l.answer("")                                   # Enter: the proposed label
        l.expect("port '1-1.1' is 'S-01' (saved)")
        check(ports_section(rack_map) == ["S-01 = 1-1.1"], "map after one: %s" % read(rack_map))
        site.move_unit("0x000A1B2C3D4E5F60", "A-03")
        l.expect("port '1-1.3' (hub 'A.1'): label? [S-02]")
        l.answer("S-01")                               # taken: refused, asked again
        l.expect("cannot label port '1-1.3' 'S-01': port 'S-01' is given twice")
        l.expect("port '1-1.3' (hub 'A.1'): label? [S-02]")
        l.answer("top-right")
        l.expect("port '1-1.3' is 'top-right' (saved)")
        site.move_unit("0x000A1B2C3D4E5F60", "A-01")   # back into a labelled port
        l.expect("port '1-1.1' is already 'S-01'")
        rc, err = l.finish()
        l.expect("2 ports labelled; the rack map is '%s'" % rack_map)
        check(rc == 0, "exit %d: %s" % (rc, err))
        check(ports_section(rack_map) == ["S-01 = 1-1.1", "top-right = 1-1.3"],
              "map: %s" % read(rack_map))
        check(not os.path.exists(rack_map + ".tmp"), "no temporary file left")

        # a second session extends the map: the next label skips the ones taken
        site.move_unit("0x000A1B2C3D4E5F60", "A-02")
        l = Learner(site, ini, "--prefix", "S-")
        l.expect("extending the rack map '%s' (2 ports labelled)" % rack_map)
        l.expect("port '1-1.2' (hub 'A.1'): label? [S-02]")
        l.answer("skip")
        l.expect("port '1-1.2' skipped")
        rc, err = l.finish()
        check(rc == 0 and ports_section(rack_map) == ["S-01 = 1-1.1", "top-right = 1-1.3"],
              "after a skip: exit %d, %s" % (rc, read(rack_map)))
    except BaseException:
        site.dump_logs()
        raise
    finally:
        site.stop()


def bad_map_stops_the_agent(bindir):
    site = Site(bindir, RACK, agents=())
    try:
        rack_map = os.path.join(site.dir, "rack-map.ini")
        with open(rack_map, "w") as f:
            f.write("[ports]\nA-01 = 1-1.1\nA-01 = 1-1.2\n")
        ini = learn_ini(site, rack_map)
        with open(ini) as f:
            text = f.read()
        with open(ini, "w") as f:
            f.write(text.replace("topology = sim", "topology = usb"))
        r = subprocess.run([os.path.join(bindir, "flashrack-agent"), "-c", ini], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        check(r.returncode == 2, "exit %d: %s" % (r.returncode, r.stderr))
        check("%s:3: [ports] A-01 given twice (first at line 2)" % rack_map in r.stderr,
              "error: %s" % r.stderr)
        r = subprocess.run([os.path.join(bindir, "flashrack-agent"), "rack", "learn", "-c", ini],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        check(r.returncode == 2 and "rack-map.ini:3" in r.stderr, "learn: %d %s" % (r.returncode, r.stderr))
        check(read(rack_map) == "[ports]\nA-01 = 1-1.1\nA-01 = 1-1.2\n", "the map is left as it was")
    finally:
        site.stop()


if __name__ == "__main__":
    main(labels_each_port_in_turn, bad_map_stops_the_agent)
