"""Partition, the CI size: an agent cut off from the controller for at least 12 s, and
until its restores ended, while all of them run (a relay that holds every byte,
tests/integration/netcut.py; no process is stopped) keeps restoring, and once the link
is mended delivers every result, with no duplicate: each unit restored once by the
simulator's own count, one attempt each, a success. The cut lasts until the restores
ended (bounded), not a fixed time: on a loaded machine the six restores can take longer
than 12 s. bench/partition_bench.py does the 60 s cut."""
from harness import check, main
from partition import format_counts, partition


def a_cut_off_agent_keeps_restoring_and_delivers_afterwards(bindir):
    c = partition(bindir, cut_s=12, units=6, time_scale=100, until_restored=True)
    print(format_counts(c), flush=True)
    check(c["offline_seen"], "the cut was real: the controller saw the agent offline")
    check(c["restored_before_cut"] == 0, "the cut began before any restore ended: %s" % c)
    check(c["restored_during_cut"] == 6, "the agent restored all six while cut off: %s" % c)
    check(c["job_state"] == "done" and c["done"] == 6, "the job done afterwards: %s" % c)
    check(c["engine_runs"] == 6 and c["restored_twice"] == 0, "each unit restored once: %s" % c)
    check(c["attempts"] == 6 and c["successes"] == 6, "one attempt per unit, a success: %s" % c)


if __name__ == "__main__":
    main(a_cut_off_agent_keeps_restoring_and_delivers_afterwards)
