/* store_db: opening a database, its PRAGMAs, the schema as ordered migration steps, and the
 * small helpers (errors, statements, transactions, result arrays) every other store_*.c file
 * uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "storage/store_impl.h"

/* Admin connections wait this long for the write lock: policy transactions are short. */
#define ADMIN_BUSY_TIMEOUT_MS 2000
#define PG_REVIVE_MS 1000      /* between attempts to reconnect to a PostgreSQL that went away */
#define PG_CONNECT_TIMEOUT "5" /* seconds, see pg_connect */

const struct store_migration store_migrations[] = {
    {1, "CREATE TABLE access_log("
        " id INTEGER PRIMARY KEY,"
        " time_ms INTEGER NOT NULL,"
        " client TEXT NOT NULL,"
        " user TEXT NOT NULL DEFAULT '',"
        " method TEXT NOT NULL DEFAULT '',"
        " scheme TEXT NOT NULL DEFAULT '',"
        " host TEXT NOT NULL DEFAULT '',"
        " port INTEGER NOT NULL DEFAULT 0,"
        " path TEXT NOT NULL DEFAULT '',"
        " status INTEGER NOT NULL DEFAULT 0,"
        " bytes_up INTEGER NOT NULL DEFAULT 0,"
        " bytes_down INTEGER NOT NULL DEFAULT 0,"
        " duration_ms INTEGER NOT NULL DEFAULT 0,"
        " decision INTEGER NOT NULL DEFAULT 0,"
        " rule_id INTEGER NOT NULL DEFAULT 0,"
        " error TEXT NOT NULL DEFAULT '');"
        /* AUTOINCREMENT: a deleted rule's id is never reused, so old log rows never point
         * at an unrelated new rule. */
        "CREATE TABLE rules("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " position INTEGER NOT NULL,"
        " enabled INTEGER NOT NULL DEFAULT 1,"
        " text TEXT NOT NULL,"
        " comment TEXT NOT NULL DEFAULT '',"
        " created_ms INTEGER NOT NULL,"
        " updated_ms INTEGER NOT NULL);"
        "CREATE TABLE lists("
        " name TEXT PRIMARY KEY,"
        " updated_ms INTEGER NOT NULL);"
        "CREATE TABLE list_entries("
        " list TEXT NOT NULL REFERENCES lists(name) ON DELETE CASCADE,"
        " domain TEXT NOT NULL,"
        " PRIMARY KEY(list, domain)) WITHOUT ROWID;"
        "CREATE TABLE users(name TEXT PRIMARY KEY, hash TEXT NOT NULL,"
        " updated_ms INTEGER NOT NULL);"
        "CREATE TABLE admins(name TEXT PRIMARY KEY, hash TEXT NOT NULL,"
        " updated_ms INTEGER NOT NULL);"
        "CREATE TABLE audit("
        " id INTEGER PRIMARY KEY,"
        " time_ms INTEGER NOT NULL,"
        " actor TEXT NOT NULL,"
        " action TEXT NOT NULL,"
        " detail TEXT NOT NULL);"
        "CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE policy_version("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " version INTEGER NOT NULL);"
        "INSERT INTO policy_version(id, version) VALUES (1, 0);"},
    /* Only what the admin queries use (docs/storage.md): time ranges for top/series/totals
     * and retention; the client filter of the log search, in id order (the index stores
     * the rowid after the key, so `client = ? ORDER BY id DESC` needs no sort); denied rows
     * for "top blocked". No index on host: the search is by substring, which no b-tree
     * serves, and each index costs insert rate. */
    {2, "CREATE INDEX access_log_time ON access_log(time_ms);"
        "CREATE INDEX access_log_client ON access_log(client);"
        "CREATE INDEX access_log_decision_time ON access_log(decision, time_ms);"},
    /* Hits per rule, kept by the writer in the same transaction as each batch and by
     * retention as it deletes: reading them is O(rules), and no index on rule_id slows
     * every insert. Backfilled from the rows already there. */
    {3, "CREATE TABLE rule_hits(rule_id INTEGER PRIMARY KEY, hits INTEGER NOT NULL);"
        "INSERT INTO rule_hits(rule_id, hits)"
        " SELECT rule_id, count(*) FROM access_log WHERE rule_id <> 0 GROUP BY rule_id;"},
    /* The client index cost more than a third of the writer's insert rate (store_bench:
     * 307k rows/s with it, 500k without) while the client search it served stays well
     * under its target without it: at most one table scan, about 50 ms over a million
     * rows, and a bounded window reads the time index (docs/storage.md). */
    {4, "DROP INDEX IF EXISTS access_log_client;"},
    /* The first-run admin's password was generated and written to a file: its first login
     * must replace it. Any password set clears the mark. */
    {5, "ALTER TABLE admins ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0;"},
    /* Times a rule's regex hit its match limit and could not decide: the admin sees a rule
     * that denies (or fails to allow) by timing out rather than by matching. */
    {6, "ALTER TABLE rule_hits ADD COLUMN undecided INTEGER NOT NULL DEFAULT 0;"},
    /* The server name a tunnel's ClientHello asked for: beside the CONNECT host, since the
     * two may differ (a tunnel to an allowed host carrying a blocked name). The address the
     * request went to: beside the host, since a name may point anywhere by the time it is
     * looked up (and an intercepted connection goes where it was bound, whatever it names). */
    {7, "ALTER TABLE access_log ADD COLUMN sni TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE access_log ADD COLUMN dest TEXT NOT NULL DEFAULT '';"},
    /* Port forwards (proxyd opens a listener for each): a listen address is held by one
     * forward at most, and a deleted forward's id is never reused, so an access-log row or
     * an audit line never points at an unrelated new one. */
    {8, "CREATE TABLE forwards("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " listen TEXT NOT NULL UNIQUE,"
        " target TEXT NOT NULL,"
        " clients TEXT NOT NULL DEFAULT '',"
        " created_ms INTEGER NOT NULL);"},
    /* The proxyd node that relayed the request (--node-name), so that the rows of several
     * nodes can share one log. Rows from before have none (''). */
    {9, "ALTER TABLE access_log ADD COLUMN node TEXT NOT NULL DEFAULT '';"},
    /* Policy versions: who changed the policy when and why, and the rules each version
     * held (rules_of: the version whose rows in policy_version_rules hold them, so a change
     * of lists or users copies no rule). Each access row names the version that decided it.
     * The policy as found at the upgrade becomes the first recorded version. */
    {11, "ALTER TABLE access_log ADD COLUMN policy_version INTEGER NOT NULL DEFAULT 0;"
         "CREATE TABLE policy_versions("
         " version INTEGER PRIMARY KEY,"
         " time_ms INTEGER NOT NULL,"
         " actor TEXT NOT NULL,"
         " message TEXT NOT NULL,"
         " rules_of INTEGER NOT NULL);"
         "CREATE TABLE policy_version_rules("
         " version INTEGER NOT NULL,"
         " position INTEGER NOT NULL,"
         " rule_id INTEGER NOT NULL,"
         " enabled INTEGER NOT NULL,"
         " text TEXT NOT NULL,"
         " comment TEXT NOT NULL,"
         " PRIMARY KEY(version, rule_id)) WITHOUT ROWID;"
         "INSERT INTO policy_versions(version, time_ms, actor, message, rules_of)"
         " SELECT version, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'proxyd',"
         " 'the policy as it was when versions began to be kept', version FROM policy_version;"
         "INSERT INTO policy_version_rules(version, position, rule_id, enabled, text, comment)"
         " SELECT (SELECT version FROM policy_version), position, id, enabled, text, comment"
         " FROM rules;"},
    /* Admin roles: admin (everything), operator (block, unblock, allow, lists, and what a
     * viewer may), viewer (reads only). Accounts made before roles keep everything. */
    {12, "ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';"},
    /* Requests for access that users sent from the block page, and what an admin decided:
     * the queue an admin works through (pending first, by time). */
    {13, "CREATE TABLE access_requests("
         " id INTEGER PRIMARY KEY,"
         " time_ms INTEGER NOT NULL,"
         " client TEXT NOT NULL,"
         " user TEXT NOT NULL DEFAULT '',"
         " host TEXT NOT NULL,"
         " port INTEGER NOT NULL,"
         " rule_id INTEGER NOT NULL DEFAULT 0,"
         " reason TEXT NOT NULL,"
         " name TEXT NOT NULL DEFAULT '',"
         " status TEXT NOT NULL DEFAULT 'pending',"
         " decided_ms INTEGER NOT NULL DEFAULT 0,"
         " decided_by TEXT NOT NULL DEFAULT '',"
         " note TEXT NOT NULL DEFAULT '',"
         " granted_rule_id INTEGER NOT NULL DEFAULT 0);"
         "CREATE INDEX access_requests_status ON access_requests(status, id);"},
    /* A port forward may speak TLS on one side (acl_forward.h's words: '' or 'tls-listen'). */
    {16, "ALTER TABLE forwards ADD COLUMN tls TEXT NOT NULL DEFAULT '';"},
    /* Rollups (store_rollup.c): sums per minute, hour and day (level_ms) in total and by
     * host, client, rule and node (dim 0-4), kept by the log writer, so the dashboard and
     * top lists read them instead of the rows. The watermark starts at 0: the writer rolls
     * up the rows already there as it starts, and readers count them raw until then. Top
     * blocked/reported now read the rollups: the (decision, time_ms) index they used cost
     * the writer a third of its instructions per row (docs/performance.md). */
    {18, "CREATE TABLE access_rollup("
         " level_ms INTEGER NOT NULL,"
         " dim INTEGER NOT NULL,"
         " bucket_ms INTEGER NOT NULL,"
         " key TEXT NOT NULL,"
         " requests INTEGER NOT NULL,"
         " blocked INTEGER NOT NULL,"
         " reported INTEGER NOT NULL,"
         " bytes_up INTEGER NOT NULL,"
         " bytes_down INTEGER NOT NULL,"
         " blocked_bytes INTEGER NOT NULL,"
         " reported_bytes INTEGER NOT NULL,"
         " PRIMARY KEY(level_ms, dim, bucket_ms, key)) WITHOUT ROWID;"
         "CREATE TABLE access_rollup_state("
         " id INTEGER PRIMARY KEY CHECK (id = 1),"
         " rolled_id INTEGER NOT NULL);"
         "INSERT INTO access_rollup_state(id, rolled_id) VALUES (1, 0);"
         "DROP INDEX IF EXISTS access_log_decision_time;"},
    /* Named API tokens of admin accounts (store_token.c): only a hash of each secret is kept,
     * the secret itself is shown once. A token acts with its owner's role and goes with its
     * owner. (Names were unique across owners here; per owner since step 35.) */
    {20, "CREATE TABLE admin_tokens("
         " name TEXT PRIMARY KEY,"
         " owner TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE,"
         " hash BLOB NOT NULL UNIQUE,"
         " created_ms INTEGER NOT NULL,"
         " last_used_ms INTEGER NOT NULL DEFAULT 0);"
         "CREATE INDEX admin_tokens_owner ON admin_tokens(owner);"},
    /* Versions keep the lists as well as the rules, so a rollback brings back the entries
     * the version's `list NAME` rules matched. policy_version_lists: the lists a version held,
     * each with entries_of, the version whose rows in policy_version_list_entries hold its
     * entries; a version that leaves a list as it was shares those rows, so a rule change
     * copies no domain and a list import copies only that list. lists_kept marks the versions
     * recorded since (older ones roll back their rules only). The lists found at the upgrade
     * go with the version in force then. */
    {22, "ALTER TABLE policy_versions ADD COLUMN lists_kept INTEGER NOT NULL DEFAULT 0;"
         "CREATE TABLE policy_version_lists("
         " version INTEGER NOT NULL,"
         " name TEXT NOT NULL,"
         " entries_of INTEGER NOT NULL,"
         " PRIMARY KEY(version, name)) WITHOUT ROWID;"
         "CREATE TABLE policy_version_list_entries("
         " version INTEGER NOT NULL,"
         " list TEXT NOT NULL,"
         " domain TEXT NOT NULL,"
         " PRIMARY KEY(version, list, domain)) WITHOUT ROWID;"
         "UPDATE policy_versions SET lists_kept = 1"
         " WHERE version = (SELECT version FROM policy_version);"
         "INSERT INTO policy_version_lists(version, name, entries_of)"
         " SELECT p.version, l.name, p.version FROM lists l, policy_version p"
         " WHERE EXISTS (SELECT 1 FROM policy_versions v WHERE v.version = p.version);"
         "INSERT INTO policy_version_list_entries(version, list, domain)"
         " SELECT l.version, e.list, e.domain FROM list_entries e"
         " JOIN policy_version_lists l ON l.name = e.list;"},
    /* The last access-log batch each writer (the id in its spill file's header, store_spill.h)
     * committed on PostgreSQL: a batch sent again after its commit's answer was lost is
     * known and not written twice (store_log.c). SQLite's writer does not use it. */
    {23, "CREATE TABLE log_delivery(writer TEXT PRIMARY KEY, seq INTEGER NOT NULL);"},
    /* List subscriptions (store_subs.c): a list proxyd fetches from a URL on a schedule. The
     * list itself stays a row of `lists` (its entries, versions and rollbacks are a list's);
     * this row holds where it comes from, when it is next due, and how the last fetch went.
     * No foreign key to lists: a subscription exists before its first import. */
    {26, "CREATE TABLE list_subscriptions("
         " name TEXT PRIMARY KEY,"
         " url TEXT NOT NULL,"
         " every_s INTEGER NOT NULL,"
         " created_ms INTEGER NOT NULL,"
         " next_ms INTEGER NOT NULL DEFAULT 0,"
         " checked_ms INTEGER NOT NULL DEFAULT 0,"
         " imported_ms INTEGER NOT NULL DEFAULT 0,"
         " entries INTEGER NOT NULL DEFAULT -1,"
         " status INTEGER NOT NULL DEFAULT 0,"
         " etag TEXT NOT NULL DEFAULT '',"
         " last_modified TEXT NOT NULL DEFAULT '',"
         " error TEXT NOT NULL DEFAULT '');"},
    /* Pruning old policy versions (store_version_prune) asks, for each version it deletes,
     * whether a version left still shares its rules or a list's entries. */
    {27, "CREATE INDEX policy_versions_rules_of ON policy_versions(rules_of);"
         "CREATE INDEX policy_version_lists_entries_of ON policy_version_lists(entries_of, name);"},
    /* A tls-target forward's expected server name, when not its target's host ('': that). */
    {28, "ALTER TABLE forwards ADD COLUMN tls_name TEXT NOT NULL DEFAULT '';"},
    /* The nodes on this database (store_node.c): each proxyd's heartbeat row. */
    {31, "CREATE TABLE nodes("
         " name TEXT PRIMARY KEY,"
         " started_ms INTEGER NOT NULL,"
         " software TEXT NOT NULL,"
         " listen TEXT NOT NULL,"
         " policy_version INTEGER NOT NULL,"
         " beat_ms INTEGER NOT NULL,"
         " beat_every_ms INTEGER NOT NULL,"
         " stopped_ms INTEGER NOT NULL DEFAULT 0);"},
    /* Admin login sessions (store_session.c), shared by the nodes on one database: the hash of
     * the id, never the id; they go with their admin. */
    {32, "CREATE TABLE admin_sessions("
         " hash BLOB PRIMARY KEY,"
         " admin TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE,"
         " created_ms INTEGER NOT NULL,"
         " expires_ms INTEGER NOT NULL);"
         "CREATE INDEX admin_sessions_admin ON admin_sessions(admin, created_ms);"
         "CREATE INDEX admin_sessions_expires ON admin_sessions(expires_ms);"},
    /* PostgreSQL partitions the access log by day (store_migrations_pg); SQLite's stays one
     * table, so the step does nothing here. */
    {33, ""},
    /* Token names are unique per owner, not across owners: a refusal naming a taken name told
     * one admin the names of another's tokens. SQLite changes a primary key by a copy. */
    {35, "CREATE TABLE admin_tokens_35("
         " owner TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE,"
         " name TEXT NOT NULL,"
         " hash BLOB NOT NULL UNIQUE,"
         " created_ms INTEGER NOT NULL,"
         " last_used_ms INTEGER NOT NULL DEFAULT 0,"
         " PRIMARY KEY (owner, name));"
         "INSERT INTO admin_tokens_35(owner, name, hash, created_ms, last_used_ms)"
         " SELECT owner, name, hash, created_ms, last_used_ms FROM admin_tokens;"
         "DROP TABLE admin_tokens;"
         "ALTER TABLE admin_tokens_35 RENAME TO admin_tokens;"},
    /* PostgreSQL's day tables are made without waiting for a lock (store_migrations_pg);
     * SQLite has none. */
    {36, ""},
    /* PostgreSQL: room in the rollups' pages for updates (store_migrations_pg); SQLite's
     * pages have no such setting. */
    {37, ""},
    /* The ids each minute's rows took (store_rollup.c keeps it with the rollups, for the rows
     * at or below their watermark), so a log search turns a time window into an id range
     * instead of walking every newer id (store_query.c). Made empty: step 46 sets the
     * watermark back to 0, and the writer fills it as it rolls the log up again (a scan of
     * the whole log here would be thrown away by step 46 on every upgrade). */
    {39, "CREATE TABLE access_log_minutes("
         " minute_ms INTEGER PRIMARY KEY,"
         " first_id INTEGER NOT NULL,"
         " last_id INTEGER NOT NULL,"
         " row_count INTEGER NOT NULL);"},
    /* Which run of a node beats (store_node.c): two processes given one name are told apart,
     * and the one that sees the other says so in its row. */
    {44, "ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';"
         "ALTER TABLE nodes ADD COLUMN rival TEXT NOT NULL DEFAULT '';"},
    /* The rollups keyed by node as well (issue 13: the dashboard and top lists of one node),
     * and dimension 4 (node) gone: a node's totals are its dimension-0 rows. Rows from before
     * hold no node split, so the table starts empty and the watermark at 0: the writer rebuilds
     * the sums from the log (store_rollup_catch_up, a bounded step a transaction) and readers
     * count the rows above the watermark raw meanwhile, exact throughout. The minutes' id
     * ranges (step 39) are kept with the sums: rebuilt with them, not counted twice. */
    {46, "DROP TABLE access_rollup;"
         "CREATE TABLE access_rollup("
         " level_ms INTEGER NOT NULL,"
         " dim INTEGER NOT NULL,"
         " bucket_ms INTEGER NOT NULL,"
         " key TEXT NOT NULL,"
         " node TEXT NOT NULL,"
         " requests INTEGER NOT NULL,"
         " blocked INTEGER NOT NULL,"
         " reported INTEGER NOT NULL,"
         " bytes_up INTEGER NOT NULL,"
         " bytes_down INTEGER NOT NULL,"
         " blocked_bytes INTEGER NOT NULL,"
         " reported_bytes INTEGER NOT NULL,"
         " PRIMARY KEY(level_ms, dim, bucket_ms, key, node)) WITHOUT ROWID;"
         "UPDATE access_rollup_state SET rolled_id = 0;"
         "DELETE FROM access_log_minutes;"},
    /* Who visited a host, per hour (issue 13: store_host_visitors read every row of its range):
     * kept by the writer with the rollups, under their watermark, keyed by bucket first so a
     * range is one probe an hour and a day's table dropped is one range. The rows at or below
     * the watermark hold no visits yet: the sums start again from 0 as in step 46 (rebuilt
     * from the log a bounded step a transaction, readers exact meanwhile). The watermark's
     * table takes a new name so that a proxyd from before this step still running on the
     * database (another node of a fleet) fails its log batches instead of moving the
     * watermark over rows whose visits it did not keep. */
    {49, "CREATE TABLE access_visits("
         " level_ms INTEGER NOT NULL,"
         " bucket_ms INTEGER NOT NULL,"
         " host TEXT NOT NULL,"
         " client TEXT NOT NULL,"
         " \"user\" TEXT NOT NULL,"
         " node TEXT NOT NULL,"
         " requests INTEGER NOT NULL,"
         " blocked INTEGER NOT NULL,"
         " first_ms INTEGER,"
         " last_ms INTEGER,"
         " PRIMARY KEY(level_ms, bucket_ms, host, client, \"user\", node)) WITHOUT ROWID;"
         "DELETE FROM access_rollup;"
         "ALTER TABLE access_rollup_state RENAME TO access_rollup_mark;"
         "UPDATE access_rollup_mark SET rolled_id = 0;"
         "DELETE FROM access_log_minutes;"},
    /* Each rollup row's smallest and largest access_log id (issue 13: a rare host's search
     * read every row of each minute holding it, ~2,300 a minute at 100M rows; now the host's
     * id range in that minute). NULL for the rows summed before this step, and after any
     * merge with such a row: a reader then reads the whole minute's range, as before. */
    {50, "ALTER TABLE access_rollup ADD COLUMN min_id INTEGER;"
         "ALTER TABLE access_rollup ADD COLUMN max_id INTEGER;"},
    /* A writer from before step 50 would still add to the rollup rows without widening their
     * id ranges, and a rare host's search would then miss its rows: it has no watermark by
     * this name, so it fails (its rows wait in its spill) until its node is upgraded, as after
     * step 49. */
    {51, "ALTER TABLE access_rollup_mark RENAME TO access_rollup_watermark;"},
};
/* The steps whose SQL PostgreSQL spells differently, by the same numbers (any step not here runs
 * the same SQL on both): 64-bit integers where SQLite's are, an identity for the ids (never
 * reused, as AUTOINCREMENT), "user" quoted (a reserved word there), and its own clock.
 * Sorted by version, each version once, as store_migrations. */
const struct store_migration store_migrations_pg[] = {
    {1, "CREATE TABLE access_log("
        " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " time_ms BIGINT NOT NULL,"
        " client TEXT NOT NULL,"
        " \"user\" TEXT NOT NULL DEFAULT '',"
        " method TEXT NOT NULL DEFAULT '',"
        " scheme TEXT NOT NULL DEFAULT '',"
        " host TEXT NOT NULL DEFAULT '',"
        " port INTEGER NOT NULL DEFAULT 0,"
        " path TEXT NOT NULL DEFAULT '',"
        " status INTEGER NOT NULL DEFAULT 0,"
        " bytes_up BIGINT NOT NULL DEFAULT 0,"
        " bytes_down BIGINT NOT NULL DEFAULT 0,"
        " duration_ms BIGINT NOT NULL DEFAULT 0,"
        " decision INTEGER NOT NULL DEFAULT 0,"
        " rule_id INTEGER NOT NULL DEFAULT 0,"
        " error TEXT NOT NULL DEFAULT '');"
        "CREATE TABLE rules("
        " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " position INTEGER NOT NULL,"
        " enabled INTEGER NOT NULL DEFAULT 1,"
        " text TEXT NOT NULL,"
        " comment TEXT NOT NULL DEFAULT '',"
        " created_ms BIGINT NOT NULL,"
        " updated_ms BIGINT NOT NULL);"
        "CREATE TABLE lists(name TEXT PRIMARY KEY, updated_ms BIGINT NOT NULL);"
        "CREATE TABLE list_entries("
        " list TEXT NOT NULL REFERENCES lists(name) ON DELETE CASCADE,"
        " domain TEXT NOT NULL,"
        " PRIMARY KEY(list, domain));"
        "CREATE TABLE users(name TEXT PRIMARY KEY, hash TEXT NOT NULL, updated_ms BIGINT NOT NULL);"
        "CREATE TABLE admins(name TEXT PRIMARY KEY, hash TEXT NOT NULL,"
        " updated_ms BIGINT NOT NULL);"
        "CREATE TABLE audit("
        " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " time_ms BIGINT NOT NULL,"
        " actor TEXT NOT NULL,"
        " action TEXT NOT NULL,"
        " detail TEXT NOT NULL);"
        "CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE policy_version("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " version BIGINT NOT NULL);"
        "INSERT INTO policy_version(id, version) VALUES (1, 0);"},
    {3, "CREATE TABLE rule_hits(rule_id INTEGER PRIMARY KEY, hits BIGINT NOT NULL);"
        "INSERT INTO rule_hits(rule_id, hits)"
        " SELECT rule_id, count(*) FROM access_log WHERE rule_id <> 0 GROUP BY rule_id;"},
    {6, "ALTER TABLE rule_hits ADD COLUMN undecided BIGINT NOT NULL DEFAULT 0;"},
    {8, "CREATE TABLE forwards("
        " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " listen TEXT NOT NULL UNIQUE,"
        " target TEXT NOT NULL,"
        " clients TEXT NOT NULL DEFAULT '',"
        " created_ms BIGINT NOT NULL);"},
    {11, "ALTER TABLE access_log ADD COLUMN policy_version BIGINT NOT NULL DEFAULT 0;"
         "CREATE TABLE policy_versions("
         " version BIGINT PRIMARY KEY,"
         " time_ms BIGINT NOT NULL,"
         " actor TEXT NOT NULL,"
         " message TEXT NOT NULL,"
         " rules_of BIGINT NOT NULL);"
         "CREATE TABLE policy_version_rules("
         " version BIGINT NOT NULL,"
         " position INTEGER NOT NULL,"
         " rule_id INTEGER NOT NULL,"
         " enabled INTEGER NOT NULL,"
         " text TEXT NOT NULL,"
         " comment TEXT NOT NULL,"
         " PRIMARY KEY(version, rule_id));"
         "INSERT INTO policy_versions(version, time_ms, actor, message, rules_of)"
         " SELECT version, CAST(extract(epoch FROM now()) * 1000 AS BIGINT), 'proxyd',"
         " 'the policy as it was when versions began to be kept', version FROM policy_version;"
         "INSERT INTO policy_version_rules(version, position, rule_id, enabled, text, comment)"
         " SELECT (SELECT version FROM policy_version), position, id, enabled, text, comment"
         " FROM rules;"},
    {13, "CREATE TABLE access_requests("
         " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
         " time_ms BIGINT NOT NULL,"
         " client TEXT NOT NULL,"
         " \"user\" TEXT NOT NULL DEFAULT '',"
         " host TEXT NOT NULL,"
         " port INTEGER NOT NULL,"
         " rule_id INTEGER NOT NULL DEFAULT 0,"
         " reason TEXT NOT NULL,"
         " name TEXT NOT NULL DEFAULT '',"
         " status TEXT NOT NULL DEFAULT 'pending',"
         " decided_ms BIGINT NOT NULL DEFAULT 0,"
         " decided_by TEXT NOT NULL DEFAULT '',"
         " note TEXT NOT NULL DEFAULT '',"
         " granted_rule_id INTEGER NOT NULL DEFAULT 0);"
         "CREATE INDEX access_requests_status ON access_requests(status, id);"},
    {18, "CREATE TABLE access_rollup("
         " level_ms BIGINT NOT NULL,"
         " dim INTEGER NOT NULL,"
         " bucket_ms BIGINT NOT NULL,"
         " key TEXT NOT NULL,"
         " requests BIGINT NOT NULL,"
         " blocked BIGINT NOT NULL,"
         " reported BIGINT NOT NULL,"
         " bytes_up BIGINT NOT NULL,"
         " bytes_down BIGINT NOT NULL,"
         " blocked_bytes BIGINT NOT NULL,"
         " reported_bytes BIGINT NOT NULL,"
         " PRIMARY KEY(level_ms, dim, bucket_ms, key));"
         "CREATE TABLE access_rollup_state("
         " id INTEGER PRIMARY KEY CHECK (id = 1),"
         " rolled_id BIGINT NOT NULL);"
         "INSERT INTO access_rollup_state(id, rolled_id) VALUES (1, 0);"
         "DROP INDEX IF EXISTS access_log_decision_time;"},
    {20, "CREATE TABLE admin_tokens("
         " name TEXT PRIMARY KEY,"
         " owner TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE,"
         " hash BYTEA NOT NULL UNIQUE,"
         " created_ms BIGINT NOT NULL,"
         " last_used_ms BIGINT NOT NULL DEFAULT 0);"
         "CREATE INDEX admin_tokens_owner ON admin_tokens(owner);"},
    {22, "ALTER TABLE policy_versions ADD COLUMN lists_kept INTEGER NOT NULL DEFAULT 0;"
         "CREATE TABLE policy_version_lists("
         " version BIGINT NOT NULL,"
         " name TEXT NOT NULL,"
         " entries_of BIGINT NOT NULL,"
         " PRIMARY KEY(version, name));"
         "CREATE TABLE policy_version_list_entries("
         " version BIGINT NOT NULL,"
         " list TEXT NOT NULL,"
         " domain TEXT NOT NULL,"
         " PRIMARY KEY(version, list, domain));"
         "UPDATE policy_versions SET lists_kept = 1"
         " WHERE version = (SELECT version FROM policy_version);"
         "INSERT INTO policy_version_lists(version, name, entries_of)"
         " SELECT p.version, l.name, p.version FROM lists l, policy_version p"
         " WHERE EXISTS (SELECT 1 FROM policy_versions v WHERE v.version = p.version);"
         "INSERT INTO policy_version_list_entries(version, list, domain)"
         " SELECT l.version, e.list, e.domain FROM list_entries e"
         " JOIN policy_version_lists l ON l.name = e.list;"},
    {23, "CREATE TABLE log_delivery(writer TEXT PRIMARY KEY, seq BIGINT NOT NULL);"},
    {26, "CREATE TABLE list_subscriptions("
         " name TEXT PRIMARY KEY,"
         " url TEXT NOT NULL,"
         " every_s BIGINT NOT NULL,"
         " created_ms BIGINT NOT NULL,"
         " next_ms BIGINT NOT NULL DEFAULT 0,"
         " checked_ms BIGINT NOT NULL DEFAULT 0,"
         " imported_ms BIGINT NOT NULL DEFAULT 0,"
         " entries BIGINT NOT NULL DEFAULT -1,"
         " status INTEGER NOT NULL DEFAULT 0,"
         " etag TEXT NOT NULL DEFAULT '',"
         " last_modified TEXT NOT NULL DEFAULT '',"
         " error TEXT NOT NULL DEFAULT '');"},
    {31, "CREATE TABLE nodes("
         " name TEXT PRIMARY KEY,"
         " started_ms BIGINT NOT NULL,"
         " software TEXT NOT NULL,"
         " listen TEXT NOT NULL,"
         " policy_version BIGINT NOT NULL,"
         " beat_ms BIGINT NOT NULL,"
         " beat_every_ms BIGINT NOT NULL,"
         " stopped_ms BIGINT NOT NULL DEFAULT 0);"},
    {32, "CREATE TABLE admin_sessions("
         " hash BYTEA PRIMARY KEY,"
         " admin TEXT NOT NULL REFERENCES admins(name) ON DELETE CASCADE,"
         " created_ms BIGINT NOT NULL,"
         " expires_ms BIGINT NOT NULL);"
         "CREATE INDEX admin_sessions_admin ON admin_sessions(admin, created_ms);"
         "CREATE INDEX admin_sessions_expires ON admin_sessions(expires_ms);"},
    /* The access log partitioned by day (UTC) on time_ms, so retention by age drops a day's
     * table instead of deleting its rows one by one (store_retention.c), and a time range
     * reads only its days. A unique key must hold the partition column: (id, time_ms), which
     * still finds a row by id (one probe per day). Identity columns cannot be partitioned
     * here (PostgreSQL 15), so ids come from a sequence owned by the column, started above
     * every id the old table gave. access_log_default takes the rows of a day that has no
     * table (yet), so a row is never refused; access_log_add_day(day) makes a day's table,
     * moving that day's rows out of the default, and does nothing if it exists (its name is
     * written once, here; store_log_partitions_ensure calls it). The rows already logged
     * move into a table per day. */
    {33, "ALTER TABLE access_log RENAME TO access_log_unpartitioned;"
         "ALTER INDEX access_log_time RENAME TO access_log_unpartitioned_time;"
         "ALTER TABLE access_log_unpartitioned"
         " RENAME CONSTRAINT access_log_pkey TO access_log_unpartitioned_pkey;"
         "CREATE SEQUENCE access_log_ids;"
         "SELECT setval('access_log_ids', greatest(coalesce(max(id), 0), coalesce("
         "pg_sequence_last_value(pg_get_serial_sequence('access_log_unpartitioned', 'id')"
         "::regclass), 0)) + 1, false) FROM access_log_unpartitioned;"
         "ALTER TABLE access_log_unpartitioned ALTER COLUMN id DROP IDENTITY;"
         "CREATE TABLE access_log (LIKE access_log_unpartitioned INCLUDING DEFAULTS)"
         " PARTITION BY RANGE (time_ms);"
         "ALTER TABLE access_log ALTER COLUMN id SET DEFAULT nextval('access_log_ids');"
         "ALTER SEQUENCE access_log_ids OWNED BY access_log.id;"
         "ALTER TABLE access_log ADD PRIMARY KEY (id, time_ms);"
         "CREATE INDEX access_log_time ON access_log(time_ms);"
         "CREATE TABLE access_log_default PARTITION OF access_log DEFAULT;"
         "CREATE FUNCTION access_log_add_day(day BIGINT) RETURNS BOOLEAN LANGUAGE plpgsql AS $f$"
         " DECLARE"
         "  name TEXT := 'access_log_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC',"
         "   'YYYYMMDD');"
         "  lo BIGINT := day * 86400000;"
         " BEGIN"
         "  IF to_regclass(quote_ident(name)) IS NOT NULL THEN RETURN false; END IF;"
         "  EXECUTE format('CREATE TABLE %I (LIKE access_log INCLUDING DEFAULTS)', name);"
         "  EXECUTE format('WITH moved AS (DELETE FROM access_log_default"
         " WHERE time_ms >= %s AND time_ms < %s RETURNING *) INSERT INTO %I SELECT * FROM moved',"
         "   lo, lo + 86400000, name);"
         "  EXECUTE format('ALTER TABLE access_log ATTACH PARTITION %I"
         " FOR VALUES FROM (%s) TO (%s)', name, lo, lo + 86400000);"
         "  RETURN true;"
         " END $f$;"
         /* Days from 1970 to 9999 only: to_char's range; other times stay in the default. */
         "SELECT access_log_add_day(d) FROM (SELECT DISTINCT time_ms / 86400000 AS d"
         " FROM access_log_unpartitioned WHERE time_ms >= 0 AND time_ms < 253402300800000) t"
         " ORDER BY d;"
         "INSERT INTO access_log SELECT * FROM access_log_unpartitioned;"
         "DROP TABLE access_log_unpartitioned;"},
    {35, "ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_pkey;"
         "ALTER TABLE admin_tokens ADD PRIMARY KEY (owner, name);"
         "DROP INDEX IF EXISTS admin_tokens_owner;"},
    /* access_log_add_day (step 33) waited for its locks: attaching a day's table locks the
     * default table exclusively, so a session reading it (a backup, a long report) held the
     * writer, with the log writers' lock of every node, for lock_timeout, again at each try.
     * Now it takes its locks only if they are free at once, and otherwise makes nothing
     * (false): the writer tries again later, the day's rows wait in the default table. */
    {36, "CREATE OR REPLACE FUNCTION access_log_add_day(day BIGINT) RETURNS BOOLEAN"
         " LANGUAGE plpgsql AS $f$"
         " DECLARE"
         "  name TEXT := 'access_log_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC',"
         "   'YYYYMMDD');"
         "  lo BIGINT := day * 86400000;"
         " BEGIN"
         "  IF to_regclass(quote_ident(name)) IS NOT NULL THEN RETURN false; END IF;"
         "  BEGIN"
         "   LOCK TABLE ONLY access_log IN SHARE UPDATE EXCLUSIVE MODE NOWAIT;"
         "   LOCK TABLE ONLY access_log_default IN ACCESS EXCLUSIVE MODE NOWAIT;"
         "  EXCEPTION WHEN lock_not_available THEN RETURN false;"
         "  END;"
         "  EXECUTE format('CREATE TABLE %I (LIKE access_log INCLUDING DEFAULTS)', name);"
         "  EXECUTE format('WITH moved AS (DELETE FROM access_log_default"
         " WHERE time_ms >= %s AND time_ms < %s RETURNING *) INSERT INTO %I SELECT * FROM moved',"
         "   lo, lo + 86400000, name);"
         "  EXECUTE format('ALTER TABLE access_log ATTACH PARTITION %I"
         " FOR VALUES FROM (%s) TO (%s)', name, lo, lo + 86400000);"
         "  RETURN true;"
         " END $f$;"},
    /* The writer adds to the rows of the current minute, hour and day at every rollup flush.
     * With full pages (fillfactor 100) most of those updates could not stay on their page: each
     * wrote a new index entry too, and the arbiter's lookups waded through dead versions
     * (issue 13, docs/performance.md: upserts 20-70 us a key). With 30% of each new page
     * left free they are HOT updates, which page pruning reclaims. Pages written before keep
     * their fill; new buckets go to new pages. */
    {37, "ALTER TABLE access_rollup SET (fillfactor = 70);"},
    {39, "CREATE TABLE access_log_minutes("
         " minute_ms BIGINT PRIMARY KEY,"
         " first_id BIGINT NOT NULL,"
         " last_id BIGINT NOT NULL,"
         " row_count BIGINT NOT NULL);"},
    /* Made again with fillfactor 70, as step 37 set it for the table before. */
    {46, "DROP TABLE access_rollup;"
         "CREATE TABLE access_rollup("
         " level_ms BIGINT NOT NULL,"
         " dim INTEGER NOT NULL,"
         " bucket_ms BIGINT NOT NULL,"
         " key TEXT NOT NULL,"
         " node TEXT NOT NULL,"
         " requests BIGINT NOT NULL,"
         " blocked BIGINT NOT NULL,"
         " reported BIGINT NOT NULL,"
         " bytes_up BIGINT NOT NULL,"
         " bytes_down BIGINT NOT NULL,"
         " blocked_bytes BIGINT NOT NULL,"
         " reported_bytes BIGINT NOT NULL,"
         " PRIMARY KEY(level_ms, dim, bucket_ms, key, node)) WITH (fillfactor = 70);"
         "UPDATE access_rollup_state SET rolled_id = 0;"
         "DELETE FROM access_log_minutes;"},
    {49, "CREATE TABLE access_visits("
         " level_ms BIGINT NOT NULL,"
         " bucket_ms BIGINT NOT NULL,"
         " host TEXT NOT NULL,"
         " client TEXT NOT NULL,"
         " \"user\" TEXT NOT NULL,"
         " node TEXT NOT NULL,"
         " requests BIGINT NOT NULL,"
         " blocked BIGINT NOT NULL,"
         " first_ms BIGINT,"
         " last_ms BIGINT,"
         " PRIMARY KEY(level_ms, bucket_ms, host, client, \"user\", node))"
         " WITH (fillfactor = 70);"
         "DELETE FROM access_rollup;"
         "ALTER TABLE access_rollup_state RENAME TO access_rollup_mark;"
         "UPDATE access_rollup_mark SET rolled_id = 0;"
         "DELETE FROM access_log_minutes;"},
    {50, "ALTER TABLE access_rollup ADD COLUMN min_id BIGINT;"
         "ALTER TABLE access_rollup ADD COLUMN max_id BIGINT;"},
};
const size_t store_migrations_pg_count =
    sizeof(store_migrations_pg) / sizeof(store_migrations_pg[0]);

const size_t store_migrations_count = sizeof(store_migrations) / sizeof(store_migrations[0]);

const char *store_name(const struct store *st)
{
    /* A conninfo may hold a password: messages name the engine instead. */
    return st->backend == STORE_PG ? "PostgreSQL" : st->path;
}

int store_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int store_sql_err(struct store *st, char *err, size_t errlen, const char *what)
{
    return store_errf(err, errlen, "%s: %s", what, sql_errmsg(st));
}

int store_exec(struct store *st, const char *sql, char *err, size_t errlen)
{
    char msg[256];

    if (sql_exec_script(st, sql, msg, sizeof(msg)) < 0)
        return store_errf(err, errlen, "%s: %s", sql, msg);
    return 0;
}

int store_exec_text(struct store *st, const char *sql, const char *arg, const char *what, char *err,
                    size_t errlen)
{
    struct sql_stmt *stmt;
    int rc;

    if (store_prepare(st, sql, &stmt, err, errlen) < 0)
        return -1;
    sql_bind_text(stmt, 1, arg);
    rc = sql_step(stmt);
    sql_finalize(stmt);
    return rc == SQL_DONE ? 0 : store_sql_err(st, err, errlen, what);
}

int store_array_reserve(void *vp, size_t *cap, size_t len, size_t first, size_t elem)
{
    void *v, *nv;
    size_t ncap;

    if (len < *cap)
        return 0;
    /* vp is a T ** for some T: copied through memcpy, not cast to void **. */
    memcpy(&v, vp, sizeof(v));
    ncap = *cap ? *cap * 2 : first;
    nv = realloc(v, ncap * elem);
    if (!nv)
        return -1;
    memcpy(vp, &nv, sizeof(nv));
    *cap = ncap;
    return 0;
}

int store_rows_read(struct store *st, struct sql_stmt *s, store_row_fill fill, size_t elem,
                    void *vp, size_t *n, const char *what, char *err, size_t errlen)
{
    char *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *n = 0;
    memcpy(vp, &v, sizeof(v)); /* NULL until the rows are in */
    while ((rc = sql_step(s)) == SQL_ROW) {
        if (store_array_reserve(&v, &cap, len, 8, elem) < 0) {
            sql_finalize(s);
            free(v);
            return store_errf(err, errlen, "%s: out of memory", what);
        }
        fill(s, v + len++ * elem);
    }
    sql_finalize(s);
    if (rc != SQL_DONE) {
        free(v);
        return store_sql_err(st, err, errlen, what);
    }
    memcpy(vp, &v, sizeof(v));
    *n = len;
    return 0;
}

int store_row_read(struct store *st, struct sql_stmt *s, store_row_fill fill, void *out,
                   const char *what, char *err, size_t errlen)
{
    int rc = sql_step(s);

    if (rc == SQL_ROW)
        fill(s, out);
    sql_finalize(s);
    if (rc == SQL_ROW || rc == SQL_DONE)
        return rc == SQL_ROW ? 0 : 1;
    return store_sql_err(st, err, errlen, what);
}

/* Open transaction levels on st: the outer BEGIN IMMEDIATE, then one savepoint per nested
 * store_begin. SQLite may end a transaction by itself after some errors: then none is open. */
static int tx_depth(struct store *st)
{
    if (!sql_in_transaction(st))
        st->depth = 0;
    return st->depth;
}

int store_begin(struct store *st, char *err, size_t errlen)
{
    if (tx_depth(st) == 0) {
        store_pg_revive(st); /* BEGIN fails below if that did not help */
        st->version_pending = st->in_group = st->message_set = st->lists_changed = false;
        st->lists_like = 0;
        st->version_actor[0] = st->version_message[0] = '\0';
    }
    if (store_exec(st,
                   tx_depth(st)         ? "SAVEPOINT nested"
                   : st->no_policy_lock ? sql_frag(st, SQL_BEGIN_LOG)
                                        : sql_frag(st, SQL_BEGIN_WRITE),
                   err, errlen) < 0) {
        store_rollback(st); /* PostgreSQL: a BEGIN whose lock failed is still open */
        return -1;
    }
    st->depth++;
    return 0;
}

int store_commit(struct store *st, char *err, size_t errlen)
{
    if (tx_depth(st) > 1) {
        if (store_exec(st, "RELEASE nested", err, errlen) < 0) {
            store_rollback(st);
            return -1;
        }
        st->depth--;
        return 0;
    }
    /* PostgreSQL: the other nodes listening (store_policy_wait) hear of the new version as
     * this commits (a NOTIFY goes out with its transaction, or not at all). */
    if (st->version_pending &&
        (store_version_record(st, err, errlen) < 0 ||
         (st->backend == STORE_PG &&
          store_exec(st, "NOTIFY " STORE_POLICY_CHANNEL, err, errlen) < 0))) {
        store_rollback(st);
        return -1;
    }
    if (sql_flush(st) < 0 || sql_tx_failed(st)) {
        store_sql_err(st, err, errlen, "commit");
        store_rollback(st);
        return -1;
    }
    st->depth = 0;
    st->version_pending = st->in_group = false;
    if (store_exec(st, "COMMIT", err, errlen) < 0) {
        store_rollback(st);
        return -1;
    }
    return 0;
}

void store_rollback(struct store *st)
{
    if (tx_depth(st) > 1) {
        /* Undoes this level only; the savepoint itself must then be released. */
        sql_exec_script(st, "ROLLBACK TO nested; RELEASE nested", NULL, 0);
        st->depth--;
        return;
    }
    st->depth = 0;
    st->version_pending = st->in_group = false;
    if (sql_in_transaction(st))
        sql_exec_script(st, "ROLLBACK", NULL, 0);
}

static int read_version(struct store *st, int *version, char *err, size_t errlen)
{
    struct sql_stmt *stmt;
    int rc;

    /* A fresh file has no table yet: create it as version 0. */
    if (store_exec(st, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)", err,
                   errlen) < 0)
        return -1;
    if (store_prepare(st, "SELECT max(version) FROM schema_version", &stmt, err, errlen) < 0)
        return -1;
    rc = sql_step(stmt);
    *version = rc == SQL_ROW ? sql_col_int(stmt, 0) : 0;
    sql_finalize(stmt);
    if (rc != SQL_ROW)
        return store_sql_err(st, err, errlen, "schema_version");
    return 0;
}

/* Runs sql (one statement; ?1, if it has one, is v). Returns its first column's integer, 0 when it
 * returns no row, or -1 with err. */
static int step_query(struct store *st, const char *sql, int v, char *err, size_t errlen)
{
    struct sql_stmt *stmt;
    int rc, out = 0;

    if (store_prepare(st, sql, &stmt, err, errlen) < 0)
        return -1;
    sql_bind_int64(stmt, 1, v);
    rc = sql_step(stmt);
    if (rc == SQL_ROW)
        out = sql_col_int(stmt, 0);
    sql_finalize(stmt);
    if (rc != SQL_ROW && rc != SQL_DONE)
        return store_sql_err(st, err, errlen, "schema_steps");
    return out;
}

/* Whether step v has run on this database: 1, 0, or -1 with err. */
static int step_ran(struct store *st, int v, char *err, size_t errlen)
{
    return step_query(st, "SELECT count(*) FROM schema_steps WHERE version = ?1", v, err, errlen);
}

static int step_record(struct store *st, int v, char *err, size_t errlen)
{
    return step_query(st, "INSERT INTO schema_steps(version) VALUES (?1)", v, err, errlen);
}

/* The steps table, and for a database from before it was kept (none recorded, version > 0)
 * the steps such a database has run: all up to its version. Returns 0 or -1 with err. */
static int steps_begin(struct store *st, int version, char *err, size_t errlen)
{
    int recorded;

    if (store_exec(st, "CREATE TABLE IF NOT EXISTS schema_steps(version INTEGER PRIMARY KEY)", err,
                   errlen) < 0)
        return -1;
    recorded = step_query(st, "SELECT count(*) FROM schema_steps", 0, err, errlen);
    if (recorded != 0)
        return recorded < 0 ? -1 : 0;
    for (size_t i = 0; i < store_migrations_count && store_migrations[i].version <= version; i++)
        if (step_record(st, store_migrations[i].version, err, errlen) < 0)
            return -1;
    return 0;
}

/* The SQL of step m on st's engine. */
static const char *migration_sql(const struct store *st, const struct store_migration *m)
{
    for (size_t i = 0; st->backend == STORE_PG && i < store_migrations_pg_count; i++)
        if (store_migrations_pg[i].version == m->version)
            return store_migrations_pg[i].sql;
    return m->sql;
}

/* Whether the database has run every step of this program and none newer, read without any
 * lock: then opening a connection (pooled ones, reconnections, each thread's) takes no write
 * lock. The check and the steps under the lock took the nodes' policy lock (PostgreSQL) or the
 * write lock (SQLite) for a few dozen statements at every open, so a node stopped or cut off
 * in the middle of one held policy changes on every node until its session ended. A step is
 * recorded in the transaction that ran it, so what this reads as done is done. False for
 * anything else (a fresh database, an error, another program's steps): the locked path
 * decides and reports. */
static bool steps_all_ran(struct store *st)
{
    struct sql_stmt *s;
    int64_t version = -1, ran = -1;
    int rc;

    if (store_prepare(st,
                      "SELECT (SELECT max(version) FROM schema_version),"
                      " (SELECT count(*) FROM schema_steps)",
                      &s, NULL, 0) < 0)
        return false;
    rc = sql_step(s);
    if (rc == SQL_ROW) {
        version = sql_col_int64(s, 0);
        ran = sql_col_int64(s, 1);
    }
    sql_finalize(s);
    return rc == SQL_ROW && version == store_migrations[store_migrations_count - 1].version &&
           ran == (int64_t)store_migrations_count;
}

static int migrate(struct store *st, char *err, size_t errlen)
{
    int version;
    char msg[256];
    const char *sql;
    struct sql_stmt *stmt;

    if (steps_all_ran(st))
        return 0;
    /* The version is read under the write lock so two processes opening a fresh file at
     * once do not both run step 1. */
    if (store_begin(st, err, errlen) < 0)
        return -1;
    if (read_version(st, &version, err, errlen) < 0)
        goto fail;
    if (version > store_migrations[store_migrations_count - 1].version) {
        store_errf(err, errlen, "%s: schema version %d is newer than this program (%d)",
                   store_name(st), version, store_migrations[store_migrations_count - 1].version);
        goto fail;
    }
    /* Steps are numbered ahead and may be added out of order (a step 9 after an 11), so each
     * step run is recorded and any step not yet run runs, not only those above the highest.
     * A database from before steps were recorded has run every step up to its version. */
    if (steps_begin(st, version, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < store_migrations_count; i++) {
        int ran = step_ran(st, store_migrations[i].version, err, errlen);
        if (ran < 0)
            goto fail;
        if (ran)
            continue;
        sql = migration_sql(st, &store_migrations[i]);
        /* Constant multi-statement DDL from the table above, never user input. */
        if (sql_exec_script(st, sql, msg, sizeof(msg)) < 0) {
            store_errf(err, errlen, "%s: migration to version %d: %s", store_name(st),
                       store_migrations[i].version, msg);
            goto fail;
        }
        if (step_record(st, store_migrations[i].version, err, errlen) < 0)
            goto fail;
        if (store_migrations[i].version > version)
            version = store_migrations[i].version;
    }
    if (store_exec(st, "DELETE FROM schema_version", err, errlen) < 0 ||
        store_prepare(st, "INSERT INTO schema_version(version) VALUES (?)", &stmt, err, errlen) < 0)
        goto fail;
    sql_bind_int64(stmt, 1, version);
    if (sql_step(stmt) != SQL_DONE) {
        sql_finalize(stmt);
        store_sql_err(st, err, errlen, "schema_version");
        goto fail;
    }
    sql_finalize(stmt);
    return store_commit(st, err, errlen);
fail:
    store_rollback(st);
    return -1;
}

/* The database holds password hashes and browsing history. SQLite would create it 0644 less
 * the umask, and makes its -wal and -shm with the database file's own mode: creating the
 * file 0600 first keeps all three private whatever the umask. A failure is left for SQLite
 * to report in its own words. */
static void create_private(const char *path)
{
    int fd;

    if (!*path || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return;
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

/* A session setting's value unless the conninfo set it (its options or PGOPTIONS: the server
 * gives the setting's source as "client"). */
#define PG_SET_UNLESS_CLIENT                                                                       \
    "SELECT set_config(v.name, v.value, false) FROM (VALUES %s) AS v(name, value)"                 \
    " JOIN pg_settings s ON s.name = v.name WHERE s.source <> 'client'"

/* The settings of a PostgreSQL session, at its start and again after a reconnection.
 * lock_timeout is SQLite's busy timeout (the caller's): a lock held elsewhere fails the
 * statement after that long instead of holding the caller (the log writer) indefinitely.
 * Notices (a DROP ... CASCADE's) are not errors: nobody reads them. */
static int pg_session(struct store *st, char *err, size_t errlen)
{
    char values[64], sql[512];

    snprintf(values, sizeof(values), "('lock_timeout', '%d')", st->busy_timeout_ms);
    snprintf(sql, sizeof(sql),
             "SET client_min_messages = warning; SET TIME ZONE 'UTC'; " PG_SET_UNLESS_CLIENT,
             values);
    return sql_exec_script(st, sql, err, errlen);
}

/* Each purpose's limits, in ms (0: none), set after the migrations (which may take long and
 * are not to be cut short). statement_timeout: a runaway query ends, and its caller (a thread
 * that a stop waits for) gets its answer. idle_in_transaction_session_timeout: a node that
 * freezes inside a transaction (stopped, swapped out, in a debugger) has it ended by the
 * server, and with it the log writers' or policy writers' advisory lock it holds, so the
 * other nodes go on. */
static const struct pg_purpose {
    int statement_ms;
    int idle_in_transaction_ms;
    /* answer_ms: proxyd's own bound on one wait for the server (store_sql.c, pg_wait), for
     * the server that cannot enforce the others: a frozen one (stopped, or packets dropped
     * while TCP stays open) answers nothing and trips no keepalive. Past it the connection
     * is closed and opened again at the next statement. A server that works ends a statement
     * at statement_timeout, so the bound is that and 5 s more; the writer's is shorter (its
     * batch then waits in the spill, and is sent once: log_delivery, store_log.c). */
    int answer_ms;
} pg_purposes[STORE_PURPOSE_COUNT] = {
    /* Searches and dashboards read rollups and indexes, well under a second at 100M rows; a
     * minute is for the rare full scan. Its transactions are a request's. */
    [STORE_FOR_ADMIN] = {60000, 30000, 65000},
    /* Streams the whole log through one query: as long as the download takes (each page a
     * statement, each waited for within the admin's bound). */
    [STORE_FOR_EXPORT] = {0, 30000, 65000},
    /* A batch, a rollup step or a retention step each take well under a second; the writer
     * never waits inside its transaction for anything but the database. */
    [STORE_FOR_LOG_WRITER] = {60000, 10000, 15000},
    /* One small upsert and one read every 5 s: more is a stuck server. */
    [STORE_FOR_NODE_BEAT] = {10000, 10000, 15000},
    /* LISTEN and a version read; the wait itself is outside any statement. */
    [STORE_FOR_POLICY_WATCH] = {10000, 10000, 15000},
};

static int pg_limits(struct store *st, char *err, size_t errlen)
{
    const struct pg_purpose *p = &pg_purposes[st->purpose];
    char values[160], sql[512];

    snprintf(values, sizeof(values),
             "('statement_timeout', '%d'), ('idle_in_transaction_session_timeout', '%d')",
             p->statement_ms, p->idle_in_transaction_ms);
    snprintf(sql, sizeof(sql), PG_SET_UNLESS_CLIENT, values);
    st->answer_ms = p->answer_ms;
    return sql_exec_script(st, sql, err, errlen);
}

/* A server that does not answer (a host that is down, packets dropped, a frozen postmaster)
 * costs a caller at most PG_CONNECT_TIMEOUT seconds a try, not the system's TCP timeout of
 * minutes; one that vanishes later is noticed by the keepalives (idle 10 s, then 3 probes 5 s
 * apart) or, while data waits for its acknowledgement, after tcp_user_timeout. (A server that
 * is frozen but whose host still answers TCP is noticed by none of them: the purpose's answer
 * bound ends the wait, pg_purposes.) Whatever of these the conninfo gives wins: it comes after,
 * libpq keeps the last. */
static PGconn *pg_connect(const char *conninfo)
{
    static const char *const defaults[][2] = {
        {"connect_timeout", PG_CONNECT_TIMEOUT},
        {"keepalives", "1"},
        {"keepalives_idle", "10"},
        {"keepalives_interval", "5"},
        {"keepalives_count", "3"},
        {"tcp_user_timeout", "30000"},
    };
    enum { N = sizeof(defaults) / sizeof(defaults[0]) };
    const char *keys[N + 2], *values[N + 2];

    for (size_t i = 0; i < N; i++) {
        keys[i] = defaults[i][0];
        values[i] = defaults[i][1];
    }
    keys[N] = "dbname";
    values[N] = conninfo;
    keys[N + 1] = values[N + 1] = NULL;
    return PQconnectdbParams(keys, values, 1);
}

static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int store_pg_revive(struct store *st)
{
    int64_t now = clock_mono_ms();

    if (st->backend != STORE_PG || st->depth > 0 || st->pg_pipeline)
        return 0;
    /* An idle connection whose server went away shows it only once read: what the server
     * said as it left (a shutdown's FATAL, the end of the stream) is read now, without
     * waiting (libpq's socket never blocks), so this statement need not fail for it. */
    /* Twice: the first read may take the server's last message, the second its end. */
    for (int i = 0;
         i < 2 && PQstatus(st->pg) == CONNECTION_OK && PQtransactionStatus(st->pg) == PQTRANS_IDLE;
         i++)
        PQconsumeInput(st->pg);
    if (PQstatus(st->pg) == CONNECTION_OK)
        return 0;
    /* A server that is away costs each caller one attempt a second, not one a statement;
     * none once a stop gave up on it. */
    if (now < st->pg_revive_ms || store_pg_given_up())
        return -1;
    st->pg_revive_ms = now + PG_REVIVE_MS;
    st->pg_pipeline = st->pg_pipeline_failed = false;
    st->pg_unsynced = 0;
    PQreset(st->pg);
    if (PQstatus(st->pg) != CONNECTION_OK || PQsetnonblocking(st->pg, 1) != 0 ||
        pg_session(st, NULL, 0) < 0 || pg_limits(st, NULL, 0) < 0)
        return -1;
    st->revived++;
    return 0;
}

static pthread_once_t sqlite_setup_once = PTHREAD_ONCE_INIT;
/* SQLite's allocator keeps process-wide memory statistics behind a global mutex: a lock and
 * an unlock around every allocation, six allocations a log row (cursors, records). Nothing
 * reads those statistics (sqlite3_memory_used, sqlite3_status), so they are switched off
 * before SQLite starts. Once only; if SQLite has already started (a caller opened a
 * connection of its own first), the call is refused and everything works as before. */
static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct store *store_open_timeout(const char *path, enum store_purpose purpose, int busy_timeout_ms,
                                 char *err, size_t errlen)
{
    struct store *st;
    int rc;

    st = calloc(1, sizeof(*st));
    if (!st || !(st->path = strdup(path))) {
        free(st);
        store_errf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    if (store_path_is_pg(path)) {
        st->backend = STORE_PG;
        st->busy_timeout_ms = busy_timeout_ms;
        st->purpose = (unsigned)purpose < STORE_PURPOSE_COUNT ? purpose : STORE_FOR_ADMIN;
        if (store_pg_given_up()) {
            store_errf(err, errlen, "PostgreSQL: not connecting, proxyd is stopping");
            goto fail;
        }
        st->pg = pg_connect(path);
        if (PQstatus(st->pg) != CONNECTION_OK) {
            store_errf(err, errlen, "PostgreSQL: %s", PQerrorMessage(st->pg));
            goto fail;
        }
        /* What the server says outside an answer (a shutdown's FATAL) is not printed on
         * proxyd's standard error: the failure it causes is reported where it matters. */
        PQsetNoticeProcessor(st->pg, pg_quiet, NULL);
        /* Every wait is then store_sql.c's, with its bound (pg_wait). */
        if (PQsetnonblocking(st->pg, 1) != 0) {
            store_errf(err, errlen, "PostgreSQL: %s", PQerrorMessage(st->pg));
            goto fail;
        }
        /* The session's settings wait within the purpose's bound (a server that froze just
         * after the connection is not waited for without end); a migration may rightly take
         * long, so it has none; pg_limits sets the bound for good. */
        st->answer_ms = pg_purposes[st->purpose].answer_ms;
        st->cut_means_frozen =
            pg_purposes[st->purpose].statement_ms > 0 &&
            pg_purposes[st->purpose].answer_ms > pg_purposes[st->purpose].statement_ms;
        if (pg_session(st, err, errlen) < 0)
            goto fail;
        st->answer_ms = 0;
        if (migrate(st, err, errlen) < 0 || pg_limits(st, err, errlen) < 0)
            goto fail;
        return st;
    }
    create_private(path);
    pthread_once(&sqlite_setup_once, sqlite_setup);
    /* NOMUTEX: one struct store is used by one thread at a time (store.h). */
    rc = sqlite3_open_v2(path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        store_errf(err, errlen, "%s: %s", path, st->db ? sql_errmsg(st) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 0);
    sqlite3_busy_timeout(st->db, busy_timeout_ms);
    /* WAL lets admin readers run while the writer commits; synchronous=NORMAL syncs only at
     * checkpoints, so a power cut loses at most the last commits, never the database. The
     * journal cap keeps the WAL from staying huge after a burst. */
    if (sqlite3_exec(st->db,
                     "PRAGMA journal_mode=WAL;"
                     "PRAGMA synchronous=NORMAL;"
                     "PRAGMA foreign_keys=ON;"
                     "PRAGMA secure_delete=OFF;"
                     "PRAGMA journal_size_limit=67108864;"
                     "PRAGMA cache_size=-16384;"
                     "PRAGMA mmap_size=268435456;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        store_errf(err, errlen, "%s: %s", path, sql_errmsg(st));
        goto fail;
    }
    if (migrate(st, err, errlen) < 0)
        goto fail;
    return st;
fail:
    store_close(st);
    return NULL;
}

struct store *store_open_for(const char *path, enum store_purpose purpose, char *err, size_t errlen)
{
    return store_open_timeout(path, purpose, ADMIN_BUSY_TIMEOUT_MS, err, errlen);
}

struct store *store_open(const char *path, char *err, size_t errlen)
{
    return store_open_for(path, STORE_FOR_ADMIN, err, errlen);
}

struct store *store_open_lean(const char *path, char *err, size_t errlen)
{
    struct store *st = store_open_for(path, STORE_FOR_EXPORT, err, errlen);

    /* Pages read through the memory map count in the process's resident size: a read of
     * the whole log would grow it by the size of the file. */
    if (st && st->backend == STORE_SQLITE &&
        sqlite3_exec(st->db, "PRAGMA mmap_size=0; PRAGMA cache_size=-2048;", NULL, NULL, NULL) !=
            SQLITE_OK) {
        store_sql_err(st, err, errlen, "lean connection");
        store_close(st);
        return NULL;
    }
    return st;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    /* sqlite3_close_v2 would leave a zombie if a statement leaked; every path finalizes. */
    store_kept_drop(st);
    if (st->pg)
        PQfinish(st->pg);
    else
        sqlite3_close(st->db);
    free(st->retention_tally);
    store_rollup_free(st->retention_acc);
    free(st->path);
    free(st);
}

int store_schema_version(struct store *st)
{
    int version;

    if (read_version(st, &version, NULL, 0) < 0)
        return -1;
    return version;
}

const char *store_decision_str(enum store_decision d)
{
    static const char *const names[STORE_DECISION_COUNT] = {"allow", "deny", "auth", "report"};

    if ((unsigned)d >= STORE_DECISION_COUNT)
        return "unknown";
    return names[d];
}
