"""The modes of gajimpeer.py (send, recv, serve) on Gajim's own Client, Jingle and
Bytestream modules: what the GUI's accept click and completion callbacks do
(`gtk/filetransfer.py`, `gui_interface.py`), without GTK."""

import hashlib
import logging
import os
import time

from gajim_patches import observe, to_xml

ACCOUNT = "xft"
NS_S5B = "urn:xmpp:jingle:transports:s5b:1"
NS_JINGLE = "urn:xmpp:jingle:1"
# How long a receiver waits, after the last byte, for a checksum that comes in
# session-info (Gajim hashes files of 10,000,000 bytes and more only after the offer).
CHECKSUM_WAIT_S = 10.0


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def safe_name(name):
    base = os.path.basename((name or "").replace("\\", "/"))
    return base if base not in ("", ".", "..") else "unnamed"


class Run:
    def __init__(self, args, app, socks5, emit, glib):
        self.args, self.app, self.emit, self.GLib = args, app, emit, glib
        self.loop = glib.MainLoop()
        self.code = 0
        self.done = 0
        self.started = None
        self.finished_sids = set()
        self.cancelled_sids = set()
        app.socks5queue = socks5.SocksQueue(app.idlequeue, self.on_complete,
                                            self.on_progress, self.on_error)

    # -- start, stop --------------------------------------------------------------

    def start(self):
        from gajim.common import app, ged
        from gajim.common.client import Client
        app.ged.register_event_handler("signed-in", ged.CORE, self.on_signed_in)
        app.ged.register_event_handler("stanza-sent", ged.CORE,
                                       lambda e: self.on_stanza(e.stanza, "out"))
        app.ged.register_event_handler("stanza-received", ged.CORE,
                                       lambda e: self.on_stanza(e.stanza, "in"))
        app.ged.register_event_handler("file-request-received", ged.CORE,
                                       self.on_file_request)
        self.client = Client(ACCOUNT)
        app.connections[ACCOUNT] = self.client
        app.to_be_removed[ACCOUNT] = []
        app.nicks[ACCOUNT] = self.args.jid.split("@")[0]
        self.client.change_status("online", "")
        self.GLib.timeout_add(int(self.args.timeout * 1000), self.on_timeout)
        self.loop.run()
        return self.code

    def quit(self, code=None, delay_ms=300):
        if code is not None:
            self.code = code
        self.GLib.timeout_add(delay_ms, self.loop.quit)

    def fail(self, message):
        self.emit({"event": "error", "message": message})
        self.quit(1)

    def on_timeout(self):
        self.fail(f"timeout after {self.args.timeout} s")
        return False

    # -- events from Gajim --------------------------------------------------------

    def on_signed_in(self, _event):
        self.emit({"event": "ready", "jid": str(self.client.get_own_jid())})
        if self.args.mode == "send":
            self.discover_then_send()

    def on_stanza(self, stanza, direction):
        xml = to_xml(stanza)
        kind = observe(xml, direction, self.emit, self.capture)
        if direction == "in" and kind == "session-terminate":
            self.on_peer_terminate(xml)

    def capture(self, direction, kind, xml):
        self.emit({"event": "stanza", "dir": direction, "kind": kind, "xml": xml})

    def on_peer_terminate(self, xml):
        import xml.etree.ElementTree as ET
        jingle = ET.fromstring(xml).find(f"{{{NS_JINGLE}}}jingle")
        sid = jingle.get("sid")
        reason = jingle.find(f"{{{NS_JINGLE}}}reason")
        cond = None
        if reason is not None and len(reason):
            cond = reason[0].tag.split("}")[1]
        if sid in self.finished_sids or sid in self.cancelled_sids:
            if self.args.mode == "send":
                self.quit()
            return
        self.cancelled_sids.add(sid)
        self.emit({"event": "cancelled", "by": "peer", "reason": cond, "sid": sid})
        self.count_done(2 if self.args.mode == "send" else 0)

    def count_done(self, code=0):
        self.done += 1
        if code:
            self.code = code
        if self.args.mode == "send" or self.done >= getattr(self.args, "count", 1):
            self.quit()

    # -- send ---------------------------------------------------------------------

    def discover_then_send(self):
        disco = self.client.get_module("Discovery")
        disco.disco_info(self.args.to, callback=self.on_disco)

    def on_disco(self, task):
        try:
            info = task.finish()
        except Exception as exc:
            self.fail(f"disco#info of {self.args.to}: {exc}")
            return
        self.app.storage.cache.set_last_disco_info(info.jid, info, cache_only=True)
        # Gajim looks at a resource's features only while it has its available presence
        # (ResourceContact.supports); without a roster there is none. Answer from the
        # disco#info just received instead; with --method ibb hide S5B so that Gajim
        # picks IBB (it picks S5B whenever the peer lists it).
        from gajim.common.modules.contacts import ResourceContact
        hide = NS_S5B if self.args.method == "ibb" else None
        ResourceContact.supports = lambda c, f: f != hide and info.supports(f)
        self.send_file()

    def send_file(self):
        from gajim.common import helpers
        from gajim.common.file_props import FilesProp
        path = os.path.abspath(self.args.file)
        size = os.path.getsize(path)
        fp = FilesProp.getNewFileProp(ACCOUNT, sid=helpers.get_random_string())
        fp.file_name = path
        fp.name = os.path.basename(path)
        fp.date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(path)))
        fp.type_ = "s"
        fp.desc = ""
        fp.elapsed_time = 0
        fp.size = size
        fp.sender = ACCOUNT
        fp.receiver = self.args.to
        fp.tt_account = ACCOUNT
        self.sha256 = sha256_file(path)
        self.started = time.monotonic()
        tsid = self.client.get_module("Jingle").start_file_transfer(self.args.to, fp)
        if tsid is None:
            self.fail(f"Gajim found no common transport with {self.args.to}")
            return
        self.fp = fp
        # IBB: stop feeding blocks once we cancelled.
        ibb = self.client.get_module("IBB")
        orig_send_data = ibb.send_data

        def send_data(file_props):
            if file_props.stopped:
                return None
            return orig_send_data(file_props)

        ibb.send_data = send_data

    # -- receive ------------------------------------------------------------------

    def on_file_request(self, event):
        fp = event.file_props
        jingle = self.client.get_module("Jingle")
        session = jingle.get_jingle_session(None, fp.sid)
        method = "s5b"
        for content in session.contents.values():
            if content.transport.file_props is fp:
                # _raise_event made a second FileProp; the content must use it too.
                content.file_props = fp
                method = "s5b" if content.transport.type_.name == "SOCKS5" else "ibb"
        fp.xft_method = method
        self.emit({"event": "offer", "name": fp.name, "size": fp.size,
                   "hash_algo": fp.algo, "hash": fp.hash_, "sid": fp.sid,
                   "from": str(event.fjid), "method": method})
        if self.args.mode != "recv":
            return
        if self.args.decline:
            session.decline_session()
            self.finished_sids.add(fp.sid)
            self.emit({"event": "declined", "name": fp.name, "sid": fp.sid,
                       "from": str(event.fjid)})
            self.count_done()
            return
        fp.file_name = os.path.join(os.path.abspath(self.args.dir), safe_name(fp.name))
        fp.type_ = "r"
        fp.tt_account = ACCOUNT
        self.started = time.monotonic()
        self.client.get_module("Bytestream").send_file_approval(fp)

    # -- Gajim's SocksQueue / IBB callbacks ---------------------------------------

    def bytes_of(self, fp):
        return int(fp.received_len or 0)

    def on_progress(self, _account, fp):
        limit = getattr(self.args, "cancel_after", None)
        if limit is None or fp.sid in self.cancelled_sids:
            return
        if self.bytes_of(fp) >= limit:
            self.cancel(fp)

    def cancel(self, fp):
        self.cancelled_sids.add(fp.sid)
        fp.stopped = True
        session = self.client.get_module("Jingle").get_jingle_session(None, fp.sid)
        if session is not None:
            session.cancel_session()
        self.client.get_module("Bytestream").disconnect_transfer(fp)
        self.emit({"event": "cancelled", "by": "us", "bytes": self.bytes_of(fp),
                   "sid": fp.sid, "method": getattr(fp, "xft_method", None)
                   or getattr(self.args, "method", None)})
        self.count_done()

    def on_error(self, title, message):
        self.emit({"event": "transfer-error", "title": str(title), "message": str(message)})

    def on_complete(self, _account, fp):
        if fp.sid in self.finished_sids or fp.sid in self.cancelled_sids:
            return
        if fp.type_ == "r":
            self.app.socks5queue.remove_receiver(fp.sid, True, True)
            if not fp.completed and (fp.stalled or fp.paused):
                return
            self.finished_sids.add(fp.sid)
            self.wait_checksum(fp, time.monotonic() + CHECKSUM_WAIT_S)
        else:
            self.app.socks5queue.remove_sender(fp.sid, True, True)
            self.finished_sids.add(fp.sid)
            secs = max(time.monotonic() - self.started, 1e-9)
            if fp.error != 0:
                self.emit({"event": "transfer-error", "sid": fp.sid, "code": fp.error})
                self.count_done(2)
                return
            self.emit({"event": "sent", "sha256": self.sha256, "bytes": fp.size,
                       "seconds": secs, "mbps": fp.size / secs / 1e6,
                       "method": self.args.method, "sid": fp.sid})
            # Stay online until the receiver ends the session (it may still wait for
            # the checksum Gajim's hash thread sends in session-info).
            self.GLib.timeout_add(int(CHECKSUM_WAIT_S * 1000) + 5000, self.quit)

    def wait_checksum(self, fp, deadline):
        if fp.hash_ is None and fp.algo is None and time.monotonic() < deadline:
            self.GLib.timeout_add(100, self.wait_checksum, fp, deadline)
            return False
        self.finish_file(fp)
        return False

    def finish_file(self, fp):
        from nbxmpp import Hashes2
        checked = ok = False
        if fp.hash_ and fp.algo and fp.error == 0:
            with open(fp.file_name, "rb") as f:
                ok = Hashes2().calculateHash(fp.algo, f) == fp.hash_
            checked = True
        size = os.path.getsize(fp.file_name) if os.path.exists(fp.file_name) else None
        good = fp.error == 0 and fp.completed and (ok or not checked)
        self.emit({"event": "file" if good else "transfer-error", "name": fp.name,
                   "path": fp.file_name, "size": size, "offered_size": fp.size,
                   "sha256": sha256_file(fp.file_name) if size is not None else None,
                   "method": getattr(fp, "xft_method", None), "from": str(fp.sender),
                   "sid": fp.sid, "hash_algo": fp.algo, "hash_checked": checked,
                   "hash_ok": ok, "code": fp.error,
                   "seconds": time.monotonic() - (self.started or time.monotonic())})
        session = self.client.get_module("Jingle").get_jingle_session(None, fp.sid)
        if session is not None:
            session.end_session()
        logging.info("file %s done", fp.file_name)
        self.count_done(0 if good else 2)
