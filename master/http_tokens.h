/* http_tokens.h: bearer tokens for the master's HTTP API (config key
 * http_tokens). The file must be mode 0600 (like password files) and holds
 * lines "ROLE TOKEN" (role read | submit | admin, roles.h); '#' starts a
 * comment, blank lines are skipped. Tokens are compared in constant time and
 * never logged or copied into an error message.
 */
#ifndef RACKRUN_MASTER_HTTP_TOKENS_H
#define RACKRUN_MASTER_HTTP_TOKENS_H

#include <stddef.h>

#include "roles.h"

typedef struct _rr_http_tokens_t rr_http_tokens_t;

/* Load PATH (refused unless 0600 or stricter). NULL with ERR ("file:line: ..."). */
rr_http_tokens_t *rr_http_tokens_load(const char *path, char *err, size_t errlen);

/* Free the tokens (zeroed first) and NULL *SELF_P. */
void rr_http_tokens_destroy(rr_http_tokens_t **self_p);

/* The role of an "Authorization" header value ("Bearer TOKEN"; NULL = none):
 * the best role of a matching token, or RR_ROLE_NONE. */
rr_role_t rr_http_tokens_role(const rr_http_tokens_t *self, const char *authorization);

#endif
