/* conn_size: the bytes proxyd holds for one client connection, by what the connection is
 * doing, from the types themselves (a figure no load changes): every open connection is a
 * struct conn; a request in flight adds a slot of the worker's req_pool (its access record and
 * the origin's addresses); moving bytes adds I/O buffers. Beside it, proxy_bench.sh's RSS
 * column measures the same per idle connection from the outside. */
#include <stdio.h>

#include "proxy/buf.h"
#include "proxy/conn.h"
#include "proxy/req_pool.h"

int main(void)
{
    size_t idle = sizeof(struct conn), slot = sizeof(struct req_slot);
    printf("struct conn, any open connection:            %6zu bytes\n", idle);
    printf("request slot, while a request is in flight:   %6zu bytes\n", slot);
    printf("I/O buffer, while bytes move (one each way): %6d bytes\n", BUF_SIZE);
    printf("idle connection / connection with a request in flight: %.2f\n",
           (double)idle / (double)(idle + slot));
    return 0;
}
