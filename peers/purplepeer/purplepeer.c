/*
 * purplepeer: a headless libpurple 2.14 (prpl-jabber) peer for xft's interoperability tests,
 * driven by ft-testkit's `PurplePeer`. Set up as libpurple's example/nullclient.c does (glib
 * main loop UI ops, core UI ops, an account, a saved status).
 *
 *   common: --jid USER@HOST/RES --password PW --host 127.0.0.1 --port N [--timeout S]
 *           [--proxy JID] [--no-direct] [--methods s5b,ibb] [--dead-streamhosts] [--debug]
 *   recv --dir D --count N [--decline] [--cancel-after BYTES]
 *   send --to FULLJID [--cancel-after BYTES] FILE...
 *
 * Every result is one JSON object per line on stdout, each with an "event":
 *   ready {jid}                  online
 *   streamhost {dir, jid, host, port, kept, rewritten, dead}
 *                                every <streamhost/> we send ("offer") or receive ("received");
 *                                a non-loopback one is removed before libpurple sees or sends it
 *   dial {host, port, allowed}   every TCP/UDP connect() or sendto() to an internet address;
 *                                a non-loopback one is refused (EACCES) before it leaves
 *   bind {host, port, rewritten} every bind() to an internet address; the wildcard is rewritten
 *                                to 127.0.0.1 (libpurple binds its streamhost on 0.0.0.0)
 *   offer {name, size, from}     a file offer arrived (recv)
 *   progress {name, bytes, size} each time another 256 KiB moved
 *   file {name, path, size, sha256, from}      received completely (recv)
 *   sent {name, size, sha256, to}              sent completely (send)
 *   declined {name, from}        we declined (recv --decline)
 *   cancelled {name, bytes, size, by: local|remote, path}
 *   error {message}              then exit 1
 * Exit status: 0 when every transfer ended as asked (file/sent, or cancelled by us with
 * --cancel-after, or declined with --decline); 2 when one was cancelled otherwise; 1 on error.
 *
 * --dead-streamhosts rewrites the port of every kept <streamhost/>, received or offered, to a
 * port on 127.0.0.1 where nothing listens (bound once at start, read, closed), so that every
 * SOCKS5 attempt fails for real on loopback; the event then says "rewritten":"127.0.0.1" (the
 * host put on the wire) and "dead":"127.0.0.1:PORT" (else both null).
 * --no-direct drops our own streamhost from the offers (only proxies are offered).
 * --methods restricts what our side offers (send) or accepts (recv) by rewriting the SI
 * stream-method options in the stanza (libpurple always offers S5B and IBB, and always picks
 * S5B when it is offered). Logs (libpurple's debug, every stanza) go to stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpurple/purple.h>

#define UI_ID "xft-purplepeer"
#define NS_BS "http://jabber.org/protocol/bytestreams"
#define NS_IBB "http://jabber.org/protocol/ibb"
#define NS_SI "http://jabber.org/protocol/si"

/* ---- options ----------------------------------------------------------------------- */
static char *opt_jid, *opt_password, *opt_host = "127.0.0.1", *opt_proxy, *opt_methods;
static int opt_port = 5222, opt_timeout = 120, opt_debug;
static char *opt_mode, *opt_dir, *opt_to;
static int opt_count = 1, opt_decline, opt_no_direct, opt_dead_streamhosts;
static int dead_port; /* --dead-streamhosts: a port on 127.0.0.1 nobody listens on */
static long long opt_cancel_after = -1;
static GPtrArray *opt_files;

static GMainLoop *loop;
static PurpleAccount *account;
static int exit_code;
static int finished; /* transfers ended */
static guint next_file;
static gboolean quitting;

/* ---- JSON output --------------------------------------------------------------------- */
static void json_str(GString *s, const char *v)
{
    const unsigned char *p = (const unsigned char *)(v ? v : "");
    g_string_append_c(s, '"');
    for (; *p; p++) {
        switch (*p) {
        case '"': g_string_append(s, "\\\""); break;
        case '\\': g_string_append(s, "\\\\"); break;
        case '\n': g_string_append(s, "\\n"); break;
        case '\r': g_string_append(s, "\\r"); break;
        case '\t': g_string_append(s, "\\t"); break;
        default:
            if (*p < 0x20)
                g_string_append_printf(s, "\\u%04x", *p);
            else
                g_string_append_c(s, (char)*p);
        }
    }
    g_string_append_c(s, '"');
}

/* emit("event", "key", 's', "value", "key", 'i', (long long)n, "key", 'b', int, NULL) */
static void emit(const char *event, ...)
{
    GString *s = g_string_new("{\"event\":");
    va_list ap;
    const char *key;
    json_str(s, event);
    va_start(ap, event);
    while ((key = va_arg(ap, const char *)) != NULL) {
        int type = va_arg(ap, int);
        g_string_append_c(s, ',');
        json_str(s, key);
        g_string_append_c(s, ':');
        if (type == 's') {
            const char *v = va_arg(ap, const char *);
            if (v)
                json_str(s, v);
            else
                g_string_append(s, "null");
        } else if (type == 'i') {
            g_string_append_printf(s, "%lld", va_arg(ap, long long));
        } else {
            g_string_append(s, va_arg(ap, int) ? "true" : "false");
        }
    }
    va_end(ap);
    g_string_append(s, "}\n");
    /* write(2): also safe from the socket wrappers below, whatever thread calls them */
    {
        const char *p = s->str;
        size_t left = s->len;
        while (left > 0) {
            ssize_t n = write(1, p, left);
            if (n <= 0)
                break;
            p += n;
            left -= (size_t)n;
        }
    }
    g_string_free(s, TRUE);
}

static void fail(const char *message)
{
    emit("error", "message", 's', message, NULL);
    exit_code = 1;
    if (loop)
        g_main_loop_quit(loop);
}

/* ---- loopback confinement: connect/sendto/bind wrappers --------------------------------
 * Defined in the executable, they take precedence over libc's for libpurple too. */
static gboolean addr_text(const struct sockaddr *sa, char *host, size_t len, int *port, int *loopback,
                          int *wildcard)
{
    if (sa == NULL)
        return FALSE;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, len);
        *port = ntohs(in->sin_port);
        *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        *wildcard = in->sin_addr.s_addr == htonl(INADDR_ANY);
        return TRUE;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, len);
        *port = ntohs(in6->sin6_port);
        *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
                    (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
        *wildcard = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
        return TRUE;
    }
    return FALSE;
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0, lo = 0, any = 0;
    if (!real)
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    if (addr_text(sa, host, sizeof host, &port, &lo, &any)) {
        emit("dial", "host", 's', host, "port", 'i', (long long)port, "allowed", 'b', lo, NULL);
        if (!lo) {
            errno = EACCES;
            return -1;
        }
    }
    return real(fd, sa, len);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len)
{
    static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0, lo = 0, any = 0;
    if (!real)
        real = (ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *, socklen_t))dlsym(
            RTLD_NEXT, "sendto");
    if (addr_text(sa, host, sizeof host, &port, &lo, &any)) {
        emit("dial", "host", 's', host, "port", 'i', (long long)port, "allowed", 'b', lo, NULL);
        if (!lo) {
            errno = EACCES;
            return -1;
        }
    }
    return real(fd, buf, n, flags, sa, len);
}

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0, lo = 0, any = 0;
    if (!real)
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (addr_text(sa, host, sizeof host, &port, &lo, &any)) {
        if (sa->sa_family == AF_INET && (any || !lo)) {
            struct sockaddr_in in = *(const struct sockaddr_in *)sa;
            in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            emit("bind", "host", 's', "127.0.0.1", "port", 'i', (long long)port, "rewritten", 'b', 1,
                 NULL);
            return real(fd, (const struct sockaddr *)&in, sizeof in);
        }
        if (sa->sa_family == AF_INET6 && (any || !lo)) {
            struct sockaddr_in6 in6 = *(const struct sockaddr_in6 *)sa;
            in6.sin6_addr = in6addr_loopback;
            emit("bind", "host", 's', "::1", "port", 'i', (long long)port, "rewritten", 'b', 1, NULL);
            return real(fd, (const struct sockaddr *)&in6, sizeof in6);
        }
        emit("bind", "host", 's', host, "port", 'i', (long long)port, "rewritten", 'b', 0, NULL);
    }
    return real(fd, sa, len);
}

static gboolean is_loopback_literal(const char *host)
{
    struct in_addr a;
    struct in6_addr a6;
    if (host == NULL)
        return FALSE;
    if (inet_pton(AF_INET, host, &a) == 1)
        return (ntohl(a.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return FALSE;
}

/* ---- glib event loop UI ops (as nullclient.c) ---------------------------------------- */
#define PURPLE_GLIB_READ_COND (G_IO_IN | G_IO_HUP | G_IO_ERR)
#define PURPLE_GLIB_WRITE_COND (G_IO_OUT | G_IO_HUP | G_IO_ERR | G_IO_NVAL)

typedef struct {
    PurpleInputFunction function;
    guint result;
    gpointer data;
} IoClosure;

static void io_destroy(gpointer data) { g_free(data); }

static gboolean io_invoke(GIOChannel *source, GIOCondition condition, gpointer data)
{
    IoClosure *closure = data;
    PurpleInputCondition cond = 0;
    if (condition & PURPLE_GLIB_READ_COND)
        cond |= PURPLE_INPUT_READ;
    if (condition & PURPLE_GLIB_WRITE_COND)
        cond |= PURPLE_INPUT_WRITE;
    closure->function(closure->data, g_io_channel_unix_get_fd(source), cond);
    return TRUE;
}

static guint glib_input_add(gint fd, PurpleInputCondition condition, PurpleInputFunction function,
                            gpointer data)
{
    IoClosure *closure = g_new0(IoClosure, 1);
    GIOChannel *channel;
    GIOCondition cond = 0;
    closure->function = function;
    closure->data = data;
    if (condition & PURPLE_INPUT_READ)
        cond |= PURPLE_GLIB_READ_COND;
    if (condition & PURPLE_INPUT_WRITE)
        cond |= PURPLE_GLIB_WRITE_COND;
    channel = g_io_channel_unix_new(fd);
    closure->result = g_io_add_watch_full(channel, G_PRIORITY_DEFAULT, cond, io_invoke, closure, io_destroy);
    g_io_channel_unref(channel);
    return closure->result;
}

static PurpleEventLoopUiOps glib_eventloops = {
    g_timeout_add, g_source_remove, glib_input_add, g_source_remove, NULL, g_timeout_add_seconds,
    NULL, NULL, NULL,
};

/* ---- debug to stderr ------------------------------------------------------------------- */
static void debug_print(PurpleDebugLevel level, const char *category, const char *arg_s)
{
    (void)level;
    fprintf(stderr, "%s: %s", category ? category : "-", arg_s);
}
static gboolean debug_enabled(PurpleDebugLevel level, const char *category)
{
    (void)level;
    (void)category;
    return TRUE;
}
static void print_to_stderr(const gchar *s) { fputs(s, stderr); }
static PurpleDebugUiOps debug_ops = {debug_print, debug_enabled, NULL, NULL, NULL, NULL};

/* ---- DNS: answered here; only loopback names resolve, SRV/TXT never ------------------- */
typedef struct {
    PurpleDnsQueryData *q;
    PurpleDnsQueryResolvedCallback ok;
    PurpleDnsQueryFailedCallback failed;
    guint source;
} DnsJob;
static GHashTable *dns_jobs;

static gboolean dns_answer(gpointer data)
{
    DnsJob *job = data;
    const char *host = purple_dnsquery_get_host(job->q);
    job->source = 0;
    g_hash_table_remove(dns_jobs, job->q);
    if (g_strcmp0(host, "localhost") == 0 || is_loopback_literal(host)) {
        struct sockaddr_in *sin = g_new0(struct sockaddr_in, 1);
        GSList *hosts = NULL;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(purple_dnsquery_get_port(job->q));
        if (is_loopback_literal(host) && strchr(host, ':') == NULL)
            inet_pton(AF_INET, host, &sin->sin_addr);
        else
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        hosts = g_slist_append(hosts, GINT_TO_POINTER(sizeof(struct sockaddr_in)));
        hosts = g_slist_append(hosts, sin);
        job->ok(job->q, hosts);
    } else {
        emit("dial", "host", 's', host, "port", 'i', (long long)purple_dnsquery_get_port(job->q), "allowed",
             'b', 0, NULL);
        job->failed(job->q, "purplepeer resolves loopback names only");
    }
    g_free(job);
    return FALSE;
}

static gboolean dns_resolve(PurpleDnsQueryData *q, PurpleDnsQueryResolvedCallback ok,
                            PurpleDnsQueryFailedCallback failed)
{
    DnsJob *job = g_new0(DnsJob, 1);
    job->q = q;
    job->ok = ok;
    job->failed = failed;
    job->source = g_idle_add(dns_answer, job);
    g_hash_table_insert(dns_jobs, q, job);
    return TRUE;
}

static void dns_destroy(PurpleDnsQueryData *q)
{
    DnsJob *job = g_hash_table_lookup(dns_jobs, q);
    if (job) {
        g_hash_table_remove(dns_jobs, q);
        if (job->source)
            g_source_remove(job->source);
        g_free(job);
    }
}
static PurpleDnsQueryUiOps dns_ops = {dns_resolve, dns_destroy, NULL, NULL, NULL, NULL};

typedef struct {
    PurpleSrvTxtQueryData *q;
    PurpleSrvTxtQueryResolvedCallback ok;
    guint source;
} SrvJob;
static GHashTable *srv_jobs;

static gboolean srv_answer(gpointer data)
{
    SrvJob *job = data;
    job->source = 0;
    g_hash_table_remove(srv_jobs, job->q);
    fprintf(stderr, "purplepeer: SRV/TXT %s answered empty\n", purple_srv_txt_query_get_query(job->q));
    job->ok(job->q, NULL);
    g_free(job);
    return FALSE;
}
static gboolean srv_resolve(PurpleSrvTxtQueryData *q, PurpleSrvTxtQueryResolvedCallback ok,
                            PurpleSrvTxtQueryFailedCallback failed)
{
    SrvJob *job = g_new0(SrvJob, 1);
    (void)failed;
    job->q = q;
    job->ok = ok;
    job->source = g_idle_add(srv_answer, job);
    g_hash_table_insert(srv_jobs, q, job);
    return TRUE;
}
static void srv_destroy(PurpleSrvTxtQueryData *q)
{
    SrvJob *job = g_hash_table_lookup(srv_jobs, q);
    if (job) {
        g_hash_table_remove(srv_jobs, q);
        if (job->source)
            g_source_remove(job->source);
        g_free(job);
    }
}
static PurpleSrvTxtQueryUiOps srv_ops = {srv_resolve, srv_destroy, NULL, NULL, NULL, NULL};

/* ---- core UI ops: network prefs before purple_network_init() ---------------------------- */
static void ui_prefs_init(void)
{
    /* purple_core_init() calls this after purple_prefs_init() and before
     * purple_network_init(), whose purple_prefs_add_*() keep values that exist. */
    purple_prefs_add_none("/purple/network");
    purple_prefs_add_bool("/purple/network/auto_ip", FALSE);
    purple_prefs_add_string("/purple/network/public_ip", "127.0.0.1");
    purple_prefs_add_bool("/purple/network/map_ports", FALSE);
    purple_prefs_add_string("/purple/network/stun_server", "127.0.0.1");
    purple_prefs_add_string("/purple/network/turn_server", "");
    purple_prefs_add_bool("/purple/network/ports_range_use", FALSE);
    purple_prefs_add_none("/purple/proxy");
    purple_prefs_add_string("/purple/proxy/type", "none");
    purple_prefs_add_none("/purple/logging");
    purple_prefs_add_bool("/purple/logging/log_ims", FALSE);
    purple_prefs_add_bool("/purple/logging/log_chats", FALSE);
    purple_prefs_add_bool("/purple/logging/log_system", FALSE);
}

static void ui_init(void)
{
    purple_dnsquery_set_ui_ops(&dns_ops);
    purple_srv_txt_query_set_ui_ops(&srv_ops);
}

static PurpleCoreUiOps core_ops = {ui_prefs_init, NULL, ui_init, NULL, NULL, NULL, NULL, NULL};

/* ---- stanza hooks: streamhosts and stream methods ------------------------------------- */
static gboolean methods_allow(const char *ns)
{
    if (opt_methods == NULL)
        return TRUE;
    if (g_strcmp0(ns, NS_BS) == 0)
        return strstr(opt_methods, "s5b") != NULL;
    if (g_strcmp0(ns, NS_IBB) == 0)
        return strstr(opt_methods, "ibb") != NULL;
    return TRUE;
}

static void filter_streamhosts(xmlnode *packet, const char *dir)
{
    xmlnode *query, *sh, *next;
    if (g_strcmp0(packet->name, "iq") != 0)
        return;
    query = xmlnode_get_child_with_namespace(packet, "query", NS_BS);
    if (query == NULL)
        return;
    for (sh = xmlnode_get_child(query, "streamhost"); sh; sh = next) {
        const char *host = xmlnode_get_attrib(sh, "host");
        const char *port = xmlnode_get_attrib(sh, "port");
        gboolean keep = is_loopback_literal(host);
        /* --no-direct: offer only proxies, not our own listener */
        if (opt_no_direct && strcmp(dir, "offer") == 0 && g_strcmp0(xmlnode_get_attrib(sh, "jid"), opt_jid) == 0)
            keep = FALSE;
        int port_n = port ? atoi(port) : 0;
        gboolean dead = keep && opt_dead_streamhosts;
        char dead_addr[32];
        g_snprintf(dead_addr, sizeof dead_addr, "127.0.0.1:%d", dead_port);
        next = xmlnode_get_next_twin(sh);
        emit("streamhost", "dir", 's', dir, "jid", 's', xmlnode_get_attrib(sh, "jid"), "host", 's', host,
             "port", 'i', (long long)port_n, "kept", 'b', keep, "rewritten", 's', dead ? "127.0.0.1" : NULL,
             "dead", 's', dead ? dead_addr : NULL, NULL);
        if (!keep) {
            xmlnode_free(sh); /* unlinks itself from query */
        } else if (dead) {
            char buf[16];
            g_snprintf(buf, sizeof buf, "%d", dead_port);
            fprintf(stderr, "purplepeer: streamhost %s %s:%d -> dead %s\n", dir, host, port_n, dead_addr);
            xmlnode_set_attrib(sh, "host", "127.0.0.1");
            xmlnode_set_attrib(sh, "port", buf);
        }
    }
}

/* Remove stream-method <option/>s (offer) we are told not to use. */
static void filter_methods(xmlnode *packet)
{
    xmlnode *si, *feature, *x, *field, *opt, *next;
    if (opt_methods == NULL || g_strcmp0(packet->name, "iq") != 0)
        return;
    si = xmlnode_get_child_with_namespace(packet, "si", NS_SI);
    if (si == NULL)
        return;
    feature = xmlnode_get_child(si, "feature");
    x = feature ? xmlnode_get_child(feature, "x") : NULL;
    if (x == NULL)
        return;
    for (field = xmlnode_get_child(x, "field"); field; field = xmlnode_get_next_twin(field)) {
        if (g_strcmp0(xmlnode_get_attrib(field, "var"), "stream-method") != 0)
            continue;
        for (opt = xmlnode_get_child(field, "option"); opt; opt = next) {
            xmlnode *value = xmlnode_get_child(opt, "value");
            char *ns = value ? xmlnode_get_data(value) : NULL;
            next = xmlnode_get_next_twin(opt);
            if (!methods_allow(ns)) {
                fprintf(stderr, "purplepeer: removing stream-method option %s\n", ns);
                xmlnode_free(opt);
            }
            g_free(ns);
        }
    }
}

static void sending_xmlnode(PurpleConnection *gc, xmlnode **packet, gpointer data)
{
    (void)gc;
    (void)data;
    if (packet == NULL || *packet == NULL)
        return;
    filter_streamhosts(*packet, "offer");
    if (g_strcmp0(opt_mode, "send") == 0)
        filter_methods(*packet);
}

static void receiving_xmlnode(PurpleConnection *gc, xmlnode **packet, gpointer data)
{
    (void)gc;
    (void)data;
    if (packet == NULL || *packet == NULL)
        return;
    filter_streamhosts(*packet, "received");
    if (g_strcmp0(opt_mode, "recv") == 0)
        filter_methods(*packet);
}

/* ---- transfers ------------------------------------------------------------------------- */
static char *file_sha256(const char *path)
{
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    FILE *f = g_fopen(path, "rb");
    char buf[65536];
    size_t n;
    char *out;
    if (f == NULL) {
        g_checksum_free(ck);
        return NULL;
    }
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        g_checksum_update(ck, (const guchar *)buf, n);
    fclose(f);
    out = g_strdup(g_checksum_get_string(ck));
    g_checksum_free(ck);
    return out;
}

static void send_next(void);

static gboolean quit_loop(gpointer data)
{
    (void)data;
    g_main_loop_quit(loop);
    return FALSE;
}

static void transfer_ended(void)
{
    finished++;
    if (g_strcmp0(opt_mode, "recv") == 0) {
        if (finished >= opt_count && !quitting) {
            quitting = TRUE;
            /* let libpurple write what it still has to say (an IBB close result, …) */
            g_timeout_add(300, quit_loop, NULL);
        }
    } else {
        send_next();
    }
}

static gboolean cancel_now(gpointer data)
{
    PurpleXfer *xfer = data;
    PurpleXferStatusType st = purple_xfer_get_status(xfer);
    if (st != PURPLE_XFER_STATUS_DONE && st != PURPLE_XFER_STATUS_CANCEL_LOCAL &&
        st != PURPLE_XFER_STATUS_CANCEL_REMOTE)
        purple_xfer_cancel_local(xfer);
    purple_xfer_unref(xfer);
    return FALSE;
}

static GHashTable *progress_marks; /* xfer -> last 256 KiB mark reported */

static void xfer_progress(PurpleXfer *xfer, double percent)
{
    long long bytes = (long long)purple_xfer_get_bytes_sent(xfer);
    long long mark = bytes / 262144;
    (void)percent;
    if (mark > GPOINTER_TO_INT(g_hash_table_lookup(progress_marks, xfer))) {
        g_hash_table_insert(progress_marks, xfer, GINT_TO_POINTER((int)mark));
        emit("progress", "name", 's', purple_xfer_get_filename(xfer), "bytes", 'i', bytes, "size", 'i',
             (long long)purple_xfer_get_size(xfer), NULL);
    }
    if (opt_cancel_after >= 0 && xfer->ui_data == NULL &&
        (long long)purple_xfer_get_bytes_sent(xfer) >= opt_cancel_after) {
        xfer->ui_data = GINT_TO_POINTER(1); /* once */
        purple_xfer_ref(xfer);
        g_idle_add(cancel_now, xfer);
    }
}

static PurpleXferUiOps xfer_ops = {.update_progress = xfer_progress};

static gboolean deny_now(gpointer data)
{
    PurpleXfer *xfer = data;
    purple_xfer_request_denied(xfer);
    transfer_ended();
    return FALSE;
}

static void recv_request(PurpleXfer *xfer, gpointer data)
{
    const char *name = purple_xfer_get_filename(xfer);
    char *base, *path;
    (void)data;
    if (purple_xfer_get_account(xfer) != account)
        return;
    emit("offer", "name", 's', name, "size", 'i', (long long)purple_xfer_get_size(xfer), "from", 's',
         purple_xfer_get_remote_user(xfer), NULL);
    if (opt_decline) {
        emit("declined", "name", 's', name, "from", 's', purple_xfer_get_remote_user(xfer), NULL);
        /* after purple_xfer_request() returns (it still uses xfer) */
        purple_xfer_ref(xfer);
        g_idle_add(deny_now, xfer);
        return;
    }
    base = g_path_get_basename(name && *name ? name : "unnamed");
    if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0) {
        g_free(base);
        base = g_strdup("unnamed");
    }
    path = g_build_filename(opt_dir, base, NULL);
    purple_xfer_request_accepted(xfer, path);
    g_free(path);
    g_free(base);
}

typedef struct {
    gboolean recv;
    char *name, *path, *who;
    long long size, bytes;
} Done;

/* libpurple emits file-*-complete before it closes the file: hash it from the main loop. */
static gboolean report_complete(gpointer data)
{
    Done *d = data;
    char *sum = file_sha256(d->path);
    if (d->recv) {
        struct stat st;
        long long size = g_stat(d->path, &st) == 0 ? (long long)st.st_size : -1;
        emit("file", "name", 's', d->name, "path", 's', d->path, "size", 'i', size, "offered_size", 'i',
             d->size, "sha256", 's', sum, "from", 's', d->who, NULL);
    } else {
        emit("sent", "name", 's', d->name, "path", 's', d->path, "size", 'i', d->size, "bytes", 'i', d->bytes,
             "sha256", 's', sum, "to", 's', d->who, NULL);
    }
    g_free(sum);
    g_free(d->name);
    g_free(d->path);
    g_free(d->who);
    g_free(d);
    transfer_ended();
    return FALSE;
}

static void xfer_complete(PurpleXfer *xfer, gpointer data)
{
    Done *d = g_new0(Done, 1);
    (void)data;
    d->recv = purple_xfer_get_type(xfer) == PURPLE_XFER_RECEIVE;
    d->name = g_strdup(purple_xfer_get_filename(xfer));
    d->path = g_strdup(purple_xfer_get_local_filename(xfer));
    d->who = g_strdup(purple_xfer_get_remote_user(xfer));
    d->size = (long long)purple_xfer_get_size(xfer);
    d->bytes = (long long)purple_xfer_get_bytes_sent(xfer);
    g_timeout_add(50, report_complete, d);
}

static void xfer_cancelled(PurpleXfer *xfer, gpointer data)
{
    gboolean local = purple_xfer_get_status(xfer) == PURPLE_XFER_STATUS_CANCEL_LOCAL;
    gboolean asked = local && opt_cancel_after >= 0 && xfer->ui_data != NULL;
    (void)data;
    emit("cancelled", "name", 's', purple_xfer_get_filename(xfer), "path", 's',
         purple_xfer_get_local_filename(xfer), "bytes", 'i', (long long)purple_xfer_get_bytes_sent(xfer),
         "size", 'i', (long long)purple_xfer_get_size(xfer), "by", 's', local ? "local" : "remote", NULL);
    if (!asked && exit_code == 0)
        exit_code = 2;
    transfer_ended();
}

static void send_next(void)
{
    PurpleConnection *gc = purple_account_get_connection(account);
    if (next_file >= opt_files->len) {
        if (!quitting) {
            quitting = TRUE;
            g_timeout_add(300, quit_loop, NULL);
        }
        return;
    }
    /* The first file could go through serv_send_file(), but it asks the prpl's
     * can_receive_file() first, which says no (silently) once libpurple knows a JabberBuddy
     * for the target without presence, i.e. from the second file on: call the prpl's
     * send_file() as serv_send_file() does after that check. */
    {
        PurplePluginProtocolInfo *info = PURPLE_PLUGIN_PROTOCOL_INFO(purple_connection_get_prpl(gc));
        if (info == NULL || info->send_file == NULL) {
            fail("prpl-jabber has no send_file");
            return;
        }
        info->send_file(gc, opt_to, g_ptr_array_index(opt_files, next_file));
    }
    next_file++;
}

static gboolean start_send(gpointer data)
{
    (void)data;
    send_next();
    return FALSE;
}

/* libpurple reports a send it could not start (no file-transfer feature, …) as a notify. */
static void *notify_message(PurpleNotifyMsgType type, const char *title, const char *primary,
                            const char *secondary)
{
    char *msg = g_strdup_printf("%s: %s%s%s", title ? title : "notify", primary ? primary : "",
                                secondary ? ": " : "", secondary ? secondary : "");
    fprintf(stderr, "purplepeer: notify %s\n", msg);
    emit("notify", "message", 's', msg, "error", 'b', type == PURPLE_NOTIFY_MSG_ERROR, NULL);
    /* A send that never started ("Unable to send file to …") ends the run; errors about a
     * transfer that did start are also reported by the file-*-cancel signals. */
    if (type == PURPLE_NOTIFY_MSG_ERROR && primary && strstr(primary, "Unable to send file"))
        fail(msg);
    g_free(msg);
    return NULL;
}
static PurpleNotifyUiOps notify_ops = {notify_message, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                       NULL, NULL, NULL, NULL};

static void signed_on(PurpleConnection *gc, gpointer data)
{
    const char *jid = purple_connection_get_display_name(gc);
    (void)data;
    if (jid == NULL || strchr(jid, '/') == NULL)
        jid = purple_account_get_username(account);
    emit("ready", "jid", 's', jid, NULL);
    if (g_strcmp0(opt_mode, "send") == 0)
        g_timeout_add(100, start_send, NULL);
}

static void connection_error(PurpleConnection *gc, PurpleConnectionError err, const gchar *desc,
                             gpointer data)
{
    (void)gc;
    (void)err;
    (void)data;
    fail(desc ? desc : "connection error");
}

static gboolean on_timeout(gpointer data)
{
    (void)data;
    fail("timeout: the whole run took longer than --timeout");
    return FALSE;
}

static gboolean on_term(gpointer data)
{
    (void)data;
    fprintf(stderr, "purplepeer: SIGTERM\n");
    quitting = TRUE;
    g_main_loop_quit(loop);
    return FALSE;
}

static void usage(void)
{
    fprintf(stderr, "usage: purplepeer --jid U@H/R --password PW [--host H] [--port N] [--timeout S]\n"
                    "       [--proxy JID] [--methods s5b,ibb] [--dead-streamhosts] [--debug]\n"
                    "       recv --dir D [--count N] [--decline] [--cancel-after BYTES]\n"
                    "     | send --to FULLJID [--cancel-after BYTES] FILE...\n");
    exit(1);
}

static void parse_args(int argc, char **argv)
{
    int i;
    opt_files = g_ptr_array_new();
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), (char *)NULL))
        if (!strcmp(a, "--jid"))
            opt_jid = NEXT();
        else if (!strcmp(a, "--password"))
            opt_password = NEXT();
        else if (!strcmp(a, "--host"))
            opt_host = NEXT();
        else if (!strcmp(a, "--port"))
            opt_port = atoi(NEXT());
        else if (!strcmp(a, "--timeout"))
            opt_timeout = atoi(NEXT());
        else if (!strcmp(a, "--proxy"))
            opt_proxy = NEXT();
        else if (!strcmp(a, "--methods"))
            opt_methods = NEXT();
        else if (!strcmp(a, "--no-direct"))
            opt_no_direct = 1;
        else if (!strcmp(a, "--dead-streamhosts"))
            opt_dead_streamhosts = 1;
        else if (!strcmp(a, "--debug"))
            opt_debug = 1;
        else if (!strcmp(a, "--dir"))
            opt_dir = NEXT();
        else if (!strcmp(a, "--count"))
            opt_count = atoi(NEXT());
        else if (!strcmp(a, "--decline"))
            opt_decline = 1;
        else if (!strcmp(a, "--cancel-after"))
            opt_cancel_after = atoll(NEXT());
        else if (!strcmp(a, "--to"))
            opt_to = NEXT();
        else if (!strcmp(a, "recv") || !strcmp(a, "send"))
            opt_mode = (char *)a;
        else if (a[0] == '-' && a[1] == '-')
            usage();
        else if (opt_mode && !strcmp(opt_mode, "send"))
            g_ptr_array_add(opt_files, (gpointer)a);
        else
            usage();
#undef NEXT
    }
    if (!opt_jid || !opt_password || !opt_mode)
        usage();
    if (!strcmp(opt_mode, "recv") && !opt_dir)
        usage();
    if (!strcmp(opt_mode, "send") && (!opt_to || opt_files->len == 0))
        usage();
}

int main(int argc, char **argv)
{
    char *userdir;
    PurpleSavedStatus *status;
    GList *iter;
    void *jabber = NULL;

    signal(SIGPIPE, SIG_IGN);
    parse_args(argc, argv);
    if (opt_dead_streamhosts) {
        /* a port on 127.0.0.1 where nothing listens: bound, read, closed */
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
            fprintf(stderr, "purplepeer: cannot pick a dead port\n");
            return 1;
        }
        dead_port = ntohs(sa.sin_port);
        close(fd);
        fprintf(stderr, "purplepeer: dead streamhost port 127.0.0.1:%d\n", dead_port);
    }
    /* no session bus: libpurple's D-Bus support stays off */
    g_setenv("DBUS_SESSION_BUS_ADDRESS", "disabled:", TRUE);
    dns_jobs = g_hash_table_new(g_direct_hash, g_direct_equal);
    srv_jobs = g_hash_table_new(g_direct_hash, g_direct_equal);
    progress_marks = g_hash_table_new(g_direct_hash, g_direct_equal);
    loop = g_main_loop_new(NULL, FALSE);
    if (opt_dir)
        g_mkdir_with_parents(opt_dir, 0755);

    userdir = g_dir_make_tmp("xft-purplepeer-XXXXXX", NULL);
    purple_util_set_user_dir(userdir);
    /* stdout carries only our JSON lines: libpurple's own debug printing (g_print) is off,
     * its debug UI ops write to stderr */
    g_set_print_handler(print_to_stderr);
    purple_debug_set_ui_ops(&debug_ops);
    purple_debug_set_enabled(FALSE);
    purple_debug_set_verbose(opt_debug);
    purple_core_set_ui_ops(&core_ops);
    purple_eventloop_set_ui_ops(&glib_eventloops);
    purple_xfers_set_ui_ops(&xfer_ops);
    purple_notify_set_ui_ops(&notify_ops);
    if (!purple_core_init(UI_ID)) {
        fail("libpurple initialization failed");
        return 1;
    }
    purple_set_blist(purple_blist_new());
    purple_blist_load();
    purple_pounces_load();

    for (iter = purple_plugins_get_protocols(); iter; iter = iter->next) {
        PurplePlugin *p = iter->data;
        if (!strcmp(purple_plugin_get_id(p), "prpl-jabber"))
            jabber = p;
    }
    if (jabber == NULL) {
        fail("libpurple has no prpl-jabber");
        return 1;
    }
    purple_signal_connect(jabber, "jabber-sending-xmlnode", loop, PURPLE_CALLBACK(sending_xmlnode), NULL);
    purple_signal_connect(jabber, "jabber-receiving-xmlnode", loop, PURPLE_CALLBACK(receiving_xmlnode), NULL);
    purple_signal_connect(purple_connections_get_handle(), "signed-on", loop, PURPLE_CALLBACK(signed_on), NULL);
    purple_signal_connect(purple_connections_get_handle(), "connection-error", loop,
                          PURPLE_CALLBACK(connection_error), NULL);
    purple_signal_connect(purple_xfers_get_handle(), "file-recv-request", loop, PURPLE_CALLBACK(recv_request),
                          NULL);
    purple_signal_connect(purple_xfers_get_handle(), "file-recv-complete", loop, PURPLE_CALLBACK(xfer_complete),
                          NULL);
    purple_signal_connect(purple_xfers_get_handle(), "file-send-complete", loop, PURPLE_CALLBACK(xfer_complete),
                          NULL);
    purple_signal_connect(purple_xfers_get_handle(), "file-recv-cancel", loop, PURPLE_CALLBACK(xfer_cancelled),
                          NULL);
    purple_signal_connect(purple_xfers_get_handle(), "file-send-cancel", loop, PURPLE_CALLBACK(xfer_cancelled),
                          NULL);

    account = purple_account_new(opt_jid, "prpl-jabber");
    purple_account_set_password(account, opt_password);
    purple_account_set_string(account, "connect_server", opt_host);
    purple_account_set_int(account, "port", opt_port);
    purple_account_set_string(account, "connection_security", "opportunistic_tls");
    purple_account_set_bool(account, "auth_plain_in_clear", TRUE);
    purple_account_set_string(account, "ft_proxies", opt_proxy ? opt_proxy : "");
    purple_account_set_string(account, "bosh_url", "");
    purple_accounts_add(account);
    purple_account_set_enabled(account, UI_ID, TRUE);

    status = purple_savedstatus_new(NULL, PURPLE_STATUS_AVAILABLE);
    purple_savedstatus_activate(status);

    g_timeout_add_seconds(opt_timeout, on_timeout, NULL);
    g_unix_signal_add(SIGTERM, on_term, NULL);
    g_unix_signal_add(SIGINT, on_term, NULL);
    g_main_loop_run(loop);

    purple_account_set_enabled(account, UI_ID, FALSE);
    purple_core_quit();
    {
        /* the temporary user dir (accounts.xml, prefs.xml, …) */
        char *cmd = g_strdup_printf("rm -rf '%s'", userdir);
        if (system(cmd) != 0)
            fprintf(stderr, "purplepeer: could not remove %s\n", userdir);
        g_free(cmd);
    }
    fflush(stdout);
    return exit_code;
}
