"""Units in normal mode through the agent's real libimobiledevice path: the agent
subscribes to the simulator's usbmuxd ([seams] discovery = sim+usbmuxd), reads each
unit's identity from lockdownd, takes its port from the simulator's USB-level feed,
sends it to recovery through lockdownd before the restore, and sees it leave."""
import os
import subprocess
import time

from harness import Site, check, main, started, tended

RACK = """
[sim]
seed = 9
time_scale = 200
move_s = 36000

[host A]
fill = no

[hub A.1]
host = A
bus = 1
ports = 4

; paired with this host: lockdown lets a session send it to recovery
[unit 0x000356E221749A2B]
at = A-01
product_type = iPhone12,1
mode = normal
paired = yes

; iOS 17.5, not paired: it needs an operator's buttons
[unit 0x0000A1B2C3D4E5F6]
at = A-02
product_type = iPhone11,2
mode = normal

; recovery mode: the simulator's own feed, as libirecovery would see it
[unit 0x0000000000C0FFEE]
at = A-03
product_type = iPhone12,8
mode = recovery
"""

PAIRED, UNPAIRED, RECOVERY = "0x000356E221749A2B", "0x0000A1B2C3D4E5F6", "0x0000000000C0FFEE"


def units(site):
    return {u["ecid"]: u for u in site.cli_json("units")["units"]}


def attach_identity_recovery_restore_detach(bindir):
    site = Site(bindir, RACK, usbmuxd=True, discovery="sim+usbmuxd")
    with started(site):
        site.wait_for(lambda: all(units(site).get(e, {}).get("present") for e in
                                  (PAIRED, UNPAIRED, RECOVERY)), 30, "three units present")
        u = units(site)
        check(u[PAIRED]["product_type"] == "iPhone12,1" and u[PAIRED]["mode"] == "normal",
              "identity from lockdown: %s" % u[PAIRED])
        check(u[UNPAIRED]["product_type"] == "iPhone11,2", "%s" % u[UNPAIRED])
        log = site.log("agent-A")
        check("muxd: unit '00008030-000356E221749A2B': 0x000356E221749A2B iPhone12,1, "
              "iOS 17.5 (21F90), N104AP" in log, "the agent read lockdownd itself")
        check("listening to usbmuxd at 'UNIX:%s'" % site.muxd_sock in log, "usbmuxd reachable")

        # normal mode -> lockdown EnterRecovery -> back in recovery on its port -> restored
        job = site.submit("--ecid", PAIRED, "--name", "paired")
        doc = site.wait_job_finished(job, 90)
        run = doc["runs"][0]
        check(run["state"] == "done", "restored: %s" % run)
        log = site.log("agent-A")
        check("unit 0x000356E221749A2B is in recovery mode on '1-1.1'" in log,
              "seen in recovery on the same port")
        check("lockdown EnterRecovery" in site.log("sim"), "the simulator was asked by lockdown")

        # unpaired on iOS 17.5: refused by lockdown, the operator is asked (needs_dfu)
        job = site.submit("--ecid", UNPAIRED, "--name", "unpaired")
        site.wait_for(lambda: site.job(job)["runs"][0]["state"] == "needs_operator", 60,
                      "unpaired unit needs an operator")
        att = site.cli_json("report", str(job))["units"][0]["attempts"][0]
        check(att["error_class"] == "needs_dfu" and "EnterRecovery" in att["error_text"],
              "lockdown's refusal in the result: %s" % att)
        check(units(site)[UNPAIRED]["mode"] == "normal", "it stayed in normal mode")

        # unplugged (the technician takes it away): detached through the join
        site.move_unit(UNPAIRED, "A-04")
        site.wait_for(lambda: not units(site)[UNPAIRED]["present"], 20, "unpaired unit detached")
        check("unit 0x0000A1B2C3D4E5F6 detached from A-02" in site.log("agent-A"), "detach logged")
        check(site.procs["agent-A"].poll() is None, "agent alive")


RESTORE_RACK = RACK + """
; restore mode (a restore under way elsewhere, or a unit left there): restored answers
[unit 0x0000000000BEEF01]
at = A-04
product_type = iPhone12,1
mode = restore
"""
RESTORING = "0x0000000000BEEF01"


def restore_mode_units_are_read_not_sent_to_recovery(bindir):
    """A unit in restore mode is read from restored (QueryType, QueryValue HardwareInfo) on
    the simulator's usbmuxd, reported in restore mode, and a job for it goes to the engine
    without asking lockdown for recovery (restored has no EnterRecovery)."""
    site = Site(bindir, RESTORE_RACK, usbmuxd=True, discovery="sim+usbmuxd")
    with started(site):
        site.wait_for(lambda: units(site).get(RESTORING, {}).get("present"), 30,
                      "the restore-mode unit present")
        u = units(site)[RESTORING]
        check(u["mode"] == "restore" and u["product_type"] == "iPhone12,1" and u["port"] == "1-1.4",
              "identity from restored: %s" % u)
        check("muxd: unit '00008030-0000000000BEEF01': 0x0000000000BEEF01 iPhone12,1, restore mode, "
              "N104AP" in site.log("agent-A"), "the agent read restored itself")
        site.submit("--ecid", RESTORING, "--name", "in-restore")
        site.wait_for(lambda: "unit 0x0000000000BEEF01: queued_for_bus -> restoring"
                      in site.log("agent-A"), 60, "the engine started for it")
        log = site.log("agent-A")
        check("lockdown took EnterRecovery" not in log and "enter recovery" not in log.lower(),
              "no recovery asked of a restore-mode unit: %s" % log[-3000:])
        check("lockdown EnterRecovery" not in site.log("sim"), "the simulator was not asked")


def no_usbmuxd_is_a_retried_state(bindir):
    """The agent starts before the simulator and its usbmuxd: it says so, retries with
    back-off, and finds the units once usbmuxd is there."""
    site = Site(bindir, RACK, usbmuxd=True, discovery="sim+usbmuxd")
    with tended(site):
        site.start_controller()
        site.start_agent("A")
        site.wait_for(lambda: "retrying in 2 s" in site.log("agent-A"), 20, "two failed probes")
        log = site.log("agent-A")
        check("usbmuxd at 'UNIX:%s' does not answer: no such file or directory; retrying in 1 s"
              % site.muxd_sock in log, "a clear, retried state: %s" % log[-2000:])
        site.start_sim()
        site.wait_for(lambda: units(site).get(PAIRED, {}).get("present"), 60,
                      "units seen once usbmuxd runs")
        check(site.procs["agent-A"].poll() is None, "agent alive")




def usbmuxd_over_tcp(bindir):
    """USBMUXD_SOCKET_ADDRESS=127.0.0.1:PORT: the agent's Listen connection and
    libimobiledevice's lockdown reads both go over TCP to the simulator's usbmuxd."""
    site = Site(bindir, RACK, usbmuxd="tcp", discovery="sim+usbmuxd")
    with started(site):
        site.wait_for(lambda: units(site).get(PAIRED, {}).get("present"), 30, "the unit over TCP")
        u = units(site)[PAIRED]
        check(u["product_type"] == "iPhone12,1" and u["mode"] == "normal" and u["port"] == "1-1.1",
              "identity from lockdown over TCP: %s" % u)
        log = site.log("agent-A")
        check("listening to usbmuxd at '%s'" % site.muxd_tcp in log, "the TCP address: %s" % log[-2000:])
        check("muxd: unit '00008030-000356E221749A2B': 0x000356E221749A2B iPhone12,1" in log,
              "the agent read lockdownd itself")


def an_unreadable_usbmuxd_address_is_refused_at_start(bindir):
    """libusbmuxd would fall back to /var/run/usbmuxd without a word; the agent says what is
    wrong with the address and does not start."""
    site = Site(bindir, RACK, usbmuxd=True, discovery="sim+usbmuxd")
    with tended(site):
        site.start_sim()
        site.start_controller()
        site.env["USBMUXD_SOCKET_ADDRESS"] = "127.0.0.1:http"
        site.start_agent("A")
        code = site.procs["agent-A"].wait(timeout=30)
        log = site.log("agent-A")
        check(code != 0 and "USBMUXD_SOCKET_ADDRESS '127.0.0.1:http': the port is not a number"
              in log, "refused at start (%d): %s" % (code, log[-1500:]))


def normal_mode_on_the_usb_backend(bindir):
    """topology = usb on a recorded sysfs tree: the phone at 1-1.1 there has the USB serial
    00008030-001A2B3C4D5E6F70; the simulator's usbmuxd knows a unit with that UDID. The
    usb seams place it on 1-1.1 (sysfs, by serial) with lockdownd's identity."""
    from test_usb_backend import FIXTURES, start_usb_agent
    rack = RACK + "\n[unit 0x001A2B3C4D5E6F70]\nat = A-04\nproduct_type = iPhone12,1\nmode = normal\n"
    site = Site(bindir, rack, agents=(), usbmuxd=True)
    with tended(site):
        site.start_sim()
        site.start_controller()
        start_usb_agent(site, "U", os.path.abspath(os.path.join(FIXTURES, "nested")))
        ecid = "0x001A2B3C4D5E6F70"
        site.wait_for(lambda: units(site).get(ecid, {}).get("present"), 30, "the unit on the usb agent")
        u = units(site)[ecid]
        check(u["mode"] == "normal" and u["product_type"] == "iPhone12,1", "identity: %s" % u)
        check(u.get("agent") == "U" and u.get("port") == "1-1.1", "placed by sysfs: %s" % u)
        log = site.log("agent-U")
        check("unit '00008030-000356E221749A2B' is on usbmuxd but no USB device has that serial"
              in log, "a unit usbmuxd knows but this host's USB does not is said, not placed")


if __name__ == "__main__":
    main(attach_identity_recovery_restore_detach, restore_mode_units_are_read_not_sent_to_recovery, no_usbmuxd_is_a_retried_state,
         usbmuxd_over_tcp, an_unreadable_usbmuxd_address_is_refused_at_start,
         normal_mode_on_the_usb_backend)
