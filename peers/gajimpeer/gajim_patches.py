"""Runtime patches that make Debian's Gajim 1.7.3 (python3-nbxmpp 4.2.2) usable as a
headless loopback test peer. Nothing under /usr is edited: every change is a monkeypatch
applied by `apply()` before the account connects. See PEERS.md, "Gajim 1.7.3".

1. Receiving (Gajim's bug): `JingleSession.__parse_contents` builds every incoming content
   as `JingleFileTransfer(session, transport=t)`, but 1.7.3 made `file_props` a required
   argument, so every offer raises TypeError and is only acknowledged. The content factory
   registered for `urn:xmpp:jingle:apps:file-transfer:5` now creates the FileProp itself.
2. IBB (nbxmpp's bug): `IBB._parse_open` / `_parse_close` build `IBBData` without `seq` and
   `data` (NamedTuple fields without defaults), so every incoming `<open/>`/`<close/>`
   raises and gets no answer. The module's `IBBData` now defaults the missing fields.
3. Loopback confinement (ours): Gajim offers every interface address plus
   `getaddrinfo(gethostname())` on `file_transfers_port` (28011, bound on `::`), and never
   dials 127.0.0.1 / ::1 ("remove local IPs"). Here its local candidates are replaced by
   one 127.0.0.1 candidate on the port of a 127.0.0.1 listener; the dial filter is
   inverted (only loopback streamhosts are dialled; every other one is dropped before
   dialling, with a `streamhost kept=false` event); every Python socket connect/bind is
   reported (`dial` / `bind` events) and refused when it is not loopback.
4. Wire observer (ours, independent of 3): every stanza sent or received is inspected;
   each `<candidate host>` / `<streamhost host>` Gajim puts on the wire is reported as a
   `streamhost` event (dir offer) so the test's loopback check sees what really left.
"""

import ipaddress
import socket
import xml.etree.ElementTree as ET

NS_JINGLE = "urn:xmpp:jingle:1"
NS_FT5 = "urn:xmpp:jingle:apps:file-transfer:5"
NS_S5B = "urn:xmpp:jingle:transports:s5b:1"
NS_IBB = "http://jabber.org/protocol/ibb"
NS_BS = "http://jabber.org/protocol/bytestreams"


def is_loopback(host):
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def free_loopback_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def patch_receive_path():
    """Fix 1: the content factory passes a FileProp."""
    from gajim.common import jingle_content
    from gajim.common.file_props import FilesProp
    from gajim.common.jingle_ft import JingleFileTransfer

    def make(session, transport=None, senders=None):
        fp = FilesProp.getNewFileProp(session.connection.name, session.sid)
        return JingleFileTransfer(session, file_props=fp, transport=transport,
                                  senders=senders)

    jingle_content.contents[NS_FT5] = lambda _desc: make


def patch_ibb_parse():
    """Fix 2: nbxmpp's IBB parser builds IBBData with every field."""
    import nbxmpp.modules.ibb as nb_ibb
    from nbxmpp.structs import IBBData

    def ibb_data(type, sid, block_size=None, seq=None, data=None):  # noqa: A002
        return IBBData(type=type, sid=sid, block_size=block_size, seq=seq, data=data)

    nb_ibb.IBBData = ibb_data


def patch_confinement(emit, state):
    """Fix 3. `state` carries `listen_port`, `direct` (offer our direct candidate),
    `no_dial` (a test switch: dial none of the peer's candidates, so S5B fails) and
    `unconfined` (a test switch: keep every candidate Gajim's own code adds, so that
    a leak shows; the listener stays on 127.0.0.1)."""
    from gajim.common import socks5
    from gajim.common import jingle_transport
    from gajim.common.jingle_transport import JingleTransportSocks5

    orig_add_local = JingleTransportSocks5._add_local_ips_as_candidates
    orig_add_additional = JingleTransportSocks5._add_additional_candidates

    def confine(self, orig):
        """Runs Gajim's own candidate code, then takes back every candidate it added
        that is not loopback (reported as `streamhost kept=false`)."""
        before = len(self.candidates)
        orig(self)
        if state["unconfined"]:
            return
        added = self.candidates[before:]
        del self.candidates[before:]
        for cand in added:
            emit({"event": "streamhost", "dir": "offer", "host": str(cand["host"]),
                  "port": int(cand["port"]), "type": cand["type"], "kept": False})

    def add_local(self):
        confine(self, orig_add_local)
        if state["unconfined"] or not state["direct"]:
            return
        self._add_candidates([{
            "host": "127.0.0.1",
            "candidate_id": jingle_transport.generate_id(),
            "port": state["listen_port"],
            "type": "direct",
            "jid": self.ourjid,
            "priority": (2 ** 16) * 126,
            "initiator": self.file_props.sender,
            "target": self.file_props.receiver,
        }])

    JingleTransportSocks5._add_local_ips_as_candidates = add_local
    JingleTransportSocks5._add_additional_candidates = (
        lambda self: confine(self, orig_add_additional))

    orig_init = socks5.Socks5Listener.__init__

    def listener_init(self, idlequeue, port, fp):
        orig_init(self, idlequeue, port, fp)
        if True:  # the listener stays on loopback even with --unconfined-candidates
            self.ais = socket.getaddrinfo("127.0.0.1", state["listen_port"],
                                          socket.AF_INET, socket.SOCK_STREAM,
                                          socket.SOL_TCP, socket.AI_PASSIVE)

    socks5.Socks5Listener.__init__ = listener_init

    def connect_to_hosts(self, account, transport_sid, on_success=None,
                         on_failure=None, receiving=True):
        # Gajim 1.7.3's SocksQueue.connect_to_hosts with its "remove local IPs" filter
        # inverted: only loopback streamhosts are dialled, every other one is dropped.
        from gajim.common.file_props import FilesProp
        self.on_success[transport_sid] = on_success
        self.on_failure[transport_sid] = on_failure
        fp = FilesProp.getFilePropByTransportSid(account, transport_sid)
        fp.failure_cb = on_failure
        to_test = []
        for sh in fp.streamhosts:
            ok = is_loopback(sh.get("host")) and not state.get("no_dial")
            emit({"event": "streamhost", "dir": "received", "host": str(sh.get("host")),
                  "port": int(sh.get("port") or 0), "type": sh.get("type", "direct"),
                  "kept": ok})
            if ok:
                to_test.append(sh)
        if not to_test:
            on_failure(fp.transport_sid)
        for sh in to_test:
            if receiving:
                fp.type_ = "r"
                obj = socks5.Socks5ReceiverClient(self.idlequeue, sh, transport_sid, fp)
                self.add_sockobj(account, obj)
            else:
                if fp.sha_str:
                    idx = fp.sha_str
                else:
                    idx = self.idx
                    self.idx = self.idx + 1
                fp.type_ = "s"
                if sh.get("type") == "proxy":
                    fp.is_a_proxy = True
                    fp.proxy_sender = sh["target"]
                    fp.proxy_receiver = sh["initiator"]
                obj = socks5.Socks5SenderClient(
                    self.idlequeue, idx, self, _sock=None, host=str(sh["host"]),
                    port=int(sh["port"]), connected=False, file_props=fp,
                    initiator=sh["initiator"], target=sh["target"])
                obj.streamhost = sh
                self.add_sockobj(account, obj)
            sh["idx"] = obj.queue_idx

    socks5.SocksQueue.connect_to_hosts = connect_to_hosts


def patch_sockets(emit):
    """Every Python-level connect/bind is reported and refused unless loopback."""
    orig_connect = socket.socket.connect
    orig_connect_ex = socket.socket.connect_ex
    orig_bind = socket.socket.bind

    def host_of(addr):
        if isinstance(addr, tuple) and addr:
            return str(addr[0]), int(addr[1]) if len(addr) > 1 else 0
        return None, 0

    def check(addr, what):
        host, port = host_of(addr)
        if host is None:
            return True
        ok = is_loopback(host)
        emit({"event": what, "host": host, "port": port, "allowed": ok})
        return ok

    def connect(self, addr):
        if not check(addr, "dial"):
            raise ConnectionRefusedError("xft gajimpeer: non-loopback dial refused")
        return orig_connect(self, addr)

    def connect_ex(self, addr):
        if not check(addr, "dial"):
            return 111
        return orig_connect_ex(self, addr)

    def bind(self, addr):
        host, port = host_of(addr)
        if host is not None and self.family in (socket.AF_INET, socket.AF_INET6):
            emit({"event": "bind", "host": host or "0.0.0.0", "port": port})
            if not is_loopback(host):
                raise PermissionError("xft gajimpeer: non-loopback bind refused")
        return orig_bind(self, addr)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.bind = bind


def to_xml(stanza):
    if isinstance(stanza, bytes):
        return stanza.decode("utf-8", "replace")
    return str(stanza)


def observe(xml, direction, emit, capture):
    """Fix 4: report what is on the wire. `capture(direction, kind, xml)` gets every
    Jingle / bytestreams / IBB-open-close stanza (not IBB data)."""
    try:
        el = ET.fromstring(xml)
    except ET.ParseError:
        return None
    jingle = el.find(f"{{{NS_JINGLE}}}jingle")
    kind = None
    if jingle is not None:
        kind = jingle.get("action")
        for content in jingle.findall(f"{{{NS_JINGLE}}}content"):
            tr = content.find(f"{{{NS_S5B}}}transport")
            if tr is None:
                continue
            for cand in tr.findall(f"{{{NS_S5B}}}candidate"):
                if direction == "out":
                    emit({"event": "streamhost", "dir": "offer", "host": cand.get("host"),
                          "port": int(cand.get("port") or 0), "type": cand.get("type"),
                          "kept": True})
            for child in tr:
                tag = child.tag.split("}")[1]
                if tag in ("candidate-used", "candidate-error", "activated", "proxy-error"):
                    kind = f"{kind}-{tag}"
        for child in jingle:
            if child.tag == f"{{{NS_FT5}}}checksum":
                h = child.find(f"{{{NS_FT5}}}file/{{urn:xmpp:hashes:2}}hash")
                if h is not None:
                    emit({"event": "checksum", "dir": direction, "algo": h.get("algo"),
                          "value": (h.text or "").strip()})
                kind = "session-info-checksum"
        if kind == "session-initiate" and jingle.find(f".//{{{NS_S5B}}}transport") is None:
            kind = "session-initiate-ibb"
        if kind == "session-accept" and jingle.find(f".//{{{NS_S5B}}}transport") is None:
            kind = "session-accept-ibb"
    elif el.find(f"{{{NS_IBB}}}open") is not None:
        kind = "ibb-open"
    elif el.find(f"{{{NS_IBB}}}close") is not None:
        kind = "ibb-close"
    else:
        q = el.find(f"{{{NS_BS}}}query")
        if q is not None:
            kind = "bytestreams"
            if q.find(f"{{{NS_BS}}}activate") is not None:
                kind = "bytestreams-activate"
            for sh in q.findall(f"{{{NS_BS}}}streamhost"):
                if direction == "out":
                    emit({"event": "streamhost", "dir": "offer", "host": sh.get("host"),
                          "port": int(sh.get("port") or 0), "type": "proxy", "kept": True})
    if kind is not None:
        capture(direction, kind, xml)
    return kind


def apply(emit, state):
    patch_receive_path()
    patch_ibb_parse()
    patch_confinement(emit, state)
    patch_sockets(emit)
