// qxmpppeer: a headless QXmpp 1.4 (Qt 5) peer for xft's interoperability tests, driven by
// ft-testkit's `QxmppPeer`: a QCoreApplication with QXmppClient and QXmppTransferManager.
//
//   common: --jid USER@HOST/RES --password PW --host 127.0.0.1 --port N [--timeout S]
//           [--proxy JID] [--proxy-only] [--methods s5b,ibb] [--dead-streamhosts] [--debug]
//   recv --dir D --count N [--decline] [--cancel-after BYTES]
//   send --to FULLJID [--cancel-after BYTES] FILE...
//
// One JSON object per line on stdout, each with an "event" (as peers/purplepeer):
//   ready {jid}, streamhost {dir: offer|received, jid, host, port, kept, rewritten, dead},
//   dial {host, port, allowed}, bind {host, port, rewritten}, offer {name, size, from},
//   progress {name, bytes, size} (each 256 KiB),
//   file {name, path, size, offered_size, sha256, from, method}, sent {name, size, sha256, to, method},
//   declined {name, from}, cancelled {name, bytes, size, by: local|remote, error}, error {message}.
// --dead-streamhosts: the relay also rewrites the port of every kept <streamhost/>, received
// or offered, to a port on 127.0.0.1 where nothing listens (bound once at start, read,
// closed), so that every SOCKS5 attempt fails for real on loopback ("rewritten":"127.0.0.1",
// the host on the wire, and "dead":"127.0.0.1:PORT"; else "dead" is null).
// Exit status: 0 when every transfer ended as asked, 2 when one failed otherwise, 1 on error.
//
// Loopback confinement (QXmpp has no setting for it):
// * the client logs in through a relay of ours on 127.0.0.1 that rewrites the XML stream in
//   both directions: our own <streamhost/> offers (QXmpp offers every non-loopback interface
//   address, never 127.0.0.1) become one streamhost on 127.0.0.1, and every other
//   <streamhost/> whose host is not a loopback literal is removed before anything sees it;
// * the transfer manager's QXmppSocksServer is closed and its listener reopened on 127.0.0.1;
// * connect()/sendto()/bind() are wrapped (defined here, they take precedence over libc's for
//   Qt too): a non-loopback connect or sendto is refused and reported, a wildcard bind becomes
//   a loopback bind.
#include <QCoreApplication>
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSocketNotifier>
#include <functional>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>

#include <QXmppClient.h>
#include <QXmppConfiguration.h>
#include <QXmppLogger.h>
#include <QXmppSocks.h>
#include <QXmppTransferManager.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

// ---- JSON output ---------------------------------------------------------------------------
static QByteArray jstr(const QString &v)
{
    QByteArray in = v.toUtf8(), out = "\"";
    for (unsigned char c : in) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20)
                out += QByteArray("\\u00") + QByteArray::number(c, 16).rightJustified(2, '0');
            else
                out += char(c);
        }
    }
    return out + "\"";
}

static void writeAll(const QByteArray &line)
{
    const char *p = line.constData();
    size_t left = size_t(line.size());
    while (left > 0) {
        ssize_t n = ::write(1, p, left);
        if (n <= 0)
            break;
        p += n;
        left -= size_t(n);
    }
}

// Fields are pre-encoded JSON values.
static void emitEvent(const char *event, const QList<QPair<const char *, QByteArray>> &fields)
{
    QByteArray line = "{\"event\":" + jstr(QString::fromLatin1(event));
    for (const auto &f : fields)
        line += ",\"" + QByteArray(f.first) + "\":" + f.second;
    line += "}\n";
    writeAll(line);
}
static QByteArray jnum(qint64 n) { return QByteArray::number(n); }
static QByteArray jbool(bool b) { return b ? "true" : "false"; }

// ---- socket wrappers -------------------------------------------------------------------------
static bool addrText(const struct sockaddr *sa, char *host, size_t len, int *port, bool *lo, bool *any)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        auto *in = reinterpret_cast<const struct sockaddr_in *>(sa);
        inet_ntop(AF_INET, &in->sin_addr, host, socklen_t(len));
        *port = ntohs(in->sin_port);
        *lo = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        *any = in->sin_addr.s_addr == htonl(INADDR_ANY);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        auto *in6 = reinterpret_cast<const struct sockaddr_in6 *>(sa);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, socklen_t(len));
        *port = ntohs(in6->sin6_port);
        *lo = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
              (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
        *any = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
        return true;
    }
    return false;
}

static void dialEvent(const char *host, int port, bool allowed)
{
    emitEvent("dial", {{"host", jstr(QString::fromLatin1(host))}, {"port", jnum(port)}, {"allowed", jbool(allowed)}});
}

extern "C" int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    using Fn = int (*)(int, const struct sockaddr *, socklen_t);
    static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "connect"));
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    bool lo = false, any = false;
    if (addrText(sa, host, sizeof host, &port, &lo, &any)) {
        dialEvent(host, port, lo);
        if (!lo) {
            errno = EACCES;
            return -1;
        }
    }
    return real(fd, sa, len);
}

extern "C" ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len)
{
    using Fn = ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "sendto"));
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    bool lo = false, any = false;
    if (addrText(sa, host, sizeof host, &port, &lo, &any)) {
        dialEvent(host, port, lo);
        if (!lo) {
            errno = EACCES;
            return -1;
        }
    }
    return real(fd, buf, n, flags, sa, len);
}

extern "C" int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    using Fn = int (*)(int, const struct sockaddr *, socklen_t);
    static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "bind"));
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    bool lo = false, any = false;
    if (addrText(sa, host, sizeof host, &port, &lo, &any)) {
        if (sa->sa_family == AF_INET && !lo) {
            struct sockaddr_in in = *reinterpret_cast<const struct sockaddr_in *>(sa);
            in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            emitEvent("bind", {{"host", jstr("127.0.0.1")}, {"port", jnum(port)}, {"rewritten", jbool(true)}});
            return real(fd, reinterpret_cast<const struct sockaddr *>(&in), sizeof in);
        }
        if (sa->sa_family == AF_INET6 && !lo) {
            // Qt binds QHostAddress::Any as a dual-stack "::": keep it reachable on 127.0.0.1.
            struct sockaddr_in6 in6 = *reinterpret_cast<const struct sockaddr_in6 *>(sa);
            int v6only = 0;
            socklen_t olen = sizeof v6only;
            getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen);
            const char *to = v6only ? "::1" : "::ffff:127.0.0.1";
            inet_pton(AF_INET6, to, &in6.sin6_addr);
            emitEvent("bind", {{"host", jstr(QString::fromLatin1(to))}, {"port", jnum(port)}, {"rewritten", jbool(true)}});
            return real(fd, reinterpret_cast<const struct sockaddr *>(&in6), sizeof in6);
        }
        emitEvent("bind", {{"host", jstr(QString::fromLatin1(host))}, {"port", jnum(port)}, {"rewritten", jbool(false)}});
    }
    return real(fd, sa, len);
}

static bool isLoopbackLiteral(const QString &host)
{
    struct in_addr a;
    struct in6_addr a6;
    QByteArray h = host.toLatin1();
    if (inet_pton(AF_INET, h.constData(), &a) == 1)
        return (ntohl(a.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, h.constData(), &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

// ---- options ---------------------------------------------------------------------------------
struct Options {
    QString jid, password, host = "127.0.0.1", proxy, methods, mode, dir, to;
    int port = 5222, timeout = 120, count = 1;
    bool proxyOnly = false, decline = false, debug = false, deadStreamhosts = false;
    qint64 cancelAfter = -1;
    QStringList files;
};
static Options opt;
static int deadPort = 0; // --dead-streamhosts: a port on 127.0.0.1 nobody listens on
static int exitCode = 0;

[[noreturn]] static void usage()
{
    fprintf(stderr, "usage: qxmpppeer --jid U@H/R --password PW [--host H] [--port N] [--timeout S]\n"
                    "       [--proxy JID] [--proxy-only] [--methods s5b,ibb] [--dead-streamhosts] [--debug]\n"
                    "       recv --dir D [--count N] [--decline] [--cancel-after BYTES]\n"
                    "     | send --to FULLJID [--cancel-after BYTES] FILE...\n");
    exit(1);
}

static void parseArgs(const QStringList &args)
{
    for (int i = 1; i < args.size(); i++) {
        const QString &a = args[i];
        auto next = [&]() -> QString {
            if (i + 1 >= args.size())
                usage();
            return args[++i];
        };
        if (a == "--jid") opt.jid = next();
        else if (a == "--password") opt.password = next();
        else if (a == "--host") opt.host = next();
        else if (a == "--port") opt.port = next().toInt();
        else if (a == "--timeout") opt.timeout = next().toInt();
        else if (a == "--proxy") opt.proxy = next();
        else if (a == "--proxy-only") opt.proxyOnly = true;
        else if (a == "--dead-streamhosts") opt.deadStreamhosts = true;
        else if (a == "--methods") opt.methods = next();
        else if (a == "--debug") opt.debug = true;
        else if (a == "--dir") opt.dir = next();
        else if (a == "--count") opt.count = next().toInt();
        else if (a == "--decline") opt.decline = true;
        else if (a == "--cancel-after") opt.cancelAfter = next().toLongLong();
        else if (a == "--to") opt.to = next();
        else if (a == "recv" || a == "send") opt.mode = a;
        else if (a.startsWith("--")) usage();
        else if (opt.mode == "send") opt.files << a;
        else usage();
    }
    if (opt.jid.isEmpty() || opt.password.isEmpty() || opt.mode.isEmpty())
        usage();
    if (opt.mode == "recv" && opt.dir.isEmpty())
        usage();
    if (opt.mode == "send" && (opt.to.isEmpty() || opt.files.isEmpty()))
        usage();
}

static void fail(const QString &message)
{
    emitEvent("error", {{"message", jstr(message)}});
    exitCode = 1;
    QCoreApplication::exit(1);
}

// ---- the rewriting relay between QXmppClient and the server ------------------------------------
static QString attr(const QString &tag, const QString &name)
{
    QRegularExpression re("\\b" + name + "\\s*=\\s*(['\"])(.*?)\\1");
    auto m = re.match(tag);
    return m.hasMatch() ? m.captured(2) : QString();
}

// Rewrites every complete <streamhost/> in `buf` (up to its last '>'; the rest stays for the
// next read) and returns what may be forwarded.
static QByteArray rewrite(QByteArray &buf, bool outgoing, const QString &ownJid, bool *ownOffered)
{
    int end = buf.lastIndexOf('>');
    if (end < 0)
        return QByteArray();
    QString text = QString::fromUtf8(buf.left(end + 1));
    buf = buf.mid(end + 1);
    if (!text.contains("streamhost"))
        return text.toUtf8();
    static const QRegularExpression re("<streamhost(?=[\\s/>])[^>]*?(?:/>|>\\s*</streamhost>)");
    QString out;
    int last = 0;
    auto it = re.globalMatch(text);
    while (it.hasNext()) {
        auto m = it.next();
        out += text.mid(last, m.capturedStart() - last);
        last = m.capturedEnd();
        QString tag = m.captured(0);
        QString host = attr(tag, "host"), jid = attr(tag, "jid");
        int port = attr(tag, "port").toInt();
        bool keep = isLoopbackLiteral(host);
        QString rewritten;
        if (outgoing && !keep && jid == ownJid && !*ownOffered) {
            // QXmpp's own streamhost: offered once, on 127.0.0.1 (its listener is there).
            rewritten = "127.0.0.1";
            tag.replace(QRegularExpression("\\bhost\\s*=\\s*(['\"]).*?\\1"), "host=\"127.0.0.1\"");
            keep = true;
        }
        if (outgoing && keep && jid == ownJid)
            *ownOffered = true;
        QString dead;
        if (keep && opt.deadStreamhosts) {
            rewritten = "127.0.0.1";
            dead = QString("127.0.0.1:%1").arg(deadPort);
            tag.replace(QRegularExpression("\\bhost\\s*=\\s*(['\"]).*?\\1"), "host=\"127.0.0.1\"");
            tag.replace(QRegularExpression("\\bport\\s*=\\s*(['\"]).*?\\1"), QString("port=\"%1\"").arg(deadPort));
            fprintf(stderr, "qxmpppeer: streamhost %s:%d -> dead port %d\n", host.toUtf8().constData(), port, deadPort);
        }
        emitEvent("streamhost", {{"dir", jstr(outgoing ? "offer" : "received")},
                                 {"jid", jstr(jid)},
                                 {"host", jstr(host)},
                                 {"port", jnum(port)},
                                 {"kept", jbool(keep)},
                                 {"rewritten", rewritten.isEmpty() ? QByteArray("null") : jstr(rewritten)},
                                 {"dead", dead.isEmpty() ? QByteArray("null") : jstr(dead)}});
        if (keep)
            out += tag;
        else
            fprintf(stderr, "qxmpppeer: dropped %s\n", tag.toUtf8().constData());
    }
    out += text.mid(last);
    // A new <query> starts a new offer: our own streamhost may be offered again.
    if (outgoing && text.contains("</query>"))
        *ownOffered = false;
    return out.toUtf8();
}

class Relay : public QObject
{
public:
    QTcpServer server;
    QString ownJid;

    bool start()
    {
        QObject::connect(&server, &QTcpServer::newConnection, this, [this]() {
            while (QTcpSocket *client = server.nextPendingConnection())
                pair(client);
        });
        return server.listen(QHostAddress::LocalHost, 0);
    }

private:
    void pair(QTcpSocket *client)
    {
        auto *upstream = new QTcpSocket(this);
        auto *up = new QByteArray, *down = new QByteArray;
        auto *owned = new bool(false);
        QObject::connect(client, &QTcpSocket::readyRead, this, [=]() {
            up->append(client->readAll());
            QByteArray data = rewrite(*up, true, ownJid, owned);
            if (!data.isEmpty())
                upstream->write(data);
        });
        QObject::connect(upstream, &QTcpSocket::readyRead, this, [=]() {
            down->append(upstream->readAll());
            bool dummy = false;
            QByteArray data = rewrite(*down, false, ownJid, &dummy);
            if (!data.isEmpty())
                client->write(data);
        });
        QObject::connect(client, &QTcpSocket::disconnected, upstream, &QTcpSocket::disconnectFromHost);
        QObject::connect(upstream, &QTcpSocket::disconnected, client, &QTcpSocket::disconnectFromHost);
        upstream->connectToHost(QHostAddress(opt.host), quint16(opt.port));
    }
};

// ---- transfers ---------------------------------------------------------------------------------
static QString methodName(QXmppTransferJob::Method m)
{
    return m == QXmppTransferJob::SocksMethod ? "s5b" : m == QXmppTransferJob::InBandMethod ? "ibb" : "none";
}

static QString fileSha256(const QString &path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return QString();
    QCryptographicHash h(QCryptographicHash::Sha256);
    h.addData(&f);
    return QString::fromLatin1(h.result().toHex());
}

static QString safeName(const QString &name)
{
    QString base = QFileInfo(QString(name).replace('\\', '/')).fileName();
    if (base.isEmpty() || base == "." || base == "..")
        base = "unnamed";
    return base;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    QCoreApplication app(argc, argv);
    parseArgs(app.arguments());
    if (opt.deadStreamhosts) {
        // a port on 127.0.0.1 where nothing listens: bound, read, closed
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0
            || getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
            fail("cannot pick a dead port");
            return 1;
        }
        deadPort = ntohs(sa.sin_port);
        close(fd);
        fprintf(stderr, "qxmpppeer: dead streamhost port 127.0.0.1:%d\n", deadPort);
    }
    if (!opt.dir.isEmpty())
        QDir().mkpath(opt.dir);

    Relay relay;
    relay.ownJid = opt.jid;
    if (!relay.start()) {
        fail("relay: cannot listen on 127.0.0.1");
        return 1;
    }

    QXmppClient client;
    QXmppLogger logger;
    logger.setLoggingType(QXmppLogger::SignalLogging);
    logger.setMessageTypes(QXmppLogger::AnyMessage);
    QObject::connect(&logger, &QXmppLogger::message, [](QXmppLogger::MessageType type, const QString &text) {
        const char *dir = type == QXmppLogger::SentMessage ? "SENT" : type == QXmppLogger::ReceivedMessage ? "RECV" : "LOG";
        fprintf(stderr, "qxmpp %s: %s\n", dir, text.toUtf8().constData());
    });
    client.setLogger(&logger);

    auto *tm = new QXmppTransferManager;
    client.addExtension(tm);
    // Its SOCKS5 server binds the wildcard address: close it, listen again on 127.0.0.1.
    if (auto *socks = tm->findChild<QXmppSocksServer *>()) {
        socks->close();
        const auto servers = socks->findChildren<QTcpServer *>();
        if (!servers.isEmpty())
            servers.first()->listen(QHostAddress::LocalHost, 0);
        fprintf(stderr, "qxmpppeer: SOCKS5 server now on 127.0.0.1:%u\n", socks->serverPort());
    } else {
        fail("no QXmppSocksServer child in the transfer manager");
        return 1;
    }
    QXmppTransferJob::Methods methods = QXmppTransferJob::NoMethod;
    if (opt.methods.isEmpty() || opt.methods.contains("s5b"))
        methods |= QXmppTransferJob::SocksMethod;
    if (opt.methods.isEmpty() || opt.methods.contains("ibb"))
        methods |= QXmppTransferJob::InBandMethod;
    tm->setSupportedMethods(methods);
    if (!opt.proxy.isEmpty())
        tm->setProxy(opt.proxy);
    tm->setProxyOnly(opt.proxyOnly);

    int finished = 0;
    int nextFile = 0;
    bool quitting = false;
    auto quitSoon = [&]() {
        if (!quitting) {
            quitting = true;
            QTimer::singleShot(300, &app, [&]() { QCoreApplication::exit(exitCode); });
        }
    };
    std::function<void()> sendNext;
    auto ended = [&]() {
        finished++;
        if (opt.mode == "recv") {
            if (finished >= opt.count)
                quitSoon();
        } else {
            sendNext();
        }
    };

    // Watches one job: progress (cancel-after), then its end.
    auto watch = [&](QXmppTransferJob *job, QFile *file) {
        auto *cancelled = new bool(false);
        auto *mark = new qint64(0);
        QObject::connect(job, &QXmppTransferJob::progress, job, [=](qint64 done, qint64 total) {
            if (done / 262144 > *mark) {
                *mark = done / 262144;
                emitEvent("progress", {{"name", jstr(job->fileName())}, {"bytes", jnum(done)}, {"size", jnum(total)}});
            }
            if (opt.cancelAfter >= 0 && !*cancelled && done >= opt.cancelAfter) {
                *cancelled = true;
                QTimer::singleShot(0, job, [job]() { job->abort(); });
            }
        });
        QObject::connect(job, &QXmppTransferJob::finished, job, [=, &ended]() {
            bool recv = job->direction() == QXmppTransferJob::IncomingDirection;
            QString path = file ? file->fileName() : job->localFileUrl().toLocalFile();
            if (file) {
                file->flush();
                file->close();
            }
            if (job->error() == QXmppTransferJob::NoError) {
                QString sum = fileSha256(path);
                if (recv)
                    emitEvent("file", {{"name", jstr(job->fileName())}, {"path", jstr(path)},
                                       {"size", jnum(QFileInfo(path).size())}, {"offered_size", jnum(job->fileSize())},
                                       {"sha256", jstr(sum)}, {"from", jstr(job->jid())},
                                       {"method", jstr(methodName(job->method()))}});
                else
                    emitEvent("sent", {{"name", jstr(job->fileName())}, {"path", jstr(path)},
                                       {"size", jnum(job->fileSize())}, {"sha256", jstr(sum)},
                                       {"to", jstr(job->jid())}, {"method", jstr(methodName(job->method()))}});
            } else {
                static const char *errors[] = {"none", "abort", "file-access", "file-corrupt", "protocol"};
                int e = int(job->error());
                emitEvent("cancelled", {{"name", jstr(job->fileName())}, {"path", jstr(path)},
                                        {"bytes", jnum(file ? QFileInfo(path).size() : -1)},
                                        {"size", jnum(job->fileSize())},
                                        {"by", jstr(*cancelled ? "local" : "remote")},
                                        {"error", jstr(QString::fromLatin1(e >= 0 && e < 5 ? errors[e] : "?"))},
                                        {"method", jstr(methodName(job->method()))}});
                if (!*cancelled && exitCode == 0)
                    exitCode = 2;
            }
            job->deleteLater();
            ended();
        });
    };

    QObject::connect(tm, &QXmppTransferManager::fileReceived, &app, [&](QXmppTransferJob *job) {
        emitEvent("offer", {{"name", jstr(job->fileName())}, {"size", jnum(job->fileSize())}, {"from", jstr(job->jid())}});
        if (opt.decline) {
            emitEvent("declined", {{"name", jstr(job->fileName())}, {"from", jstr(job->jid())}});
            job->abort();
            ended();
            return;
        }
        auto *file = new QFile(QDir(opt.dir).filePath(safeName(job->fileName())), job);
        if (!file->open(QIODevice::WriteOnly | QIODevice::Truncate)) {
            fail("cannot open " + file->fileName());
            return;
        }
        watch(job, file);
        job->accept(file);
    });

    sendNext = [&]() {
        if (nextFile >= opt.files.size()) {
            quitSoon();
            return;
        }
        QXmppTransferJob *job = tm->sendFile(opt.to, opt.files[nextFile++]);
        watch(job, nullptr);
    };

    QObject::connect(&client, &QXmppClient::connected, &app, [&]() {
        QString jid = client.configuration().jid();
        emitEvent("ready", {{"jid", jstr(jid)}});
        if (opt.mode == "send")
            QTimer::singleShot(100, &app, [&]() { sendNext(); });
    });
    QObject::connect(&client, &QXmppClient::error, &app, [&](QXmppClient::Error e) {
        if (!quitting)
            fail(QString("client error %1").arg(int(e)));
    });

    QXmppConfiguration config;
    QString bare = opt.jid.section('/', 0, 0);
    config.setUser(bare.section('@', 0, 0));
    config.setDomain(bare.section('@', 1));
    config.setResource(opt.jid.section('/', 1));
    config.setPassword(opt.password);
    config.setHost("127.0.0.1");
    config.setPort(relay.server.serverPort());
    config.setStreamSecurityMode(QXmppConfiguration::TLSDisabled);
    config.setAutoReconnectionEnabled(false);
    config.setAutoAcceptSubscriptions(false);
    client.connectToServer(config);

    QTimer::singleShot(opt.timeout * 1000, &app, [&]() { fail("timeout: the whole run took longer than --timeout"); });
    // SIGTERM/SIGINT: leave cleanly (a pipe wakes the event loop).
    static int sigPipe[2];
    if (pipe(sigPipe) == 0) {
        struct sigaction sa = {};
        sa.sa_handler = [](int) { char c = 1; (void)!::write(sigPipe[1], &c, 1); };
        sigaction(SIGTERM, &sa, nullptr);
        sigaction(SIGINT, &sa, nullptr);
        auto *n = new QSocketNotifier(sigPipe[0], QSocketNotifier::Read, &app);
        QObject::connect(n, &QSocketNotifier::activated, &app, [&]() {
            fprintf(stderr, "qxmpppeer: SIGTERM\n");
            quitting = true;
            QCoreApplication::exit(exitCode);
        });
    }
    int rc = app.exec();
    client.disconnectFromServer();
    return rc != 0 ? rc : exitCode;
}
