"""Debian's real idevicerestore 1.0.0 as the agent's engine, against simulated units
on the simulator's usbmuxd socket. It cannot restore anything here (no USB, no
recovery-mode device it could reach), so each run ends in a failure; flashrack keeps
the engine's own output in the attempt log and classifies how it ended."""
import os
import zipfile

from harness import Site, check, main, started

IDEVICERESTORE = "/usr/bin/idevicerestore"

RACK = """
[sim]
seed = 4
time_scale = 200

[host A]
fill = no

[hub A.1]
host = A
bus = 1
ports = 2

[unit 0x000356E221749A2B]
at = A-01
product_type = iPhone12,1
mode = normal
paired = yes
"""
ECID = "0x000356E221749A2B"


def ipsw_for(site, models):
    """A real zip with a BuildManifest naming other models than the unit's: 1.0.0 checks
    SupportedProductTypes before it asks Apple's signing server anything."""
    path = os.path.join(site.dir, "other-model_Restore.ipsw")
    manifest = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
                "<key>ProductVersion</key><string>18.2</string>"
                "<key>ProductBuildVersion</key><string>22C152</string>"
                "<key>SupportedProductTypes</key><array>%s</array>"
                "<key>BuildIdentities</key><array/></dict></plist>\n"
                % "".join("<string>%s</string>" % m for m in models))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("BuildManifest.plist", manifest)
    return path


def restore_once(site, firmware):
    site.wait_for(lambda: any(u["ecid"] == ECID and u["present"]
                              for u in site.cli_json("units")["units"]), 30, "unit present")
    job = site.cli_json("submit", "--firmware", firmware, "--ecid", ECID)["job_id"]
    def first_attempt():
        atts = site.cli_json("report", str(job))["units"][0]["attempts"]
        return atts[0] if atts and atts[0].get("outcome") not in (None, "", "running") else None
    site.wait_for(lambda: first_attempt() is not None, 120, "the first attempt ended")
    att = first_attempt()  # the controller's retries that follow are its policy's business
    with open(att["log_path"], "rb") as f:
        return att, f.read().decode("utf-8", "replace")


def sees_the_unit_in_normal_mode_and_refuses_the_wrong_ipsw(bindir):
    """discovery = sim: the agent leaves the unit in normal mode and the engine finds it
    through usbmuxd and lockdownd by itself."""
    site = Site(bindir, RACK, usbmuxd=True, engine=IDEVICERESTORE)
    with started(site):
        check("engine '%s': idevicerestore 1.0.0, -P" % IDEVICERESTORE in site.log("agent-A"),
              "the real engine was probed")
        att, log = restore_once(site, ipsw_for(site, ["iPhone11,2"]))
        for line in ("Found device in Normal mode", "Identified device as n104ap, iPhone12,1",
                     "Extracting BuildManifest from IPSW",
                     "ERROR: Could not make sure this firmware is suitable for the current "
                     "device. Refusing to continue."):
            check(line in log, "the attempt log keeps %r:\n%s" % (line, log))
        check(att["error_class"] == "wrong_firmware" and att["exit_code"] == 255,
              "classified: %s" % att)
        check("Could not make sure this firmware is suitable" in att["error_text"], "%s" % att)


def after_lockdown_recovery_the_engine_finds_no_device(bindir):
    """discovery = sim+usbmuxd: the agent sends the paired unit to recovery first; in
    recovery mode it is a libusb device, which this machine has none of, so 1.0.0 cannot
    find it: no_device, with its real message."""
    site = Site(bindir, RACK, usbmuxd=True, discovery="sim+usbmuxd", engine=IDEVICERESTORE)
    with started(site):
        att, log = restore_once(site, ipsw_for(site, ["iPhone12,1"]))
        check("is in recovery mode on '1-1.1'" in site.log("agent-A"), "sent to recovery first")
        check("ERROR: Unable to discover device mode. Please make sure a device is attached."
              in log, "the attempt log keeps the engine's words:\n%s" % log)
        check(att["error_class"] == "no_device" and att["exit_code"] == 255, "classified: %s" % att)


if __name__ == "__main__":
    main(sees_the_unit_in_normal_mode_and_refuses_the_wrong_ipsw,
         after_lockdown_recovery_the_engine_finds_no_device)
