/* acl_schedule.c: the time conditions: `schedule DAYS HH:MM-HH:MM` (parsing and "is it on
 * now") and `expires YYYY-MM-DDTHH:MM[:SS][Z]` (parsing into seconds since the epoch).
 *
 * A window whose end is earlier than its start crosses midnight. It opens at the start time
 * on each listed day and closes at the end time on the following day, so the minutes before
 * the end belong to the previous day's window: `schedule fri 22:00-06:00` holds on Friday
 * from 22:00 and on Saturday until 05:59, and not on Friday before 06:00.
 */
#include "acl/acl_rule.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int day_parse(const char *s, size_t len)
{
    if (len != 3)
        return -1;
    for (int d = 0; d < 7; d++) {
        if (strncasecmp(s, day_names[d], 3) == 0)
            return d;
    }
    return -1;
}

/* "mon-fri", "sat,sun", "daily", "mon,wed-fri"; a range may wrap ("fri-mon"). */
static int days_parse(const char *s, size_t len, uint8_t *out)
{
    if (len == 5 && strncasecmp(s, "daily", 5) == 0) {
        *out = 0x7f;
        return 0;
    }
    uint8_t days = 0;
    const char *p = s;
    const char *end = s + len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *dash = memchr(p, '-', (size_t)(e - p));
        int from, to;
        if (dash) {
            from = day_parse(p, (size_t)(dash - p));
            to = day_parse(dash + 1, (size_t)(e - dash - 1));
        } else {
            from = to = day_parse(p, (size_t)(e - p));
        }
        if (from < 0 || to < 0)
            return -1;
        for (int d = from;; d = (d + 1) % 7) {
            days |= (uint8_t)(1u << d);
            if (d == to)
                break;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = days;
    return 0;
}

/* "H:MM" or "HH:MM"; allow_24: "24:00" is accepted (as an end). Returns minutes or -1. */
static int time_parse(const char *s, size_t len, bool allow_24)
{
    if (len != 4 && len != 5)
        return -1;
    size_t colon = len - 3;
    if (s[colon] != ':')
        return -1;
    int h = 0, m = 0;
    for (size_t i = 0; i < len; i++) {
        if (i == colon)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (i < colon)
            h = h * 10 + (s[i] - '0');
        else
            m = m * 10 + (s[i] - '0');
    }
    if (m > 59)
        return -1;
    if (h == 24 && m == 0 && allow_24)
        return 1440;
    if (h > 23)
        return -1;
    return h * 60 + m;
}

int acl_schedule_parse(const char *days, size_t days_len, const char *times, size_t times_len,
                       struct acl_schedule *out, char *msg, size_t msglen)
{
    if (days_parse(days, days_len, &out->days) != 0) {
        snprintf(msg, msglen, "bad days '%.*s' (want e.g. mon-fri, sat,sun, daily)", (int)days_len,
                 days);
        return -1;
    }
    const char *dash = memchr(times, '-', times_len);
    int start = -1, end = -1;
    if (dash) {
        start = time_parse(times, (size_t)(dash - times), false);
        end = time_parse(dash + 1, (size_t)(times + times_len - dash - 1), true);
    }
    if (start < 0 || end < 0) {
        snprintf(msg, msglen, "bad time range '%.*s' (want HH:MM-HH:MM)", (int)times_len, times);
        return -1;
    }
    if (start == end) {
        snprintf(msg, msglen, "empty time range '%.*s'", (int)times_len, times);
        return -1;
    }
    out->start_min = (uint16_t)start;
    out->end_min = (uint16_t)end;
    return 0;
}

bool acl_schedule_active(const struct acl_schedule *s, const struct acl_clock *clock)
{
    int d = clock->wday;
    int m = clock->minute;
    if (d < 0 || d > 6 || m < 0 || m > 1439)
        return false;
    bool today = s->days & (1u << d);
    if (s->start_min < s->end_min)
        return today && m >= s->start_min && m < s->end_min;
    bool yesterday = s->days & (1u << ((d + 6) % 7));
    return (today && m >= s->start_min) || (yesterday && m < s->end_min);
}

/* Digits s[0..n) as a number, or -1. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil): the UTC form needs no time zone. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int acl_expiry_parse(const char *s, size_t len, int64_t *out, char *msg, size_t msglen)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool utc = len > 0 && s[len - 1] == 'Z';
    size_t n = len - utc;
    int year = -1, mon = -1, day = -1, hour = -1, min = -1, sec = 0;
    if ((n == 16 || n == 19) && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
        (n == 16 || s[16] == ':')) {
        year = digits(s, 4);
        mon = digits(s + 5, 2);
        day = digits(s + 8, 2);
        hour = digits(s + 11, 2);
        min = digits(s + 14, 2);
        if (n == 19)
            sec = digits(s + 17, 2);
    }
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || hour < 0 || hour > 23 || min < 0 ||
        min > 59 || sec < 0 || sec > 59) {
        snprintf(msg, msglen,
                 "bad time '%.*s' (want YYYY-MM-DDTHH:MM in local time, or ending in Z for UTC)",
                 (int)(len > 64 ? 64 : len), s);
        return -1;
    }
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > mdays[mon - 1] || (mon == 2 && day == 29 && !leap)) {
        snprintf(msg, msglen, "bad time '%.*s' (no such day)", (int)len, s);
        return -1;
    }
    if (utc) {
        *out = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec;
        return 0;
    }
    /* Local time, as schedules are: the time zone proxyd runs in (TZ), daylight saving
     * decided by mktime for that date. */
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec,
                    .tm_isdst = -1};
    time_t t = mktime(&tm);
    if (t == (time_t)-1) {
        snprintf(msg, msglen, "bad time '%.*s' (not a local time)", (int)len, s);
        return -1;
    }
    *out = (int64_t)t;
    return 0;
}
