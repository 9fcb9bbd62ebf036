/* tls file: reading and writing the PEM files tls/ keeps in the data folder (certificates,
 * keys), shared by the self-made server pair (cred.c) and the local CA (ca.c). */
#ifndef PX_TLS_FILE_H
#define PX_TLS_FILE_H

#include <sys/types.h>

/* Reads path whole as a NUL-terminated string (PEM, at most a megabyte). Returns it (free)
 * or NULL with errno set. */
char *tls_file_read(const char *path);
/* Writes text to path through a temporary file, fsync and a rename, with mode (0600 for a
 * key): a reader sees the old file or the new one, never a part. Returns 0, or -1 with err
 * filled. */
int tls_file_write(const char *path, const char *text, mode_t mode, char *err, size_t errlen);

#endif
