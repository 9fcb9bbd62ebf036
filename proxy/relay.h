/* relay: an allowed HTTP request goes up and its response comes down (CONN_RELAY), every byte
 * framed exactly once (Content-Length, chunked, or until the origin closes), the response
 * head parsed and rewritten, long bodies spliced; a kept origin connection the origin closed
 * under a request is retried or left to the client. Worker thread only. */
#ifndef PX_RELAY_H
#define PX_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/conn_close.h"
#include "proxy/h1_parse.h"

struct conn;
struct conn_flow;

/* Starts the framing of one message's body: body and length as the parser said. */
void relay_flow_start(struct conn_flow *f, enum h1_body body, uint64_t length);
/* The CONN_RELAY step: moves the request up and the response down as far as the sockets let
 * it, by the response's phase (c->phase). Returns whether anything moved or the state moved
 * on (to the next request, a reply, a tunnel, or closed). */
bool relay_step(struct conn *c);
/* Fails the request in flight with why: with a page (status, detail) if the client has seen
 * nothing of a response yet, else by closing (a half-sent response cannot be taken back). */
void relay_fail(struct conn *c, enum conn_close why, int status, const char *detail);

#endif
