#!/usr/bin/python3
"""Headless Gajim 1.7.3 peer for xft's interoperability tests (Jingle File Transfer),
driven by ft-testkit's `GajimPeer`. Run with Debian's /usr/bin/python3 (gajim, nbxmpp
and gi live in dist-packages). Gajim's own `gajim.common` runs on a GLib main loop, no
GTK; the profile lives in a temporary directory; the password is given directly.

Every result is one JSON object per line on stdout, each with an "event" key; Gajim's
log goes to stderr.

    common: --jid JID --password PW --host 127.0.0.1 --port N [--timeout S] [--debug]
            [--profile DIR]
            [--proxy JID] [--no-direct] [--no-dial] [--extra-host ADDR]
            [--unconfined-candidates]
    send --to FULLJID --file F --method s5b|ibb [--cancel-after BYTES]
        {"event":"sent","sha256","bytes","seconds","mbps","method","sid"}, or with
        --cancel-after {"event":"cancelled","by":"us","bytes","method","sid"}
    recv --dir D [--count N] [--decline] [--cancel-after BYTES]
        one {"event":"offer","name","size","hash_algo","hash","sid","from","method"} per
        offer, then {"event":"file","name","path","size","offered_size","sha256","method",
        "from","sid","hash_algo","hash_checked","hash_ok","seconds"} per file (the file
        is written straight to D/<name>, as Gajim does; a receiver whose offer had no hash
        waits up to 10 s for the session-info checksum, then verifies it); a failed file
        is {"event":"transfer-error",...,"code":Gajim's error} instead; with --decline
        {"event":"declined","name","sid","from"} instead; with --cancel-after
        {"event":"cancelled","by":"us","bytes",...} once BYTES arrived
    serve                               online, answering disco, until killed (offers
                                        are reported as `offer` and left unanswered)
Exit status: 0 done as asked, 2 a transfer failed or the peer cancelled, 1 an error.
The sender asks --to for disco#info first and needs no roster or presence.

Both sides: {"event":"cancelled","by":"peer","reason"} when the peer terminates a
session that has not completed (exit status 2 for a sender);
{"event":"transfer-error","title","message"} for Gajim's own error callback;
{"event":"checksum","dir","algo","value"} for each
session-info checksum; {"event":"stanza","dir":"in"|"out","kind","xml"} for every
Jingle, bytestreams and IBB open/close stanza (not IBB data; `kind` is the Jingle action,
suffixed with the transport-info payload); `streamhost` / `dial` / `bind` events for the
loopback check (see gajim_patches.py). Every mode first prints
{"event":"ready","jid":FULL_JID}. Errors print {"event":"error","message"} and exit 1;
--timeout (default 120 s) bounds the whole run.

--proxy JID makes Gajim offer that SOCKS5 proxy (use_ft_proxies); --no-direct drops our
own direct candidate (so only the proxy is offered); --no-dial makes Gajim dial none of
the peer's candidates (each reported `streamhost kept=false`; Gajim answers
candidate-error: how a test makes S5B fail without any non-loopback address); --extra-host ADDR sets Gajim's own
`ft_add_hosts_to_send` (an address it then offers, as a user's setting would);
--unconfined-candidates keeps every candidate Gajim's code adds (a test switch: with
--extra-host 192.0.2.2 it shows that the loopback check catches a leak).
"""

import argparse
import shutil
import signal
import json
import logging
import os
import sys
import tempfile
import time

REAL_STDOUT = sys.stdout
# Gajim prints ("creating ... directory") on stdout: keep stdout for JSON lines only.
sys.stdout = sys.stderr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gajim_patches  # noqa: E402

ACCOUNT = "xft"
# Temporary directories we made, removed before exiting (normal exit, error, SIGTERM).
atexit_dirs = []


def cleanup_and_exit(code):
    REAL_STDOUT.flush()
    for d in atexit_dirs:
        shutil.rmtree(d, ignore_errors=True)
    os._exit(code)


def emit(obj):
    REAL_STDOUT.write(json.dumps(obj, sort_keys=True) + "\n")
    REAL_STDOUT.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--debug", action="store_true")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="Gajim's profile directory (default: a temporary one, removed at exit)")
    p.add_argument("--proxy", default=None)
    p.add_argument("--no-direct", action="store_true")
    p.add_argument("--no-dial", action="store_true")
    p.add_argument("--unconfined-candidates", dest="unconfined", action="store_true")
    p.add_argument("--extra-host", default="", metavar="ADDR")
    sub = p.add_subparsers(dest="mode", required=True)
    sub.add_parser("serve")
    r = sub.add_parser("recv")
    r.add_argument("--dir", required=True)
    r.add_argument("--count", type=int, default=1)
    r.add_argument("--decline", action="store_true")
    r.add_argument("--cancel-after", type=int, default=None, metavar="BYTES")
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--file", required=True)
    s.add_argument("--method", choices=["s5b", "ibb"], required=True)
    s.add_argument("--cancel-after", type=int, default=None, metavar="BYTES")
    return p.parse_args(argv)


def setup_gajim(args, profile):
    """The part of CoreApplication._init_core and gui_interface.Interface a headless
    client needs: paths, settings, storage, the SOCKS5 queue, the proxy65 manager."""
    from gi.repository import GLib, GObject
    from nbxmpp import idlequeue
    from gajim.common import app, configpaths, passwords, proxy65_manager, socks5
    from gajim.common.settings import LegacyConfig, Settings
    from gajim.common.storage.archive import MessageArchiveStorage
    from gajim.common.storage.cache import CacheStorage
    from gajim.common.storage.events import EventStorage
    from gajim.common.storage.draft import DraftStorage
    from gajim.common.cert_store import CertificateStore
    from gajim.common.task_manager import TaskManager

    class Dummy(GObject.Object):
        screensaver_active = GObject.Property(type=bool, default=False)

    class NoPlugins:
        def extension_point(self, *_args, **_kwargs):
            return None

    app.app = Dummy()
    app.plugin_manager = NoPlugins()
    configpaths.set_config_root(profile)
    configpaths.init()
    configpaths.create_paths()
    app.settings = Settings()
    app.settings.init()
    app.config = LegacyConfig()
    app.storage.cache = CacheStorage()
    app.storage.cache.init()
    app.storage.events = EventStorage()
    app.storage.events.init()
    app.storage.archive = MessageArchiveStorage()
    app.storage.archive.init()
    app.storage.drafts = DraftStorage()
    app.cert_store = CertificateStore()
    app.task_manager = TaskManager()
    passwords.get_password = lambda _account: args.password

    node, rest = args.jid.split("@", 1)
    domain, _, resource = rest.partition("/")
    app.settings.add_account(ACCOUNT)
    acc = {
        "name": node, "hostname": domain, "resource": resource or "gajim",
        "active": True, "autoconnect": False, "savepass": False,
        "use_custom_host": True, "custom_host": args.host, "custom_port": args.port, "custom_type": "PLAIN",
        "use_plain_connection": True, "confirm_unencrypted_connection": False,
        "ft_send_local_ips": True, "use_ft_proxies": bool(args.proxy),
        "file_transfer_proxies": args.proxy or "", "test_ft_proxies_on_startup": False,
    }
    for k, v in acc.items():
        app.settings.set_account_setting(ACCOUNT, k, v)
    app.settings.set("ft_add_hosts_to_send", args.extra_host)
    app.idlequeue = idlequeue.get_idlequeue()
    app.proxy65_manager = proxy65_manager.Proxy65Manager(app.idlequeue)

    def process():
        try:
            app.idlequeue.process()
        except Exception:  # as Gajim's own loop: an exception must not stop it
            logging.exception("idlequeue")
        return True

    GLib.timeout_add(50, process)
    return app, socks5


def main(argv):
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    state = {"listen_port": gajim_patches.free_loopback_port(),
             "direct": not args.no_direct, "unconfined": args.unconfined,
             "no_dial": args.no_dial}
    gajim_patches.apply(emit, state)
    profile = args.profile
    if profile is None:
        profile = tempfile.mkdtemp(prefix="xft-gajimpeer-profile-")
        atexit_dirs.append(profile)
    from gi.repository import GLib
    app, socks5 = setup_gajim(args, profile)
    app.settings.set("file_transfers_port", state["listen_port"])

    from peer_run import Run  # noqa: E402  (after the patches and the settings)
    run = Run(args, app, socks5, emit, GLib)
    return run.start()


if __name__ == "__main__":
    # SIGTERM (the launcher stopping us by pid): remove the profile, exit at once. The
    # handler runs within 50 ms (the idlequeue timer returns to Python that often).
    signal.signal(signal.SIGTERM, lambda *_: cleanup_and_exit(143))
    try:
        code = main(sys.argv[1:])
    except Exception as exc:  # a test reads the cause from the error line
        logging.exception("gajimpeer failed")
        emit({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        code = 1
    cleanup_and_exit(code)
