/* portfwd: port forwards. A forward (acl/acl_forward.h) is a listening address whose every
 * connection goes, as opaque bytes, to one target: the client checked against the forward's
 * own client list and the policy (as a request "FORWARD tcp://TARGET"), the target resolved
 * and refused like any proxy target (origin.h), the bytes spliced both ways (tunnel.c), and
 * one access-log row per connection. A forward may speak TLS on one side: tls-listen takes it
 * from its clients (conn.c's handshake before portfwd_begin), tls-target speaks it to its
 * target, verified like an inspected site's origin (origin.c), a failure closing the client's
 * connection with the reason in its row; either way the bytes go through the session.
 *
 * Forwards change while proxyd runs. The main thread (or the admin server, through a hook)
 * keeps the table of forwards in force: it binds one SO_REUSEPORT socket per worker for a new
 * forward before anything is stored, so an address that cannot be bound is an error to the
 * caller and changes nothing, and it bumps the table's generation. Each worker, woken, takes
 * its sockets of new forwards and closes those of removed ones; connections already relayed
 * are not touched. Forwards of the config file are in force from the start (bound before
 * --user gives up root) and change with a restart; stored ones come and go live. */
#ifndef PX_PORTFWD_H
#define PX_PORTFWD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl/acl_forward.h"
#include "proxy/listener.h"
#include "tls/tls.h"

#define PORTFWD_MAX 64

struct conn;
struct worker;
struct store;

/* One forward in force. */
struct portfwd_entry {
    int id; /* the store's id; config forwards count down from -1 */
    struct acl_forward def;
    int *fds; /* owned, one per worker: a listening socket until that worker takes it (-1) */
};

/* The forwards in force, shared by the main thread (writer) and the workers (readers). */
struct portfwd_table {
    pthread_mutex_t lock;
    struct portfwd_entry entries[PORTFWD_MAX]; /* under lock */
    size_t n;                                  /* under lock */
    atomic_uint_fast64_t gen;                  /* moves with every change */
    /* The listen ports of the forwards in force and of one being added (0: a free slot),
     * published before its sockets listen: a worker's target guard reads them without the
     * lock, so no request reaches a new forward's port in the time before that worker has
     * taken the forward (its own_ports lag by up to a tick, longer while the lock is held). */
    atomic_uint_least16_t claimed_ports[PORTFWD_MAX];
    unsigned nworkers;
    struct worker *workers;      /* borrowed: woken after each change; NULL until they run */
    struct store *st;            /* owned: the stored forwards' own connection; NULL before */
    int failed_ids[PORTFWD_MAX]; /* stored forwards that could not be bound: said once */
    size_t nfailed;
    /* The certificate tls-listen forwards present: proxyd's (borrowed), or loaded with
     * tls_opts by the first such forward when proxyd had none (owned: tls_owned). */
    struct tls_cred *tls;
    bool tls_owned;
    struct tls_cred_options tls_opts; /* its strings borrowed from the settings */
};

/* A worker's side of one forward: its listener and its copy of the forward. */
struct portfwd_slot {
    int id; /* 0: free */
    struct listener l;
    struct acl_forward def;
};

/* ---- main thread / admin server ---- */

void portfwd_table_init(struct portfwd_table *t, unsigned nworkers);
/* Opens the config file's forwards (lines as acl_forward_parse_line reads them). Before the
 * workers run. Returns 0, or -1 with err naming the forward. */
int portfwd_table_add_config(struct portfwd_table *t, char *const *lines, size_t n, char *err,
                             size_t errlen);
/* The certificate for tls-listen forwards: cred (borrowed; NULL when proxyd loaded none),
 * and how to load one when the first such forward comes (opts copied, its strings borrowed,
 * names dropped). Before the workers run: the config file's tls-listen forwards, bound
 * before this, take cred when the workers first sync, so proxyd loads one for them. */
void portfwd_table_tls(struct portfwd_table *t, struct tls_cred *cred,
                       const struct tls_cred_options *opts);
/* Whether a forward in force (the config file's, at start) is tls-listen. */
bool portfwd_table_wants_tls(struct portfwd_table *t);
/* Opens the store's own connection for db_path. Returns 0 or -1 with err. */
int portfwd_table_open_store(struct portfwd_table *t, const char *db_path, char *err,
                             size_t errlen);
/* Stores def and opens its listener on every worker, or neither. Returns 0 (id set), 1 when
 * refused (err says why: the address cannot be bound, a forward holds it already, too many),
 * -1 with err. Any thread. */
int portfwd_add(struct portfwd_table *t, const struct acl_forward *def, const char *actor, int *id,
                char *err, size_t errlen);
/* Deletes stored forward id; its listeners close. 0, 1 (no such forward), -1 with err. */
int portfwd_delete(struct portfwd_table *t, int id, const char *actor, char *err, size_t errlen);
/* Brings the table in line with the store (changes made by other means): the main thread's
 * poll. A stored forward that cannot be bound is logged once. */
void portfwd_poll(struct portfwd_table *t);
/* Hands the workers over (started), so changes wake them. */
void portfwd_table_attach(struct portfwd_table *t, struct worker *workers);
/* Closes what no worker took and the store. Teardown, no worker running. */
void portfwd_table_destroy(struct portfwd_table *t);
/* proxyd's own ports for a target check made outside the workers (a list download): the
 * nfixed fixed ones and every forward's listen port, each once, into out (room for
 * CONFIG_MAX_LISTENERS + 1 + PORTFWD_MAX). Returns how many. Takes the table's lock; any
 * thread but a worker's. */
size_t portfwd_own_ports(struct portfwd_table *t, const uint16_t *fixed, size_t nfixed,
                         uint16_t *out);

/* ---- worker thread ---- */

/* Takes the listeners of new forwards and closes those of removed ones, when the table's
 * generation moved (or always, with force). Without force it never waits for the table's
 * lock: held elsewhere, the sync is left to the next call (the worker's tick). Worker
 * thread, or (force) before it runs. */
void portfwd_worker_sync(struct worker *w, bool force);
/* A connection accepted on a forward's listener: its record begun, the policy asked, and on
 * its way to the target (state CONN_RESOLVE), or closed. */
void portfwd_begin(struct conn *c, const struct acl_forward *f);
/* The id of the forward whose listener l is (its worker's slot holds it now), 0 when l is not
 * a forward's. */
int portfwd_id(const struct listener *l);
/* portfwd_begin for a tls-listen connection once its client's handshake is done, by the
 * forward that accepted it: one removed meanwhile (its slot may hold another forward now)
 * closes the connection, its row saying so. */
void portfwd_begin_after_tls(struct conn *c);
/* For a connection of a tls-target forward: the name its target's certificate is verified
 * for (origin.c speaks TLS to the target, then the bytes flow through that session), as
 * portfwd_begin recorded it in c->tunnel_host; NULL for any other connection. */
const char *portfwd_tls_name(const struct conn *c);

#endif
