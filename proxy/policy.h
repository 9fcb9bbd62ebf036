/* policy: builds the rule set in force from the policy store (rules, lists) and publishes
 * it through the live ACL. Called by the main thread when the store's policy version moves;
 * the admin server's changes come compiled through policy_apply; serialised by its own mutex. A set
 * that does not compile is never published: the old one stays in force. */
#ifndef PX_POLICY_H
#define PX_POLICY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "acl/acl.h"
#include "storage/store.h"

struct policy_loader {
    pthread_mutex_t lock;
    struct store *st;      /* owned: this loader's own connection */
    struct acl_live *live; /* borrowed */
    char *allowed_clients; /* owned, NULL = private networks */
    int64_t version;       /* store version of the set in force */
    /* policy_expire: the store version it last read the rules at, and when (seconds since
     * the epoch) the first expired rule it kept is due for deletion (INT64_MAX: none). */
    int64_t expire_version;
    int64_t expire_due;
    /* The same version and the wall time it was put in force (0: none yet), for readers
     * without the lock (/metrics, /readyz). */
    _Atomic int64_t in_force_version, in_force_ms;
};

/* The set compiled at version was put in force now (policy_start's first set; the loader's
 * own publications call it too). Any thread. */
void policy_mark_in_force(struct policy_loader *pl, int64_t version);

/* Opens the loader's store connection. Returns 0 or -1 with err filled. */
int policy_loader_init(struct policy_loader *pl, const char *db_path, const char *allowed_clients,
                       char *err, size_t errlen);
void policy_loader_destroy(struct policy_loader *pl);
/* Compiles the store's current policy. Returns the set (owned by the caller) or NULL with err
 * naming the rule and reason. Sets *version to the version it read. */
struct acl_set *policy_compile(struct policy_loader *pl, int64_t *version, char *err,
                               size_t errlen);
/* What policy_reload returns when nothing was published, besides 0 (nothing changed). */
enum policy_reload_failure {
    POLICY_NOT_COMPILED = -1, /* err names the rule and reason */
    POLICY_NOT_READ = -2,     /* the store failed: err says how */
    POLICY_DB_DOWN = -3,      /* the database is not reachable (store_unavailable) */
};
/* Recompiles and publishes if the store's version moved (or always, with force). Returns 1
 * if a new set was published, 0 if nothing changed, else a policy_reload_failure with err. */
int policy_reload(struct policy_loader *pl, bool force, char *err, size_t errlen);
/* Puts one change of the store in force, under the loader's lock so no reload comes between
 * compile, commit and publish. cand is the policy the change would leave (rules and lists;
 * the loader adds its allowed networks). It is compiled first: if that fails, returns PX_ERR
 * with err naming the rule and the reason, and commit is never called. Else commit(arg,
 * &version, ...) writes the change and returns PX_OK with the store's new policy version
 * (then the set is published as that version), PX_AGAIN or PX_ERR (the set is dropped).
 * Returns what commit returned. Any thread. */
int policy_apply(struct policy_loader *pl, const struct acl_config *cand,
                 int (*commit)(void *arg, int64_t *version, char *err, size_t errlen), void *arg,
                 char *err, size_t errlen);
/* The store's policy version moved from `from` to `to` through changes that leave the rule
 * set as it is (proxy users): when the set in force was compiled at `from`, it is the set of
 * `to` too, and the poll need not compile it again. from < 0: unknown, nothing changes. */
void policy_unchanged(struct policy_loader *pl, int64_t from, int64_t to);
/* Deletes the rules whose `expires` time is keep_s seconds or more before now (an expired
 * rule no longer matches; until then the admin pages show it as expired), each audited as a
 * rule.delete by "proxyd (expired)". The next policy_reload publishes the result. Reads the
 * rules only when the store's policy version moved or a kept rule fell due since the last
 * call, so calling it on every poll is cheap. Returns the rules deleted, or -1 with err. */
int policy_expire(struct policy_loader *pl, int64_t now, int64_t keep_s, char *err, size_t errlen);
/* Makes the stored rules equal to a policy file's (one transaction, audited), unless they
 * already are. Returns 0 or -1 with err "file:line: reason". */
int policy_import_file(struct policy_loader *pl, const char *path, char *err, size_t errlen);

#endif
