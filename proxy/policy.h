/* policy: builds the rule set in force from the policy store (rules, lists) and publishes
 * it through the live ACL. Called by the main thread when the store's policy version moves
 * and by the admin server's hook right after a change; serialised by its own mutex. A set
 * that does not compile is never published: the old one stays in force. */
#ifndef PX_POLICY_H
#define PX_POLICY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "acl/acl.h"
#include "storage/store.h"

struct policy_loader {
    pthread_mutex_t lock;
    struct store *st;         /* owned: this loader's own connection */
    struct acl_live *live;    /* borrowed */
    char *allowed_clients;    /* owned, NULL = private networks */
    int64_t version;          /* store version of the set in force */
};

/* Opens the loader's store connection. Returns 0 or -1 with err filled. */
int policy_loader_init(struct policy_loader *pl, const char *db_path, const char *allowed_clients,
                       char *err, size_t errlen);
void policy_loader_destroy(struct policy_loader *pl);
/* Compiles the store's current policy. Returns the set (owned by the caller) or NULL with err
 * naming the rule and reason. Sets *version to the version it read. */
struct acl_set *policy_compile(struct policy_loader *pl, int64_t *version, char *err,
                               size_t errlen);
/* Recompiles and publishes if the store's version moved (or always, with force). Returns 1
 * if a new set was published, 0 if nothing changed, -1 with err if it did not compile. */
int policy_reload(struct policy_loader *pl, bool force, char *err, size_t errlen);
/* Makes the stored rules equal to a policy file's (one transaction, audited), unless they
 * already are. Returns 0 or -1 with err "file:line: reason". */
int policy_import_file(struct policy_loader *pl, const char *path, char *err, size_t errlen);

#endif
