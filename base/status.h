/* base/status.h: the one return vocabulary of run-time calls that can be incomplete (the
 * parser, the resolver, the pumps that move bytes). A call returns PX_OK when it finished,
 * PX_AGAIN when it needs more input or readiness and should be called again later, PX_ERR
 * when it failed for good (the details go to an error struct or errno, as the call says).
 * Calls that also return a count return it as a non-negative value and use the negative
 * codes below for the other outcomes. */
#ifndef PX_BASE_STATUS_H
#define PX_BASE_STATUS_H

enum px_status {
    PX_OK = 0,
    PX_ERR = -1,
    PX_AGAIN = -2,
};

#endif
