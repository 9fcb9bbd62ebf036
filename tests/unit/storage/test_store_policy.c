/* test_store_policy: rule positions through add/move/delete/update, audit rows, the policy
 * version, whole-policy and 100k-entry list replacement, settings. */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/store.h"
#include "tests/unit/common.h"

TEST_STORE_FIXTURE

/* Rule texts in priority order joined by ",", checking positions are 1..n. */
static void order(char *out, size_t size)
{
    struct store_rule *rules;
    size_t n;

    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(rules[i].position, (int)i + 1);
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", rules[i].text);
    }
    store_rules_free(rules, n);
}

/* Only the lines that start with the prefix, in priority order; '%' and '_' are plain. */
START_TEST(test_rules_starting_with_a_prefix)
{
    static const char *const texts[] = {"name 10.1.2.3 pc1", "deny domain a.test",
                                        "name 10.1.2.4 pc2", "deny any clients @names",
                                        "name% 1",           "allow any"};
    int id;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        ck_assert_int_eq(store_rule_add(st, texts[i], "", 0, "alice", &id, err, sizeof(err)), 0);
    struct store_rule *rules;
    size_t n;
    ck_assert_int_eq(store_rules_starting(st, "name ", &rules, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(rules[0].text, "name 10.1.2.3 pc1");
    ck_assert_str_eq(rules[1].text, "name 10.1.2.4 pc2");
    store_rules_free(rules, n);
    ck_assert_int_eq(store_rules_starting(st, "name%", &rules, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(rules[0].text, "name% 1");
    store_rules_free(rules, n);
    ck_assert_int_eq(store_rules_starting(st, "group ", &rules, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    store_rules_free(rules, n);
}
END_TEST

enum op { ADD, MOVE, DELETE };

START_TEST(test_positions_follow_add_move_delete)
{
    /* Targets name rules by text; "" means 0 (end), "top" means -1. */
    static const struct {
        enum op op;
        const char *rule, *before;
        const char *want;
    } steps[] = {
        {ADD, "a", "", "a"},
        {ADD, "b", "", "a,b"},
        {ADD, "c", "", "a,b,c"},
        {ADD, "d", "top", "d,a,b,c"},
        {ADD, "e", "b", "d,a,e,b,c"},
        {MOVE, "d", "", "a,e,b,c,d"},
        {MOVE, "c", "a", "c,a,e,b,d"},
        {MOVE, "b", "e", "c,a,b,e,d"},
        {MOVE, "a", "top", "a,c,b,e,d"},
        {MOVE, "e", "e", "a,c,b,e,d"},
        {DELETE, "c", NULL, "a,b,e,d"},
        {DELETE, "d", NULL, "a,b,e"},
        {DELETE, "a", NULL, "b,e"},
    };
    struct {
        const char *text; /* a step's own string: steps[] is static */
        int id;
    } ids[8];
    size_t nids = 0;
    char got[256];

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int rule = 0, before = 0, id;

        for (size_t k = 0; k < nids; k++) {
            if (strcmp(ids[k].text, steps[i].rule) == 0)
                rule = ids[k].id;
            if (steps[i].before && strcmp(ids[k].text, steps[i].before) == 0)
                before = ids[k].id;
        }
        if (steps[i].before && strcmp(steps[i].before, "top") == 0)
            before = -1;
        switch (steps[i].op) {
        case ADD:
            ck_assert_int_eq(
                store_rule_add(st, steps[i].rule, "", before, "alice", &id, err, sizeof(err)), 0);
            ids[nids].text = steps[i].rule;
            ids[nids++].id = id;
            break;
        case MOVE:
            ck_assert_int_eq(store_rule_move(st, rule, before, "alice", err, sizeof(err)), 0);
            break;
        case DELETE:
            ck_assert_int_eq(store_rule_delete(st, rule, "alice", err, sizeof(err)), 0);
            break;
        }
        order(got, sizeof(got));
        ck_assert_msg(strcmp(got, steps[i].want) == 0, "step %zu: got %s want %s", i, got,
                      steps[i].want);
    }
}
END_TEST

START_TEST(test_each_change_bumps_version_and_writes_audit)
{
    static const struct {
        const char *action;
        const char *detail_part;
    } want[] = {
        /* newest first, as store_audit_list returns them */
        {"user.set", "bob"},
        {"list.delete", "ads"},
        {"list.replace", "ads: 2 entries"},
        {"rule.delete", "deny domain b.test"},
        {"rule.move", "deny domain b.test"},
        {"rule.disable", "deny domain a2.test"},
        {"rule.update", "rule 1: deny domain a.test -> deny domain a2.test"}, /* before -> after */
        {"rule.add", "deny domain b.test"},
        {"rule.add", "deny domain a.test"},
    };
    const char *domains[] = {"x.test", "y.test"};
    struct store_audit *rows;
    size_t n;
    int a, b;

    ck_assert_int_eq(store_policy_version(st), 0);
    ck_assert_int_eq(store_rule_add(st, "deny domain a.test", "", 0, "alice", &a, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_rule_add(st, "deny domain b.test", "", 0, "alice", &b, err, sizeof(err)),
                     0);
    ck_assert_int_eq(
        store_rule_update(st, a, "deny domain a2.test", NULL, -1, "alice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_update(st, a, NULL, NULL, 0, "alice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_move(st, b, -1, "alice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_delete(st, b, "alice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_list_replace(st, "ads", domains, 2, "alice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_list_delete(st, "ads", "alice", err, sizeof(err)), 0);
    ck_assert_int_eq(
        store_account_set(st, STORE_PROXY_USER, "bob", "pw", "alice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_policy_version(st), 9);
    /* Neither an admin account nor a setting is policy. */
    ck_assert_int_eq(store_account_set(st, STORE_ADMIN, "root", "pw", "alice", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_setting_set(st, "k", "v", "alice", err, sizeof(err)), 0);
    ck_assert_int_eq(store_policy_version(st), 9);

    ck_assert_int_eq(store_audit_list(st, 0, 100, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 11);
    ck_assert_str_eq(rows[0].action, "setting.set");
    ck_assert_str_eq(rows[0].detail, "k: (unset) -> v"); /* before -> after */
    ck_assert_str_eq(rows[1].action, "admin.set");
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_str_eq(rows[i + 2].action, want[i].action);
        ck_assert_msg(strstr(rows[i + 2].detail, want[i].detail_part) != NULL, "%zu: %s", i,
                      rows[i + 2].detail);
        ck_assert_str_eq(rows[i + 2].actor, "alice");
        ck_assert_int_gt(rows[i + 2].time_ms, 0);
    }
    free(rows);
    /* Limit and before_ms page the trail. */
    ck_assert_int_eq(store_audit_list(st, 0, 2, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    free(rows);
    ck_assert_int_eq(store_audit_list(st, 1, 100, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    free(rows);
}
END_TEST

START_TEST(test_update_changes_only_given_fields)
{
    struct store_rule r;
    int id;

    ck_assert_int_eq(store_rule_add(st, "deny domain a.test", "why", 0, "t", &id, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_rule_update(st, id, NULL, "new why", -1, "t", err, sizeof(err)), 0);
    /* The audit says what the comment was and became. */
    struct store_audit *rows;
    size_t n;
    ck_assert_int_eq(store_audit_list(st, 0, 1, &rows, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(rows[0].action, "rule.update");
    ck_assert_str_eq(rows[0].detail, "rule 1: deny domain a.test (comment 'why' -> 'new why')");
    free(rows);
    ck_assert_int_eq(store_rule_get(st, id, &r, err, sizeof(err)), 0);
    ck_assert_str_eq(r.text, "deny domain a.test");
    ck_assert_str_eq(r.comment, "new why");
    ck_assert(r.enabled);
    store_rules_free(NULL, 0);
    free(r.text);
    free(r.comment);
    ck_assert_int_eq(store_rule_update(st, id, NULL, NULL, 0, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_get(st, id, &r, err, sizeof(err)), 0);
    ck_assert(!r.enabled);
    ck_assert_str_eq(r.comment, "new why");
    free(r.text);
    free(r.comment);
}
END_TEST

START_TEST(test_missing_rule_is_an_error_and_changes_nothing)
{
    struct store_rule r;
    int id;

    ck_assert_int_eq(store_rule_add(st, "deny domain a.test", "", 0, "t", &id, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_policy_version(st), 1);
    ck_assert_int_eq(store_rule_update(st, 999, "x", NULL, -1, "t", err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "999") != NULL, "%s", err);
    ck_assert_int_eq(store_rule_delete(st, 999, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_rule_move(st, 999, 0, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_rule_move(st, id, 999, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_rule_add(st, "x", "", 999, "t", &id, err, sizeof(err)), -1);
    ck_assert_int_eq(store_rule_get(st, 999, &r, err, sizeof(err)), 1);
    ck_assert_int_eq(store_policy_version(st), 1);
}
END_TEST

/* What a 100,000-rule import does; how long it takes is bench/store_bench's figure (4). */
START_TEST(test_rules_replace_100k_in_one_transaction)
{
    const size_t n = 100000;
    char **texts = malloc(n * sizeof(*texts));
    struct store_rule *rules;
    size_t got;
    int id;

    ck_assert_int_eq(store_rule_add(st, "deny domain old.test", "", 0, "t", &id, err, sizeof(err)),
                     0);
    for (size_t i = 0; i < n; i++) {
        texts[i] = malloc(40);
        snprintf(texts[i], 40, "deny domain d%zu.test", i);
    }
    ck_assert_int_eq(store_rules_replace(st, (const char *const *)texts, n, "t", err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_rules_list(st, &rules, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got, n);
    ck_assert_str_eq(rules[0].text, "deny domain d0.test");
    ck_assert_str_eq(rules[n - 1].text, "deny domain d99999.test");
    ck_assert_int_eq(rules[n - 1].position, (int)n);
    store_rules_free(rules, got);
    ck_assert_int_eq(store_policy_version(st), 2);
    /* An empty text fails the whole import and leaves the rules as they were. */
    free(texts[5]);
    texts[5] = strdup("");
    ck_assert_int_eq(store_rules_replace(st, (const char *const *)texts, n, "t", err, sizeof(err)),
                     -1);
    ck_assert_int_eq(store_rules_list(st, &rules, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got, n);
    store_rules_free(rules, got);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
}
END_TEST

/* What a 100,000-entry list import does; how long it takes is bench/store_bench's (4). */
START_TEST(test_list_replace_100k_entries_in_one_transaction)
{
    const size_t n = 100000;
    char **d = malloc((n + 1) * sizeof(*d));
    struct store_list_info *lists;
    char **entries;
    size_t got;

    for (size_t i = 0; i < n; i++) {
        d[i] = malloc(40);
        /* Not in sorted order, as a hosts file would be. */
        snprintf(d[i], 40, "host%zu.ads.test", (i * 7919) % n);
    }
    d[n] = strdup("host5.ads.test"); /* a duplicate is stored once */
    ck_assert_int_eq(
        store_list_replace(st, "ads", (const char *const *)d, n + 1, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_lists(st, &lists, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got, 1);
    ck_assert_str_eq(lists[0].name, "ads");
    ck_assert_int_eq(lists[0].entries, (int64_t)n);
    ck_assert_int_gt(lists[0].updated_ms, 0);
    free(lists);

    /* Replacing leaves exactly the new entries. */
    ck_assert_int_eq(
        store_list_replace(st, "ads", (const char *const *)d, 3, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_list_entries(st, "ads", &entries, &got, err, sizeof(err)), 0);
    ck_assert_uint_eq(got, 3);
    for (size_t i = 0; i < got; i++)
        free(entries[i]);
    free(entries);
    ck_assert_int_eq(store_list_delete(st, "ads", "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_list_entries(st, "ads", &entries, &got, err, sizeof(err)), -1);
    ck_assert_int_eq(store_list_delete(st, "ads", "t", err, sizeof(err)), -1);
    for (size_t i = 0; i <= n; i++)
        free(d[i]);
    free(d);
}
END_TEST

START_TEST(test_bad_list_names_are_refused)
{
    static const char *const names[] = {
        "", "0123456789012345678901234567890123456789012345678901234567890123"};
    const char *d[] = {"a.test"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_int_eq(store_list_replace(st, names[i], d, 1, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_policy_version(st), 0);
}
END_TEST

START_TEST(test_settings_round_trip)
{
    static const struct {
        const char *key, *value;
    } cases[] = {{"retention_days", "30"}, {"retention_days", "7"}, {"theme", ""}};
    char *v;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(store_setting_set(st, cases[i].key, cases[i].value, "t", err, sizeof(err)),
                         0);
        ck_assert_int_eq(store_setting_read(st, cases[i].key, &v, err, sizeof(err)), 0);
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v, cases[i].value);
        free(v);
    }
    ck_assert_int_eq(store_setting_read(st, "unset", &v, err, sizeof(err)), 0);
    ck_assert_ptr_null(v);
}
END_TEST

/* Audit rows there are now. */
static size_t audit_count(void)
{
    struct store_audit *rows;
    size_t n;

    ck_assert_int_eq(store_audit_list(st, 0, 1000, &rows, &n, err, sizeof(err)), 0);
    free(rows);
    return n;
}

START_TEST(test_policy_read_is_one_moment_with_the_next_id)
{
    const char *domains[] = {"b.test", "a.test"};
    struct store_policy p;
    int a, b, c;

    ck_assert_int_eq(store_policy_read(st, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(p.version, 0);
    ck_assert_int_eq(p.next_rule_id, 1);
    ck_assert_uint_eq(p.nrules, 0);
    ck_assert_uint_eq(p.nlists, 0);
    store_policy_free(&p);

    ck_assert_int_eq(store_rule_add(st, "deny domain a.test", "", 0, "t", &a, err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_add(st, "deny list ads", "", -1, "t", &b, err, sizeof(err)), 0);
    ck_assert_int_eq(store_list_replace(st, "ads", domains, 2, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_update(st, a, NULL, NULL, 0, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_policy_read(st, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(p.version, 4);
    ck_assert_uint_eq(p.nrules, 2);
    ck_assert_int_eq(p.rules[0].id, b);
    ck_assert_int_eq(p.rules[1].id, a);
    ck_assert(!p.rules[1].enabled);
    ck_assert_uint_eq(p.nlists, 1);
    ck_assert_str_eq(p.lists[0].name, "ads");
    ck_assert_uint_eq(p.lists[0].count, 2);
    ck_assert_str_eq(p.lists[0].domains[0], "a.test");
    /* A deleted rule's id is never handed out again, so the next id is still past it. */
    ck_assert_int_eq(store_rule_delete(st, b, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_add(st, "deny domain c.test", "", 0, "t", &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c, p.next_rule_id);
    store_policy_free(&p);
}
END_TEST

START_TEST(test_grouped_changes_commit_together_or_not_at_all)
{
    int64_t version = -1;
    size_t audits;
    int a, b, c;

    /* Committed: three changes, three audit rows, one version. */
    ck_assert_int_eq(store_change_begin(st, 0, err, sizeof(err)), PX_OK);
    ck_assert_int_eq(store_rule_add(st, "deny domain a.test", "", 0, "t", &a, err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_add(st, "deny domain b.test", "", 0, "t", &b, err, sizeof(err)), 0);
    /* A change that fails inside the group undoes only itself. */
    ck_assert_int_eq(store_rule_delete(st, 999, "t", err, sizeof(err)), -1);
    ck_assert_int_eq(store_rule_move(st, b, -1, "t", err, sizeof(err)), 0);
    ck_assert_int_eq(store_change_commit(st, &version, err, sizeof(err)), PX_OK);
    ck_assert_int_eq(version, 1);
    ck_assert_int_eq(store_policy_version(st), 1);
    audits = audit_count();
    ck_assert_uint_eq(audits, 3);

    /* Rolled back: no rule, no audit row, no bump; the write lock is free again. */
    ck_assert_int_eq(store_change_begin(st, -1, err, sizeof(err)), PX_OK);
    ck_assert_int_eq(store_rule_add(st, "deny domain c.test", "", 0, "t", &c, err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_delete(st, a, "t", err, sizeof(err)), 0);
    store_change_rollback(st);
    ck_assert_int_eq(store_policy_version(st), 1);
    ck_assert_uint_eq(audit_count(), audits);
    char got[256];
    order(got, sizeof(got));
    ck_assert_str_eq(got, "deny domain b.test,deny domain a.test");
    ck_assert_int_eq(store_rule_add(st, "deny domain d.test", "", 0, "t", &c, err, sizeof(err)), 0);
    ck_assert_int_eq(store_policy_version(st), 2);
}
END_TEST

START_TEST(test_versions_record_who_when_why_and_the_rules)
{
    struct store_version *vs, info;
    struct store_rule *rules;
    size_t n;
    int a, b;
    const char *const ads[] = {"ads.test"};

    /* The migration recorded the empty policy as version 0. */
    ck_assert_int_eq(store_versions_list(st, 0, 0, &vs, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(vs[0].version, 0);
    free(vs);

    ck_assert_int_eq(
        store_rule_add(st, "deny domain a.test", "why", 0, "alice", &a, err, sizeof(err)), 0);
    ck_assert_int_eq(store_change_begin(st, -1, err, sizeof(err)), PX_OK);
    store_change_message(st, "block b and disable a");
    ck_assert_int_eq(store_rule_add(st, "deny domain b.test", "", -1, "bob", &b, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_rule_update(st, a, NULL, NULL, 0, "bob", err, sizeof(err)), 0);
    ck_assert_int_eq(store_change_commit(st, NULL, err, sizeof(err)), PX_OK);
    /* A list change is a version too; its rules are the version before's. */
    ck_assert_int_eq(store_list_replace(st, "ads", ads, 1, "carol", err, sizeof(err)), 0);

    ck_assert_int_eq(store_versions_list(st, 0, 0, &vs, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(vs[0].version, 3);
    ck_assert_str_eq(vs[0].actor, "carol");
    ck_assert_str_eq(vs[0].message, "list.replace ads: 1 entries");
    ck_assert_int_eq(vs[0].rules, 2);
    ck_assert_int_eq(vs[1].version, 2);
    ck_assert_str_eq(vs[1].actor, "bob");
    ck_assert_str_eq(vs[1].message, "block b and disable a");
    ck_assert_int_eq(vs[2].version, 1);
    ck_assert_str_eq(vs[2].actor, "alice");
    ck_assert_str_eq(vs[2].message, "rule.add rule 1: deny domain a.test");
    ck_assert_int_eq(vs[2].rules, 1);
    ck_assert_int_gt(vs[2].time_ms, 0);
    free(vs);
    /* Paging: older than 2. */
    ck_assert_int_eq(store_versions_list(st, 2, 1, &vs, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(vs[0].version, 1);
    free(vs);

    ck_assert_int_eq(store_version_get(st, 3, &info, &rules, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(rules[0].id, b);
    ck_assert_int_eq(rules[1].id, a);
    ck_assert(!rules[1].enabled);
    ck_assert_str_eq(rules[1].comment, "why");
    store_rules_free(rules, n);
    ck_assert_int_eq(store_version_get(st, 99, &info, NULL, NULL, err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "no such") != NULL, "%s", err);

    /* Rolling back to version 1: the rule keeps its id, comment and flag; a new version. */
    ck_assert_int_eq(store_version_get(st, 1, &info, &rules, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(store_rules_restore(st, 1, rules, n, "dave", err, sizeof(err)), 0);
    store_rules_free(rules, n);
    ck_assert_int_eq(store_policy_version(st), 4);
    ck_assert_int_eq(store_rules_list(st, &rules, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(rules[0].id, a);
    ck_assert(rules[0].enabled);
    ck_assert_str_eq(rules[0].comment, "why");
    store_rules_free(rules, n);
    ck_assert_int_eq(store_versions_list(st, 0, 1, &vs, &n, err, sizeof(err)), 0);
    ck_assert_str_eq(vs[0].actor, "dave");
    ck_assert_str_eq(vs[0].message, "policy.rollback version 1: 1 rules and its lists");
    free(vs);
    /* The next new rule still gets an id never used before. */
    ck_assert_int_eq(store_rule_add(st, "deny domain c.test", "", 0, "t", &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a, b + 1);
}
END_TEST

/* A list's entries, joined by ",". */
static void list_of(const struct store_policy_list *lists, size_t n, const char *name, char *out,
                    size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!strcmp(lists[i].name, name))
            for (size_t j = 0; j < lists[i].count; j++)
                snprintf(out + strlen(out), size - strlen(out), "%s%s", j ? "," : "",
                         lists[i].domains[j]);
}

/* Rows of sql's count(*) on the database itself. */
static long long count_rows(const char *sql)
{
    return test_db_int(&tmp, sql);
}

/* Versions keep the lists: each version's lists as they were, entries stored once per
 * content (a rule change copies none), and a rollback brings the lists back; a version from
 * before lists were kept rolls back its rules only. */
START_TEST(test_versions_keep_lists_and_rollback_restores_them)
{
    const char *ab[] = {"b.test", "a.test"}, *c[] = {"c.test"}, *m[] = {"m.test"};
    struct store_policy_list *lists;
    struct store_version *vs;
    struct store_version info;
    struct store_rule *rules;
    size_t n, nr;
    char got[256];
    int id;

    ck_assert_int_eq(store_list_replace(st, "ads", ab, 2, "t", err, sizeof(err)), 0); /* v1 */
    ck_assert_int_eq(store_rule_add(st, "deny list ads", "", 0, "t", &id, err, sizeof(err)),
                     0);                                                              /* v2 */
    ck_assert_int_eq(store_list_replace(st, "ads", c, 1, "t", err, sizeof(err)), 0);  /* v3 */
    ck_assert_int_eq(store_list_replace(st, "more", m, 1, "t", err, sizeof(err)), 0); /* v4 */
    ck_assert_int_eq(store_policy_version(st), 4);

    ck_assert_int_eq(store_version_lists(st, 2, &lists, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 1);
    list_of(lists, n, "ads", got, sizeof(got));
    ck_assert_str_eq(got, "a.test,b.test");
    store_policy_lists_free(lists, n);
    ck_assert_int_eq(store_version_lists(st, 4, &lists, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    list_of(lists, n, "ads", got, sizeof(got));
    ck_assert_str_eq(got, "c.test");
    list_of(lists, n, "more", got, sizeof(got));
    ck_assert_str_eq(got, "m.test");
    store_policy_lists_free(lists, n);
    ck_assert_int_eq(store_versions_list(st, 0, 10, &vs, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(vs[0].lists, 2);
    ck_assert_int_eq(vs[3].lists, 1);
    free(vs);
    /* a.test, b.test once (v1, shared by v2), c.test (v3, shared by v4), m.test (v4) */
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_list_entries"), 4);

    /* What differs between 2 and 4: ads changed (c.test in, a and b out), more added. */
    struct store_list_change *lc;
    ck_assert_int_eq(store_version_lists_diff(st, 2, 4, &lc, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(lc[0].name, "ads");
    ck_assert_int_eq(lc[0].entries_from, 2);
    ck_assert_int_eq(lc[0].entries_to, 1);
    ck_assert_int_eq(lc[0].added, 1);
    ck_assert_int_eq(lc[0].removed, 2);
    ck_assert_str_eq(lc[1].name, "more");
    ck_assert_int_eq(lc[1].entries_from, -1);
    ck_assert_int_eq(lc[1].added, 1);
    free(lc);
    ck_assert_int_eq(store_version_lists_diff(st, 1, 2, &lc, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    free(lc);
    ck_assert_int_eq(store_version_lists_diff(st, 1, 99, &lc, &n, err, sizeof(err)), 1);

    /* Back to version 2: its rule and its list; "more" goes. Nothing is copied again. */
    ck_assert_int_eq(store_version_get(st, 2, &info, &rules, &nr, err, sizeof(err)), 0);
    ck_assert_int_eq(store_rules_restore(st, 2, rules, nr, "t", err, sizeof(err)), 0);
    store_rules_free(rules, nr);
    struct store_policy p;
    ck_assert_int_eq(store_policy_read(st, &p, err, sizeof(err)), 0);
    ck_assert_uint_eq(p.nlists, 1);
    list_of(p.lists, p.nlists, "ads", got, sizeof(got));
    ck_assert_str_eq(got, "a.test,b.test");
    store_policy_free(&p);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_list_entries"), 4);
    ck_assert_int_eq(store_version_lists(st, 5, &lists, &n, err, sizeof(err)), 0);
    list_of(lists, n, "ads", got, sizeof(got));
    ck_assert_str_eq(got, "a.test,b.test");
    store_policy_lists_free(lists, n);
    /* 5 holds again what 2 held: 4 -> 5 is the reverse of 2 -> 4. */
    ck_assert_int_eq(store_version_lists_diff(st, 4, 5, &lc, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(lc[0].added, 2);
    ck_assert_int_eq(lc[0].removed, 1);
    ck_assert_int_eq(lc[1].entries_to, -1);
    ck_assert_int_eq(lc[1].removed, 1);
    free(lc);

    /* A version recorded before versions kept lists: rules only, lists as they are. */
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_versions"), 6);
    test_db_exec(&tmp, "UPDATE policy_versions SET lists_kept = 0 WHERE version = 3");
    ck_assert_int_eq(store_version_lists(st, 3, &lists, &n, err, sizeof(err)), 1);
    ck_assert_msg(strstr(err, "before versions kept lists") != NULL, "%s", err);
    ck_assert_int_eq(store_version_get(st, 3, &info, &rules, &nr, err, sizeof(err)), 0);
    ck_assert_int_eq(info.lists, -1);
    ck_assert_int_eq(store_rules_restore(st, 3, rules, nr, "t", err, sizeof(err)), 0);
    store_rules_free(rules, nr);
    ck_assert_int_eq(store_policy_read(st, &p, err, sizeof(err)), 0);
    list_of(p.lists, p.nlists, "ads", got, sizeof(got));
    ck_assert_str_eq(got, "a.test,b.test");
    store_policy_free(&p);
}
END_TEST

START_TEST(test_group_at_a_version_that_moved_is_again)
{
    struct store *other = store_open(tmp.db, err, sizeof(err));
    struct store_policy p;
    int id;

    ck_assert_ptr_nonnull(other);
    ck_assert_int_eq(store_policy_read(st, &p, err, sizeof(err)), 0);
    ck_assert_int_eq(store_rule_add(other, "deny domain x.test", "", 0, "t", &id, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_change_begin(st, p.version, err, sizeof(err)), PX_AGAIN);
    ck_assert_msg(strstr(err, "changed") != NULL, "%s", err);
    /* Nothing was left open: the other connection can still write, this one can begin. */
    ck_assert_int_eq(store_rule_add(other, "deny domain y.test", "", 0, "t", &id, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_change_begin(st, p.version + 2, err, sizeof(err)), PX_OK);
    ck_assert_int_eq(store_change_commit(st, NULL, err, sizeof(err)), PX_OK);
    store_policy_free(&p);
    store_close(other);
}
END_TEST

static void sql_run(const char *sql)
{
    test_db_exec(&tmp, sql); /* either backend */
}

/* Pruning keeps the current version, the newest `keep`, those younger than keep_days and
 * those a logged request may name; it frees the rules and list entries that only pruned
 * versions held, and keeps those a kept version shares. */
START_TEST(test_prune_keeps_what_is_needed_and_frees_the_rest)
{
    const char *a[] = {"a.test"}, *b[] = {"b.test"}, *c[] = {"c.test"}, *d[] = {"d.test"};
    const char **sets[] = {a, b, c, d};
    char text[64];
    int id;

    /* v0 (made when versions began), v1 list a, v2 rule r0, v3 list b, v4 r1, v5 list c,
     * v6 r2, v7 list d, v8 r3 */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(store_list_replace(st, "ads", sets[i], 1, "t", err, sizeof(err)), 0);
        snprintf(text, sizeof(text), "deny domain r%d.test", i);
        ck_assert_int_eq(store_rule_add(st, text, "", 0, "t", &id, err, sizeof(err)), 0);
    }
    ck_assert_int_eq(store_policy_version(st), 8);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_list_entries"), 4);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_rules"), 1 + 2 + 3 + 4);
    /* Version v came into force v hours after the epoch: all of them long ago. */
    sql_run("UPDATE policy_versions SET time_ms = version * 3600000");

    /* Nothing to do without a limit, or with as many versions as kept. */
    ck_assert_int_eq(store_version_prune(st, 0, 0, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(store_version_prune(st, 9, 0, 0, err, sizeof(err)), 0); /* v0..v8 */
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_versions"), 9);

    /* The newest 3 stay; v6 still holds list c (stored with v5) and the rules of v6. */
    ck_assert_int_eq(store_version_prune(st, 3, 30, 2, err, sizeof(err)), 2); /* a batch */
    ck_assert_int_eq(store_version_prune(st, 3, 30, 0, err, sizeof(err)), 4);
    ck_assert_int_eq(store_version_prune(st, 3, 30, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(count_rows("SELECT min(version) FROM policy_versions"), 6);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_versions"), 3);
    /* What they stored is freed afterwards, in steps of at most max_rows rows: lists a and
     * b (one entry each), the rules of v2 (1) and v4 (2). */
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_list_entries"), 4);
    ck_assert_int_eq(store_version_gc(st, 1, err, sizeof(err)), 1);
    ck_assert_int_eq(store_version_gc(st, 1, err, sizeof(err)), 1);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_list_entries"), 2);
    ck_assert_int_eq(store_version_gc(st, 1, err, sizeof(err)), 1); /* v2's rule */
    ck_assert_int_eq(store_version_gc(st, 1, err, sizeof(err)), 1); /* v4's, one at a time */
    ck_assert_int_eq(store_version_gc(st, 0, err, sizeof(err)), 1);
    ck_assert_int_eq(store_version_gc(st, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_list_entries"
                                " WHERE domain = 'c.test'"),
                     1);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_rules"), 3 + 4);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM audit WHERE action = 'version.prune'"), 2);

    /* A pruned version is gone for every reader. */
    struct store_policy_list *pl;
    size_t pn;
    ck_assert_int_eq(store_version_lists(st, 2, &pl, &pn, err, sizeof(err)), 1);
    ck_assert_int_eq(store_version_lists(st, 6, &pl, &pn, err, sizeof(err)), 0);
    store_policy_lists_free(pl, pn);

    /* A request logged during v7 keeps v7 and later (and v6, ended just before it: the
     * slack for nodes that lag). */
    for (int i = 4; i < 8; i++) { /* v9..v12 */
        snprintf(text, sizeof(text), "deny domain r%d.test", i);
        ck_assert_int_eq(store_rule_add(st, text, "", 0, "t", &id, err, sizeof(err)), 0);
    }
    sql_run("UPDATE policy_versions SET time_ms = version * 3600000;"
            "INSERT INTO access_log(time_ms, client, policy_version)"
            " VALUES (7 * 3600000 + 1000, '10.0.0.1', 7)");
    ck_assert_int_eq(store_version_prune(st, 1, 0, 0, err, sizeof(err)), 0);
    sql_run("UPDATE access_log SET time_ms = 8 * 3600000 + 1000, policy_version = 8");
    ck_assert_int_eq(store_version_prune(st, 1, 0, 0, err, sizeof(err)), 1); /* v6 */
    ck_assert_int_eq(count_rows("SELECT min(version) FROM policy_versions"), 7);
    /* v6 held list c alone, but its rules are v7's too: only c goes. */
    ck_assert_int_eq(store_version_gc(st, 0, err, sizeof(err)), 1);
    ck_assert_int_eq(store_version_gc(st, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_list_entries"
                                " WHERE domain = 'c.test'"),
                     0);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_version_rules WHERE version = 6"), 3);
    /* Versions younger than keep_days stay whatever keep says. */
    char now_sql[128];
    snprintf(now_sql, sizeof(now_sql),
             "DELETE FROM access_log; UPDATE policy_versions SET time_ms = %lld",
             (long long)time(NULL) * 1000); /* in either backend's SQL */
    sql_run(now_sql);
    ck_assert_int_eq(store_version_prune(st, 1, 30, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(count_rows("SELECT count(*) FROM policy_versions"), 6);
    ck_assert_int_eq(store_policy_version(st), 12);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_policy");
    TCase *tc = tcase_create("policy");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, store_setup, store_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_positions_follow_add_move_delete);
    tcase_add_test(tc, test_rules_starting_with_a_prefix);
    tcase_add_test(tc, test_each_change_bumps_version_and_writes_audit);
    tcase_add_test(tc, test_update_changes_only_given_fields);
    tcase_add_test(tc, test_missing_rule_is_an_error_and_changes_nothing);
    tcase_add_test(tc, test_rules_replace_100k_in_one_transaction);
    tcase_add_test(tc, test_list_replace_100k_entries_in_one_transaction);
    tcase_add_test(tc, test_bad_list_names_are_refused);
    tcase_add_test(tc, test_settings_round_trip);
    tcase_add_test(tc, test_policy_read_is_one_moment_with_the_next_id);
    tcase_add_test(tc, test_grouped_changes_commit_together_or_not_at_all);
    tcase_add_test(tc, test_versions_record_who_when_why_and_the_rules);
    tcase_add_test(tc, test_group_at_a_version_that_moved_is_again);
    tcase_add_test(tc, test_versions_keep_lists_and_rollback_restores_them);
    tcase_add_test(tc, test_prune_keeps_what_is_needed_and_frees_the_rest);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
