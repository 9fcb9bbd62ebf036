/* policy: store -> acl_config -> acl_set -> acl_live. */
#include "proxy/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

int policy_loader_init(struct policy_loader *pl, const char *db_path, const char *allowed_clients,
                       char *err, size_t errlen)
{
    memset(pl, 0, sizeof(*pl));
    pthread_mutex_init(&pl->lock, NULL);
    pl->st = store_open(db_path, err, errlen);
    if (!pl->st)
        return -1;
    pl->allowed_clients = allowed_clients ? strdup(allowed_clients) : NULL;
    pl->version = -1;
    pl->expire_version = -1;
    return 0;
}

void policy_loader_destroy(struct policy_loader *pl)
{
    if (pl->st)
        store_close(pl->st);
    free(pl->allowed_clients);
    pthread_mutex_destroy(&pl->lock);
    memset(pl, 0, sizeof(*pl));
}

struct acl_set *policy_compile(struct policy_loader *pl, int64_t *version, char *err, size_t errlen)
{
    struct store_policy snap;
    struct acl_rule_src *srcs = NULL;
    struct acl_list_src *lists = NULL;
    struct acl_set *set = NULL;

    /* One read transaction: the version named on the set is the version of its rules. */
    *version = -1;
    if (store_policy_read(pl->st, &snap, err, errlen) < 0)
        return NULL;
    *version = snap.version;
    srcs = calloc(snap.nrules ? snap.nrules : 1, sizeof(*srcs));
    lists = calloc(snap.nlists ? snap.nlists : 1, sizeof(*lists));
    if (!srcs || !lists) {
        snprintf(err, errlen, "out of memory compiling the policy");
        goto out;
    }
    for (size_t i = 0; i < snap.nrules; i++)
        srcs[i] =
            (struct acl_rule_src){snap.rules[i].id, snap.rules[i].enabled, snap.rules[i].text};
    for (size_t i = 0; i < snap.nlists; i++)
        lists[i] = (struct acl_list_src){
            snap.lists[i].name, (const char *const *)snap.lists[i].domains, snap.lists[i].count};
    struct acl_config cfg = {
        .rules = srcs,
        .nrules = snap.nrules,
        .lists = lists,
        .nlists = snap.nlists,
        .allowed_clients = pl->allowed_clients,
    };
    struct acl_error aerr = {0};
    set = acl_set_compile(&cfg, &aerr);
    if (!set)
        snprintf(err, errlen, "%s", aerr.msg);
    else
        acl_set_version_set(set, snap.version);
out:
    free(lists);
    free(srcs);
    store_policy_free(&snap);
    return set;
}

void policy_mark_in_force(struct policy_loader *pl, int64_t version)
{
    atomic_store(&pl->in_force_version, version);
    atomic_store(&pl->in_force_ms, clock_wall_ms());
}

int policy_reload(struct policy_loader *pl, bool force, char *err, size_t errlen)
{
    pthread_mutex_lock(&pl->lock);
    int rc = 0;
    if (force || store_policy_version(pl->st) != pl->version) {
        int64_t version;
        struct acl_set *set = policy_compile(pl, &version, err, errlen);
        if (set) {
            acl_live_publish(pl->live, set);
            pl->version = version;
            policy_mark_in_force(pl, version);
            rc = 1;
        } else {
            /* Remember the version so a broken policy is reported once, not every poll (-1
             * when it could not be read: the version read fails alike until the store
             * answers again). */
            pl->version = version;
            rc = version >= 0                ? POLICY_NOT_COMPILED
                 : store_unavailable(pl->st) ? POLICY_DB_DOWN
                                             : POLICY_NOT_READ;
        }
    }
    pthread_mutex_unlock(&pl->lock);
    return rc;
}

int policy_apply(struct policy_loader *pl, const struct acl_config *cand,
                 int (*commit)(void *arg, int64_t *version, char *err, size_t errlen), void *arg,
                 char *err, size_t errlen)
{
    struct acl_config cfg = *cand;
    struct acl_error aerr = {0};
    struct acl_set *set;
    int64_t version = -1;
    int rc;

    pthread_mutex_lock(&pl->lock);
    cfg.allowed_clients = pl->allowed_clients;
    set = acl_set_compile(&cfg, &aerr);
    if (!set) {
        pthread_mutex_unlock(&pl->lock);
        snprintf(err, errlen, "%s", aerr.msg);
        return PX_ERR;
    }
    rc = commit(arg, &version, err, errlen);
    if (rc == PX_OK) {
        acl_set_version_set(set, version);
        acl_live_publish(pl->live, set);
        pl->version = version;
        policy_mark_in_force(pl, version);
    } else {
        acl_set_free(set);
    }
    pthread_mutex_unlock(&pl->lock);
    return rc;
}

void policy_unchanged(struct policy_loader *pl, int64_t from, int64_t to)
{
    pthread_mutex_lock(&pl->lock);
    if (from >= 0 && pl->version == from) {
        pl->version = to;
        policy_mark_in_force(pl, to);
    }
    pthread_mutex_unlock(&pl->lock);
}

int policy_expire(struct policy_loader *pl, int64_t now, int64_t keep_s, char *err, size_t errlen)
{
    struct store_rule *rules = NULL;
    size_t n = 0;
    int deleted = 0;

    pthread_mutex_lock(&pl->lock);
    int64_t version = store_policy_version(pl->st);
    if (version == pl->expire_version && now < pl->expire_due) {
        pthread_mutex_unlock(&pl->lock);
        return 0;
    }
    if (store_rules_list(pl->st, &rules, &n, err, errlen) < 0) {
        /* A busy or full database: say so once a minute, not on every poll. */
        pl->expire_version = version;
        pl->expire_due = now + 60;
        pthread_mutex_unlock(&pl->lock);
        return -1;
    }
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t expires;
        if (!acl_rule_expiry(rules[i].text, &expires))
            continue;
        int64_t at = expires > INT64_MAX - keep_s ? INT64_MAX : expires + keep_s;
        if (at > now) {
            if (at < due)
                due = at;
            continue;
        }
        if (store_rule_delete(pl->st, rules[i].id, "proxyd (expired)", err, errlen) < 0) {
            deleted = -1;
            break;
        }
        deleted++;
    }
    store_rules_free(rules, n);
    pl->expire_version = deleted >= 0 ? store_policy_version(pl->st) : version;
    pl->expire_due = deleted >= 0 ? due : now + 60;
    pthread_mutex_unlock(&pl->lock);
    return deleted;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *text = malloc(cap);
    while (text) {
        n += fread(text + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *bigger = realloc(text, cap * 2);
        if (!bigger) {
            free(text);
            text = NULL;
            break;
        }
        text = bigger;
        cap *= 2;
    }
    fclose(f);
    if (!text)
        snprintf(err, errlen, "%s: out of memory", path);
    *len = n;
    return text;
}

int policy_import_file(struct policy_loader *pl, const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text)
        return -1;
    struct acl_policy pol = {0};
    struct acl_error aerr = {0};
    int rc = -1;
    if (acl_policy_parse(text, len, &pol, &aerr) < 0) {
        snprintf(err, errlen, "%s:%d: %s", path, aerr.line, aerr.msg);
        goto out;
    }
    struct store_rule *rules = NULL;
    size_t nrules = 0;
    if (store_rules_list(pl->st, &rules, &nrules, err, errlen) < 0)
        goto out;
    bool same = nrules == pol.nrules;
    for (size_t i = 0; same && i < nrules; i++)
        same = strcmp(rules[i].text, pol.rules[i].text) == 0;
    store_rules_free(rules, nrules);
    if (same) {
        rc = 0;
        goto out;
    }
    const char **texts = calloc(pol.nrules ? pol.nrules : 1, sizeof(*texts));
    if (!texts) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < pol.nrules; i++)
        texts[i] = pol.rules[i].text;
    char actor[300];
    snprintf(actor, sizeof(actor), "proxyd --policy %s", path);
    rc = store_rules_replace(pl->st, texts, pol.nrules, actor, err, errlen);
    free(texts);
out:
    acl_policy_free(&pol);
    free(text);
    return rc;
}
