/* base/addr.h: the one parser of a socket address written as text, for every setting that
 * names one (proxy listeners, the admin server, DNS servers): "IPv4:PORT" and "[IPv6]:PORT",
 * and where the caller has a default port also "IPv4", "[IPv6]" and a bare IPv6 address
 * ("::1"). Only numeric addresses: a name would need a resolver, and a listener bound to
 * whatever a name meant at start-up is a surprise. Pure, any thread. */
#ifndef PX_BASE_ADDR_H
#define PX_BASE_ADDR_H

#include <stdint.h>
#include <sys/socket.h>

/* Parses text into *ss (zeroed first) and its length into *len. default_port 0: the port is
 * required; otherwise text may leave it out and gets default_port. An IPv6 address with a port
 * must be in brackets: without them "::1:53" would be an address of its own. The port is
 * decimal digits only, 0..65535 (a caller that cannot use 0 refuses it). Returns PX_OK, or
 * PX_ERR for anything else (the caller words the error: it knows which setting this was). */
int addr_parse(const char *text, uint16_t default_port, struct sockaddr_storage *ss,
               socklen_t *len);

/* The port of an AF_INET or AF_INET6 address in host order; 0 for other families. */
uint16_t addr_port(const struct sockaddr_storage *ss);

#endif
