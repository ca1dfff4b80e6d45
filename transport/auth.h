/* Registry authentication: WWW-Authenticate challenges, bearer-token responses, and the
 * credential files shared with podman/skopeo/docker (auth.json, ~/.docker/config.json).
 *
 * Credentials never reach the log: functions here log file names and registry names only.
 *
 * Lookup order for credentials of a registry (first hit wins):
 *   --creds USER:PASS (handled by the caller), --authfile FILE (only that file), otherwise
 *   $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json (root without
 *   XDG_RUNTIME_DIR: /run/containers/0/auth.json, as podman), ~/.config/containers/auth.json,
 *   ~/.docker/config.json.
 * Inside a file, "auths" keys may be "host[:port]", "host[:port]/repo/prefix" (longest prefix
 * wins), or docker's legacy "https://host/v1/" form.  An entry's "auth" is base64(user:pass).
 * A "credHelpers" entry for the host (or "credsStore") runs docker-credential-NAME get.
 */
#ifndef BERTH_AUTH_H
#define BERTH_AUTH_H

#include "common/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define AUTH_FILE_MAX (1024 * 1024)
/* An "identitytoken" entry (OAuth2 refresh token) is returned as this user name with the token
 * as password, as containers/image does; the token endpoint is then asked with a POST
 * grant_type=refresh_token instead of Basic credentials. */
#define AUTH_IDENTITY_TOKEN_USER "<token>"
#define AUTH_TOKEN_MAX           (64 * 1024)

enum auth_scheme { AUTH_SCHEME_NONE = 0, AUTH_SCHEME_BASIC, AUTH_SCHEME_BEARER };

struct auth_challenge {
    enum auth_scheme scheme;
    char *realm;   /* owned, may be NULL */
    char *service; /* owned, may be NULL */
    char *scope;   /* owned, may be NULL */
};

/* Parses a WWW-Authenticate header value (one or several challenges separated by commas).
 * Bearer is preferred over Basic when both are offered.  Unknown schemes give
 * AUTH_SCHEME_NONE with an error. */
BERTH_MUST_CHECK int auth_challenge_parse(const char *header, struct auth_challenge *out,
                                          berth_error_t *err);
void auth_challenge_clear(struct auth_challenge *c);

/* Parses a token endpoint's JSON answer: "token" or "access_token"; "expires_in" seconds
 * (default 60 when absent or smaller).  *token owned by caller. */
BERTH_MUST_CHECK int auth_parse_token_response(const char *body, size_t len, char **token,
                                               int64_t *expires_in, berth_error_t *err);

/* "USER:PASS" (or "USER" alone: *pass NULL). */
BERTH_MUST_CHECK int auth_parse_creds(const char *creds, char **user, char **pass,
                                      berth_error_t *err);

/* base64 helpers (standard alphabet, padded). */
char *auth_base64_encode(const void *data, size_t len);
BERTH_MUST_CHECK int auth_base64_decode(const char *s, char **out, size_t *len, berth_error_t *err);

/* Decodes an auth.json "auth" value into user and password. */
BERTH_MUST_CHECK int auth_decode_entry(const char *b64, char **user, char **pass,
                                       berth_error_t *err);

/* Default files to read, in order, NULL-terminated, owned by caller. */
char **auth_default_files(void);

/* Looks `registry` ("host[:port]") / `repo` (may be NULL) up in one file.  A missing file is not
 * an error (*found false).  A present but malformed file is. */
BERTH_MUST_CHECK int auth_lookup_in_file(const char *path, const char *registry, const char *repo,
                                         char **user, char **pass, bool *found, berth_error_t *err);

/* Looks up in auth_file when given, else in auth_default_files(). */
BERTH_MUST_CHECK int auth_lookup(const char *auth_file, const char *registry, const char *repo,
                                 char **user, char **pass, bool *found, berth_error_t *err);

/* The file `login` writes and `logout` edits: auth_file, else $REGISTRY_AUTH_FILE, else
 * ${XDG_RUNTIME_DIR}/containers/auth.json (root: /run/containers/0/auth.json), else
 * ~/.config/containers/auth.json. */
char *auth_write_path(const char *auth_file);

/* Adds/replaces the entry for key (registry or registry/repo), writing the file atomically
 * with mode 0600 and creating missing parent directories with mode 0700. */
BERTH_MUST_CHECK int auth_store(const char *path, const char *key, const char *user,
                                const char *pass, berth_error_t *err);

/* Removes the entry for key, or every entry when key is NULL.  *removed says whether one
 * existed. */
BERTH_MUST_CHECK int auth_remove(const char *path, const char *key, bool *removed,
                                 berth_error_t *err);

#endif
