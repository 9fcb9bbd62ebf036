/* portfwd: the table of forwards in force, each worker's listeners for them, and the start of
 * a forwarded connection (see portfwd.h). */
#include "proxy/portfwd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/status.h"
#include "proxy/conn.h"
#include "proxy/log.h"
#include "proxy/request.h"
#include "proxy/worker.h"
#include "storage/store.h"

/* ---- the table (main thread, admin server) ---- */

void portfwd_table_init(struct portfwd_table *t, unsigned nworkers)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->nworkers = nworkers;
}

static struct portfwd_entry *find(struct portfwd_table *t, int id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->entries[i].id == id)
            return &t->entries[i];
    return NULL;
}

static void close_fds(struct portfwd_table *t, int *fds)
{
    for (unsigned i = 0; fds && i < t->nworkers; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

static void claim_port(struct portfwd_table *t, uint16_t port)
{
    for (size_t i = 0; i < PORTFWD_MAX; i++)
        if (atomic_load_explicit(&t->claimed_ports[i], memory_order_relaxed) == 0) {
            atomic_store_explicit(&t->claimed_ports[i], port, memory_order_release);
            return;
        }
}

static void release_port(struct portfwd_table *t, uint16_t port)
{
    for (size_t i = 0; i < PORTFWD_MAX; i++)
        if (atomic_load_explicit(&t->claimed_ports[i], memory_order_relaxed) == port) {
            atomic_store_explicit(&t->claimed_ports[i], 0, memory_order_release);
            return;
        }
}

/* A forward's sockets closed and its port no longer claimed. */
static void unbind_all(struct portfwd_table *t, const struct acl_forward *def, int *fds)
{
    close_fds(t, fds);
    release_port(t, addr_port(&def->listen_addr));
}

/* The certificate of the first tls-listen forward when proxyd had none loaded: --tls-cert and
 * --tls-key, or the self-made pair of the data folder (made and kept when missing). */
static int load_tls(struct portfwd_table *t, char *err, size_t errlen)
{
    bool made = false;
    char why[512];
    t->tls = tls_cred_load(&t->tls_opts, &made, why, sizeof(why));
    if (!t->tls) {
        snprintf(err, errlen, "tls-listen: %s", why);
        return -1;
    }
    t->tls_owned = true;
    if (made)
        log_info("made a TLS certificate for this proxy: %s (clients of tls-listen forwards "
                 "trust it)",
                 tls_cred_cert_path(t->tls));
    return 0;
}

/* Binds def's listener once per worker. Returns the sockets (owned), or NULL with err: the
 * table is full, a forward in force holds the address, or it cannot be bound. */
static int *bind_all(struct portfwd_table *t, const struct acl_forward *def, char *err,
                     size_t errlen)
{
    if (t->n >= PORTFWD_MAX) {
        snprintf(err, errlen, "forward %s: at most %d forwards", def->listen, PORTFWD_MAX);
        return NULL;
    }
    for (size_t i = 0; i < t->n; i++)
        if (addr_same(&t->entries[i].def.listen_addr, &def->listen_addr, true)) {
            snprintf(err, errlen, "a forward already listens on %s", def->listen);
            return NULL;
        }
    /* (A config file's forward comes before proxyd has said how: it loads them for it.) */
    if (def->tls == ACL_FORWARD_TLS_LISTEN && !t->tls && t->tls_opts.data_dir &&
        load_tls(t, err, errlen) < 0)
        return NULL;
    /* Not shared by accident with another process (SO_REUSEPORT would let it). */
    if (listener_probe(def->listen, err, errlen) < 0)
        return NULL;
    int *fds = malloc(t->nworkers * sizeof(*fds));
    if (!fds) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < t->nworkers; i++)
        fds[i] = -1;
    claim_port(t, addr_port(&def->listen_addr));
    for (unsigned i = 0; i < t->nworkers; i++) {
        struct listener l;
        if (listener_open(&l, LISTENER_PORTFWD, def->listen, err, errlen) < 0) {
            unbind_all(t, def, fds);
            return NULL;
        }
        fds[i] = l.fd;
    }
    return fds;
}

static void insert(struct portfwd_table *t, int id, const struct acl_forward *def, int *fds)
{
    struct portfwd_entry *e = &t->entries[t->n++];
    e->id = id;
    e->def = *def;
    e->fds = fds;
}

static void remove_entry(struct portfwd_table *t, struct portfwd_entry *e)
{
    unbind_all(t, &e->def, e->fds);
    *e = t->entries[--t->n];
}

/* After a change, under the lock: the workers look at the table again. */
static void changed(struct portfwd_table *t)
{
    atomic_fetch_add_explicit(&t->gen, 1, memory_order_release);
    for (unsigned i = 0; t->workers && i < t->nworkers; i++)
        worker_notify(&t->workers[i]);
}

int portfwd_table_add_config(struct portfwd_table *t, char *const *lines, size_t n, char *err,
                             size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        struct acl_forward def;
        char msg[300];
        if (acl_forward_parse_line(lines[i], &def, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "forward '%s': %s", lines[i], msg);
            return -1;
        }
        int *fds = bind_all(t, &def, err, errlen);
        if (!fds)
            return -1;
        insert(t, -(int)(i + 1), &def, fds);
    }
    atomic_fetch_add(&t->gen, 1);
    return 0;
}

int portfwd_table_open_store(struct portfwd_table *t, const char *db_path, char *err, size_t errlen)
{
    t->st = store_open(db_path, err, errlen);
    return t->st ? 0 : -1;
}

void portfwd_table_attach(struct portfwd_table *t, struct worker *workers)
{
    pthread_mutex_lock(&t->lock);
    t->workers = workers;
    pthread_mutex_unlock(&t->lock);
}

int portfwd_add(struct portfwd_table *t, const struct acl_forward *def, const char *actor, int *id,
                char *err, size_t errlen)
{
    pthread_mutex_lock(&t->lock);
    int *fds = bind_all(t, def, err, errlen);
    int rc = 1;
    if (fds) {
        rc = store_forward_add(t->st, def->listen, def->target_text, def->clients_text,
                               acl_forward_tls_str(def->tls), def->tls_name.text, actor, id, err,
                               errlen);
        if (rc == 0) {
            insert(t, *id, def, fds);
            changed(t);
        } else {
            unbind_all(t, def, fds);
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (rc == 0)
        log_info("forward %d: %s -> %s opened (by %s)", *id, def->listen, def->target_text, actor);
    return rc;
}

int portfwd_delete(struct portfwd_table *t, int id, const char *actor, char *err, size_t errlen)
{
    pthread_mutex_lock(&t->lock);
    int rc = id > 0 ? store_forward_delete(t->st, id, actor, err, errlen) : 1;
    if (id <= 0)
        snprintf(err, errlen, "no forward %d", id);
    if (rc == 0) {
        struct portfwd_entry *e = find(t, id);
        if (e)
            remove_entry(t, e);
        changed(t);
    }
    pthread_mutex_unlock(&t->lock);
    if (rc == 0)
        log_info("forward %d closed (by %s)", id, actor);
    return rc;
}

static bool failed_before(struct portfwd_table *t, int id)
{
    for (size_t i = 0; i < t->nfailed; i++)
        if (t->failed_ids[i] == id)
            return true;
    if (t->nfailed < PORTFWD_MAX)
        t->failed_ids[t->nfailed++] = id;
    return false;
}

void portfwd_poll(struct portfwd_table *t)
{
    static struct log_ratelimit list_rl = LOG_RATELIMIT_INIT(60000, 1);
    struct store_forward *rows;
    size_t n;
    char err[300];
    bool moved = false;

    pthread_mutex_lock(&t->lock);
    if (!t->st || store_forwards_list(t->st, &rows, &n, err, sizeof(err)) < 0) {
        pthread_mutex_unlock(&t->lock);
        if (t->st)
            log_warnx_limited(&list_rl, "stored forwards not read: %s", err);
        return;
    }
    for (size_t i = 0; i < t->n;) {
        bool kept = t->entries[i].id < 0;
        for (size_t j = 0; !kept && j < n; j++)
            kept = rows[j].id == t->entries[i].id;
        if (kept) {
            i++;
            continue;
        }
        log_info("forward %d: %s closed (removed from the store)", t->entries[i].id,
                 t->entries[i].def.listen);
        remove_entry(t, &t->entries[i]);
        moved = true;
    }
    for (size_t j = 0; j < n; j++) {
        if (find(t, rows[j].id))
            continue;
        struct acl_forward def;
        int *fds = NULL;
        if (acl_forward_parse(rows[j].listen, rows[j].target, rows[j].clients, &def, err,
                              sizeof(err)) == 0 &&
            acl_forward_set_tls(&def, rows[j].tls, rows[j].tls_name, err, sizeof(err)) == 0)
            fds = bind_all(t, &def, err, sizeof(err));
        if (!fds) {
            if (!failed_before(t, rows[j].id))
                log_warnx("stored forward %d (%s -> %s) is not in force: %s", rows[j].id,
                          rows[j].listen, rows[j].target, err);
            continue;
        }
        insert(t, rows[j].id, &def, fds);
        log_info("forward %d: %s -> %s opened", rows[j].id, def.listen, def.target_text);
        moved = true;
    }
    if (moved)
        changed(t);
    pthread_mutex_unlock(&t->lock);
    free(rows);
}

bool portfwd_table_wants_tls(struct portfwd_table *t)
{
    bool wants = false;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n && !wants; i++)
        wants = t->entries[i].def.tls == ACL_FORWARD_TLS_LISTEN;
    pthread_mutex_unlock(&t->lock);
    return wants;
}

void portfwd_table_tls(struct portfwd_table *t, struct tls_cred *cred,
                       const struct tls_cred_options *opts)
{
    pthread_mutex_lock(&t->lock);
    t->tls = cred;
    t->tls_opts = *opts;
    t->tls_opts.names = NULL; /* the caller's array is gone by the time they would be read */
    t->tls_opts.nnames = 0;
    pthread_mutex_unlock(&t->lock);
}

void portfwd_table_destroy(struct portfwd_table *t)
{
    while (t->n > 0)
        remove_entry(t, &t->entries[t->n - 1]);
    if (t->tls_owned)
        tls_cred_free(t->tls);
    t->tls = NULL;
    if (t->st)
        store_close(t->st);
    t->st = NULL;
    pthread_mutex_destroy(&t->lock);
}

/* Appends port to ports[0..*n) unless it is there already. */
static void port_add_once(uint16_t *ports, size_t *n, uint16_t port)
{
    for (size_t j = 0; j < *n; j++)
        if (ports[j] == port)
            return;
    ports[(*n)++] = port;
}

size_t portfwd_own_ports(struct portfwd_table *t, const uint16_t *fixed, size_t nfixed,
                         uint16_t *out)
{
    size_t n = 0;

    for (size_t i = 0; i < nfixed; i++)
        out[n++] = fixed[i];
    for (size_t i = 0; t && i < PORTFWD_MAX; i++) {
        uint16_t port = atomic_load_explicit(&t->claimed_ports[i], memory_order_acquire);
        if (port != 0)
            port_add_once(out, &n, port);
    }
    return n;
}

/* ---- a worker's listeners ---- */

/* w->own_ports: proxyd's fixed ones and the ports of w's forwards, each once. */
static void own_ports_update(struct worker *w)
{
    const struct proxy_shared *s = w->shared;
    w->nown_ports = 0;
    for (size_t i = 0; i < s->nown_ports; i++)
        w->own_ports[w->nown_ports++] = s->own_ports[i];
    for (size_t i = 0; w->fwd && i < PORTFWD_MAX; i++)
        if (w->fwd[i].id != 0)
            port_add_once(w->own_ports, &w->nown_ports, addr_port(&w->fwd[i].def.listen_addr));
}

void portfwd_worker_sync(struct worker *w, bool force)
{
    struct portfwd_table *t = w->shared->forwards;
    if (force)
        own_ports_update(w);
    if (!t || !w->fwd)
        return;
    uint64_t gen = atomic_load_explicit(&t->gen, memory_order_acquire);
    if (!force && gen == w->fwd_gen)
        return;
    bool draining = atomic_load(&w->draining);
    /* The admin server and the main thread hold the lock across store calls, which may wait
     * out a busy database (seconds): a running worker does not wait with them, it looks
     * again at its next tick or wake. */
    if (force)
        pthread_mutex_lock(&t->lock);
    else if (pthread_mutex_trylock(&t->lock) != 0)
        return;
    w->fwd_gen = atomic_load(&t->gen);
    for (size_t i = 0; i < PORTFWD_MAX; i++) {
        struct portfwd_slot *s = &w->fwd[i];
        if (s->id != 0 && !find(t, s->id)) {
            listener_unwatch(&s->l);
            s->id = 0;
        }
    }
    /* Draining, a worker takes no new listener: the table closes what it keeps. */
    for (size_t i = 0; i < t->n && !draining; i++) {
        struct portfwd_entry *e = &t->entries[i];
        struct portfwd_slot *free_slot = NULL;
        bool have = false;
        for (size_t j = 0; j < PORTFWD_MAX && !have; j++) {
            have = w->fwd[j].id == e->id;
            if (!free_slot && w->fwd[j].id == 0)
                free_slot = &w->fwd[j];
        }
        if (have || !free_slot || e->fds[w->index] < 0)
            continue;
        free_slot->id = e->id;
        free_slot->def = e->def;
        struct listener *l = &free_slot->l;
        memset(l, 0, sizeof(*l));
        l->fd = e->fds[w->index];
        e->fds[w->index] = -1;
        l->kind = LISTENER_PORTFWD;
        l->address = free_slot->def.listen;
        l->addr = free_slot->def.listen_addr;
        l->fwd = &free_slot->def;
        l->tls = free_slot->def.tls == ACL_FORWARD_TLS_LISTEN ? t->tls : NULL;
        if (listener_watch(w, l) < 0) {
            log_warn("worker %u: forward %s: epoll", w->index, l->address);
            close(l->fd);
            free_slot->id = 0;
        }
    }
    pthread_mutex_unlock(&t->lock);
    own_ports_update(w);
}

/* ---- a forwarded connection ---- */

static void set_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* The connection's one request: counted, and its access-log row begun as a forward's. */
static void forward_record_begin(struct conn *c)
{
    c->is_forward = true;
    c->requests++;
    STAT_ADD(c, requests_total, 1);
    request_record_begin(c);
    set_field(c->req->rec.method, sizeof(c->req->rec.method), "FORWARD");
    set_field(c->req->rec.scheme, sizeof(c->req->rec.scheme), "tcp");
}

void portfwd_begin(struct conn *c, const struct acl_forward *f)
{
    struct worker *w = c->w;
    forward_record_begin(c);
    set_field(c->req->rec.host, sizeof(c->req->rec.host), f->target.text);
    c->req->rec.port = f->target_port;
    c->host = f->target;
    /* The name a tls-target forward verifies, kept with the connection: the listener's slot
     * (and f with it) may be taken by another forward while the handshake is in flight. */
    if (f->tls == ACL_FORWARD_TLS_TARGET)
        c->tunnel_host = f->tls_name.len ? f->tls_name : f->target;
    else
        memset(&c->tunnel_host, 0, sizeof(c->tunnel_host));
    c->req->rec.decision = STORE_DENY;
    if (!acl_forward_client_allowed(f, (const struct sockaddr *)&c->client_addr)) {
        request_record_outcome(c, CLOSE_DENIED, "client not in the forward's client list");
        conn_close(c, CLOSE_NONE);
        return;
    }
    /* The policy decides as for a request to tcp://TARGET: client, domain, list, schedule
     * and `deny dest` rules all apply. */
    struct acl_request ar;
    if (!request_judge_raw(c, &ar)) {
        conn_close(c, CLOSE_NONE);
        return;
    }
    /* The pump resolves (origin_resolve), refuses targets like any request's, connects
     * and, connected, splices (tun_start). */
    conn_set_state(c, CONN_RESOLVE);
    conn_set_deadline(c, w->tun.connect_timeout_ms + w->shared->dns_timeout_ms);
}

int portfwd_id(const struct listener *l)
{
    if (l->kind != LISTENER_PORTFWD)
        return 0;
    return ((const struct portfwd_slot *)((const char *)l - offsetof(struct portfwd_slot, l)))->id;
}

void portfwd_begin_after_tls(struct conn *c)
{
    if (portfwd_id(c->listener) == c->fwd_id) {
        portfwd_begin(c, c->listener->fwd);
        return;
    }
    forward_record_begin(c);
    c->req->rec.decision = STORE_DENY;
    request_record_outcome(c, CLOSE_DENIED, "forward removed during the TLS handshake");
    conn_close(c, CLOSE_NONE);
}

const char *portfwd_tls_name(const struct conn *c)
{
    return c->listener->kind == LISTENER_PORTFWD && c->tunnel_host.len ? c->tunnel_host.text : NULL;
}
