#!/usr/bin/env python3
"""slixmpp peer for xft's interoperability tests, driven by ft-testkit's `SlixPeer`.

Logs in to a server (plaintext on loopback) and does one job. Every result is one JSON
object per line on stdout, each with an "event" key; logs go to stderr.

    common: --jid JID --password PW --host 127.0.0.1 --port N [--timeout S] [--debug]
    disco-info TARGET              {"event":"disco-info","features":[..],"identities":[..]}
    serve                          stays online answering disco until killed
    recv --dir D --count N [--max-block-size N] [--prefer ibb|s5b]
         [--decline [TEXT]] [--cancel-after BYTES]
                                   one {"event":"file","name","size","sha256","method","from"} per file;
                                   with --decline one {"event":"declined","name","sid","from","text"}
                                   per offer instead (slixmpp's xep_0095.decline(): cancel/forbidden
                                   "Offer declined"; with TEXT the same error carrying TEXT);
                                   with --cancel-after one {"event":"cancelled","name","path","bytes",
                                   "offered_size","method","from"} per file once BYTES arrived (IBB:
                                   the stream's close(); S5B: the socket closed)
    send --to JID --file F --method ibb-iq|ibb-message|s5b [--block-size N] [--proxy JID]
         [--cancel-after BYTES] [--pace S]
                                   {"event":"sent","sha256","bytes","seconds","mbps","method","sid"};
                                   with --cancel-after it stops once BYTES are out (IBB: close();
                                   S5B: the socket closed) and prints {"event":"cancelled","bytes",
                                   "sha256","method","sid"} instead; --pace sleeps S seconds per chunk
                                   (default 0.005 with --cancel-after, else 0) so a cancel lands
                                   mid-stream

Every mode first prints {"event":"ready","jid":FULL_JID} once the session is online.
Errors print {"event":"error","message":...} and exit with status 1 (an IqError reads
"IqError: TYPE: CONDITION[: TEXT]", slixmpp's own format()); --timeout (default 120 s)
bounds the whole run so a stuck peer never hangs a test.

The slixmpp quirks this works around (see shared PEERS.md):
- login without TLS needs enable_direct_tls/enable_starttls off, enable_plaintext on and
  feature_mechanisms' unencrypted_scram;
- xep_0095 registers its coroutine SI request handler as a plain Callback (never awaited, so
  offers get no answer): it is re-registered here as a CoroutineCallback;
- xep_0095.offer() wants methods as [{'label': '', 'value': NS}];
- StreamHost['port'] must be a string;
- xep_0065 delivers S5B payload as a global 'socks5_data' event with no sid, so one S5B
  transfer is received at a time.
"""

import argparse
import asyncio
import hashlib
import json
import logging
import os
import signal
import sys
import time
import uuid

import slixmpp
from slixmpp.exceptions import XMPPError
from slixmpp.xmlstream.handler import CoroutineCallback
from slixmpp.xmlstream.matcher import StanzaPath

NS_SI = "http://jabber.org/protocol/si"
NS_FT = "http://jabber.org/protocol/si/profile/file-transfer"
NS_IBB = "http://jabber.org/protocol/ibb"
NS_S5B = "http://jabber.org/protocol/bytestreams"


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def describe(exc):
    """One line for a failure: the exception type, then slixmpp's own format() for stanza
    errors (type, condition, text), so a test can read what the peer answered."""
    if isinstance(exc, XMPPError):
        return f"{type(exc).__name__}: {exc.format()}"
    return f"{type(exc).__name__}: {exc}"


def safe_name(name):
    base = os.path.basename((name or "").replace("\\", "/"))
    base = "".join(c for c in base if c.isprintable() and c not in "\0/")
    if base in ("", ".", ".."):
        base = "unnamed"
    return base


class Peer(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(
            args.jid,
            args.password,
            plugin_config={"feature_mechanisms": {"unencrypted_scram": True}},
        )
        self.args = args
        self.enable_direct_tls = False
        self.enable_starttls = False
        self.enable_plaintext = True
        for plugin in ("xep_0030", "xep_0047", "xep_0065", "xep_0095", "xep_0096"):
            self.register_plugin(plugin)
        if getattr(args, "max_block_size", None):
            self.plugin["xep_0047"].max_block_size = args.max_block_size
        # Quirk: SI offers are dropped unless the handler is a CoroutineCallback.
        si = self.plugin["xep_0095"]
        self.remove_handler("SI Request")
        self.register_handler(
            CoroutineCallback("SI Request", StanzaPath("iq@type=set/si"), si._handle_request)
        )
        self.done = asyncio.Event()
        self.failed = None
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("disconnected", self.on_disconnected)

    def fail(self, message):
        if self.failed is None:
            self.failed = message
        self.done.set()

    def on_failed_auth(self, _event):
        self.fail("authentication failed")

    def on_disconnected(self, _event):
        if not self.done.is_set():
            self.fail("disconnected")

    async def on_start(self, _event):
        self.send_presence()
        if self.args.mode == "recv":
            self.setup_recv()  # before "ready": an offer may follow it at once
        emit({"event": "ready", "jid": str(self.boundjid.full)})
        try:
            await getattr(self, "job_" + self.args.mode.replace("-", "_"))()
        except Exception as exc:  # report everything, the test reads it
            logging.exception("job failed")
            self.fail(describe(exc))

    # ---- disco-info ---------------------------------------------------------------------
    async def job_disco_info(self):
        info = await self.plugin["xep_0030"].get_info(jid=self.args.target, timeout=30)
        di = info["disco_info"]
        emit(
            {
                "event": "disco-info",
                "from": str(info["from"]),
                "features": sorted(di["features"]),
                "identities": [list(i) for i in di["identities"]],
            }
        )
        self.done.set()

    # ---- serve --------------------------------------------------------------------------
    async def job_serve(self):
        pass  # stay online; disco#info is answered by xep_0030

    # ---- recv ---------------------------------------------------------------------------
    async def job_recv(self):
        pass  # set up in setup_recv; the handlers do the work

    def setup_recv(self):
        self.received = 0
        self.s5b_sink = None
        os.makedirs(self.args.dir, exist_ok=True)
        si = self.plugin["xep_0095"]
        if self.args.prefer:
            first, second = (NS_S5B, NS_IBB) if self.args.prefer == "s5b" else (NS_IBB, NS_S5B)
            for ns in (NS_S5B, NS_IBB):
                si.unregister_method(ns)
            si.register_method(first, "xep_0065" if first == NS_S5B else "xep_0047", 10)
            si.register_method(second, "xep_0065" if second == NS_S5B else "xep_0047", 20)
        self.add_event_handler("si_request", self.on_si_request)
        self.add_event_handler("socks5_data", self.on_socks5_data)
        self.add_event_handler("socks5_closed", self.on_socks5_closed)

    async def on_si_request(self, iq):
        sid = iq["si"]["id"]
        requester = iq["from"]
        f = iq["si"]["file"]
        name = safe_name(f["name"])
        size = int(f["size"] or 0)
        if self.args.decline is not None:
            await self.decline(iq, sid, name, requester)
            return
        pending = await self.plugin["xep_0095"].api["get_pending"](iq["to"], sid, requester)
        method = pending["method"] if pending else None
        sink = Sink(self, name, size, "ibb" if method == NS_IBB else "s5b", requester)
        if method == NS_S5B:
            self.s5b_sink = sink
        await self.plugin["xep_0095"].accept(
            requester, sid, ifrom=iq["to"], stream_handler=sink.on_stream
        )

    async def decline(self, iq, sid, name, requester):
        si = self.plugin["xep_0095"]
        text = self.args.decline or None
        if text is None:
            await si.decline(requester, sid, ifrom=iq["to"])
        else:
            # xep_0095.decline() always says "Offer declined": the same reply with our text.
            pending = await si.api["get_pending"](iq["to"], sid, requester)
            if not pending:
                raise RuntimeError(f"no pending offer {sid!r} to decline")
            reply = self.Iq()
            reply["id"] = pending["response_id"]
            reply["to"] = requester
            reply["from"] = iq["to"]
            reply["type"] = "error"
            reply["error"]["condition"] = "forbidden"
            reply["error"]["text"] = text
            await si.api["del_pending"](iq["to"], sid, requester)
            reply.send()
        emit(
            {
                "event": "declined",
                "name": name,
                "sid": sid,
                "from": str(requester),
                "text": text or "Offer declined",
            }
        )
        self.count_done()

    def on_socks5_data(self, data):
        if self.s5b_sink is not None:
            self.s5b_sink.write(data)

    def on_socks5_closed(self, _exc):
        sink = self.s5b_sink
        if sink is not None and sink.conn is not None and sink.conn.transport.is_closing():
            sink.finish()

    def file_done(self, sink):
        if sink is self.s5b_sink:
            self.s5b_sink = None
        self.count_done()

    def count_done(self):
        self.received += 1
        if self.received >= self.args.count:
            self.done.set()

    # ---- send ---------------------------------------------------------------------------
    async def job_send(self):
        a = self.args
        path = a.file
        size = os.path.getsize(path)
        ns = NS_S5B if a.method == "s5b" else NS_IBB
        sid = uuid.uuid4().hex
        if a.method == "s5b":
            await self.prepare_proxy()
        # Quirk: offer() wants the methods as option mappings.
        result = await self.plugin["xep_0096"].request_file_transfer(
            a.to,
            sid=sid,
            name=os.path.basename(path),
            size=size,
            methods=[{"label": "", "value": ns}],
            timeout=60,
        )
        chosen = result["si"]["feature_neg"]["form"].get_values().get("stream-method")
        if chosen != ns:
            raise RuntimeError(f"peer chose {chosen!r}, offered {ns!r}")
        digest = hashlib.sha256()
        cancel_after = a.cancel_after
        pace = a.pace if a.pace is not None else (0.005 if cancel_after is not None else 0.0)
        sent = 0
        cancelled = False
        start = time.monotonic()
        if a.method == "s5b":
            conn = await self.plugin["xep_0065"].handshake(a.to, sid=sid, timeout=60)
            if conn is None:
                raise RuntimeError("s5b handshake failed")
            closed = asyncio.get_running_loop().create_future()
            self.add_event_handler(
                "socks5_closed", lambda exc: closed.done() or closed.set_result(exc)
            )
            start = time.monotonic()
            with open(path, "rb") as fh:
                while True:
                    want = 65536 if cancel_after is None else min(65536, cancel_after - sent)
                    chunk = fh.read(want)
                    if not chunk:
                        break
                    digest.update(chunk)
                    await conn.write(chunk)
                    sent += len(chunk)
                    if pace:
                        await asyncio.sleep(pace)
                    if cancel_after is not None and sent >= cancel_after:
                        cancelled = True
                        break
            # The requester must close at the end (Prosody holds the last 4 KiB until then);
            # closing before the offered size is how an S5B sender cancels.
            conn.transport.close()
            await asyncio.wait_for(closed, 60)
        else:
            stream = await self.plugin["xep_0047"].open_stream(
                a.to,
                block_size=a.block_size,
                sid=sid,
                use_messages=(a.method == "ibb-message"),
                timeout=60,
            )
            start = time.monotonic()
            with open(path, "rb") as fh:
                while True:
                    want = stream.block_size
                    if cancel_after is not None:
                        want = min(want, cancel_after - sent)
                    chunk = fh.read(want)
                    if not chunk:
                        break
                    digest.update(chunk)
                    await stream.send(chunk, timeout=60)
                    sent += len(chunk)
                    if pace:
                        await asyncio.sleep(pace)
                    if cancel_after is not None and sent >= cancel_after:
                        cancelled = True
                        break
            # The IBB close ends the stream either way; before the offered size it cancels.
            await stream.close(timeout=60)
        seconds = max(time.monotonic() - start, 1e-9)
        if cancelled:
            emit(
                {
                    "event": "cancelled",
                    "sid": sid,
                    "method": a.method,
                    "bytes": sent,
                    "offered_size": size,
                    "sha256": digest.hexdigest(),
                }
            )
            self.done.set()
            return
        emit(
            {
                "event": "sent",
                "sid": sid,
                "method": a.method,
                "bytes": size,
                "sha256": digest.hexdigest(),
                "seconds": seconds,
                "mbps": size / seconds / 1e6,
            }
        )
        self.done.set()

    async def prepare_proxy(self):
        s5b = self.plugin["xep_0065"]
        if self.args.proxy:
            answer = await s5b.get_network_address(self.args.proxy, timeout=30)
            sh = answer["socks"]["streamhost"]
            # Quirk: the port must be a string, an int silently stops the send queue.
            s5b._proxies = {slixmpp.JID(sh["jid"] or self.args.proxy): (sh["host"], str(sh["port"]))}
        else:
            proxies = await s5b.discover_proxies(timeout=30)
            s5b._proxies = {jid: (host, str(port)) for jid, (host, port) in proxies.items()}
        if not s5b._proxies:
            raise RuntimeError("no SOCKS5 proxy found")


class Sink:
    """One file being received: written as it arrives, hashed, reported at the end."""

    def __init__(self, peer, name, size, method, requester):
        self.peer = peer
        self.name = name
        self.size = size
        self.method = method
        self.requester = requester
        self.path = os.path.join(peer.args.dir, name)
        self.fh = open(self.path, "wb")
        self.digest = hashlib.sha256()
        self.bytes = 0
        self.conn = None
        self.finished = False

    def on_stream(self, stream):
        if self.method == "ibb":
            self.stream = stream
            self.peer.add_event_handler("ibb_stream_data", self.on_ibb_data)
            self.peer.add_event_handler("ibb_stream_end", self.on_ibb_end)
        else:
            self.conn = stream
            if self.bytes >= self.size and self.size > 0:
                self.finish()

    def on_ibb_data(self, stream):
        if stream is not self.stream:
            return
        while not stream.recv_queue.empty():
            self.write(stream.recv_queue.get_nowait())

    def on_ibb_end(self, stream):
        if stream is self.stream:
            self.on_ibb_data(stream)
            self.finish()

    def write(self, data):
        if self.finished:
            return
        self.fh.write(data)
        self.digest.update(data)
        self.bytes += len(data)
        limit = self.peer.args.cancel_after
        if limit is not None and self.bytes >= limit and self.bytes < self.size:
            self.cancel()
            return
        if self.method == "s5b" and self.size > 0 and self.bytes >= self.size and self.conn:
            self.finish()

    def cancel(self):
        """--cancel-after: end the bytestream from the receiving side (IBB close(), S5B
        socket closed) and report what arrived."""
        self.finished = True
        self.fh.close()
        if self.method == "ibb":
            self.peer.del_event_handler("ibb_stream_data", self.on_ibb_data)
            self.peer.del_event_handler("ibb_stream_end", self.on_ibb_end)
            closing = self.stream.close(timeout=30)
        else:
            closing = None
            if self.conn is not None:
                self.conn.transport.close()
        emit(
            {
                "event": "cancelled",
                "name": self.name,
                "path": self.path,
                "bytes": self.bytes,
                "offered_size": self.size,
                "sha256": self.digest.hexdigest(),
                "method": self.method,
                "from": str(self.requester),
            }
        )
        # Held here: the loop keeps only a weak reference to a task.
        self.closing_task = asyncio.ensure_future(self.cancelled(closing))

    def finish(self):
        if self.finished:
            return
        self.finished = True
        self.fh.close()
        if self.method == "ibb":
            self.peer.del_event_handler("ibb_stream_data", self.on_ibb_data)
            self.peer.del_event_handler("ibb_stream_end", self.on_ibb_end)
        elif self.conn is not None:
            self.conn.transport.close()
        emit(
            {
                "event": "file",
                "name": self.name,
                "path": self.path,
                "size": self.bytes,
                "offered_size": self.size,
                "sha256": self.digest.hexdigest(),
                "method": self.method,
                "from": str(self.requester),
            }
        )
        self.peer.file_done(self)

    async def cancelled(self, closing):
        # Count the file only once the close is answered (bounded), so the session is not
        # torn down before the peer saw the <close/>.
        if closing is not None:
            try:
                await asyncio.wait_for(closing, 30)
            except Exception as exc:  # reported, but the cancel itself happened
                logging.warning("ibb close after cancel: %s", describe(exc))
        self.peer.file_done(self)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--debug", action="store_true")
    sub = p.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("disco-info")
    d.add_argument("target")
    sub.add_parser("serve")
    r = sub.add_parser("recv")
    r.add_argument("--dir", required=True)
    r.add_argument("--count", type=int, default=1)
    r.add_argument("--max-block-size", type=int, default=None)
    r.add_argument("--prefer", choices=["ibb", "s5b"], default=None)
    r.add_argument("--decline", nargs="?", const="", default=None, metavar="TEXT")
    r.add_argument("--cancel-after", type=int, default=None, metavar="BYTES")
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--file", required=True)
    s.add_argument("--method", choices=["ibb-iq", "ibb-message", "s5b"], required=True)
    s.add_argument("--block-size", type=int, default=4096)
    s.add_argument("--proxy", default=None)
    s.add_argument("--cancel-after", type=int, default=None, metavar="BYTES")
    s.add_argument("--pace", type=float, default=None, metavar="S")
    return p.parse_args(argv)


async def main(argv):
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    peer = Peer(args)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, peer.done.set)
    peer.connect(host=args.host, port=args.port)
    try:
        await asyncio.wait_for(peer.done.wait(), args.timeout)
    except asyncio.TimeoutError:
        peer.fail(f"timed out after {args.timeout} s")
    if peer.failed is not None:
        emit({"event": "error", "message": peer.failed})
    peer.disconnect()
    try:
        await asyncio.wait_for(peer.disconnected, 5)
    except Exception:
        pass
    return 1 if peer.failed is not None else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
