/* Ignore files: moby patternmatcher semantics (see ignore.h). */
#include "build/ignore.h"
#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum match_type { M_EXACT, M_PREFIX, M_SUFFIX, M_REGEXP };

enum tok_kind { T_LIT, T_STAR, T_QMARK, T_DSTAR_SLASH, T_DSTAR_ALL, T_CLASS };

struct tok {
    enum tok_kind kind;
    char c;
    bool negate;      /* T_CLASS */
    uint32_t *ranges; /* T_CLASS: nranges pairs of code points lo..hi */
    size_t nranges;
};

struct pattern {
    char *text;    /* cleaned pattern, "!" removed */
    char *display; /* as given to users ("!" kept) */
    bool exclusion;
    enum match_type type;
    struct tok *toks;
    size_t ntoks;
};

struct ignore {
    struct pattern *pats;
    size_t n;
    bool exclusions;
};

/* ---- Go's filepath.Clean ---- */

static char *go_clean(const char *path)
{
    if (!path[0])
        return xstrdup(".");
    bool rooted = path[0] == '/';
    size_t n = strlen(path);
    char *out = xmalloc(n + 2);
    size_t w = 0, dotdot = 0;
    if (rooted) {
        out[w++] = '/';
        dotdot = 1;
    }
    size_t r = rooted ? 1 : 0;
    while (r < n) {
        if (path[r] == '/') {
            r++;
        } else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
            r++;
        } else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            for (; r < n && path[r] != '/'; r++)
                out[w++] = path[r];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
    return out;
}

/* ---- pattern syntax check (Go's filepath.Match error cases) ---- */

/* one character of a [] range, maybe escaped; false where Go reports ErrBadPattern */
static bool skip_range_char(const char *p, size_t *i)
{
    if (!p[*i] || p[*i] == '-' || p[*i] == ']')
        return false;
    if (p[*i] == '\\') {
        if (!p[*i + 1])
            return false;
        (*i)++;
    }
    (*i)++;
    return true;
}

static bool valid_pattern(const char *p)
{
    for (size_t i = 0; p[i];) {
        if (p[i] == '\\') {
            if (!p[i + 1])
                return false;
            i += 2;
        } else if (p[i] == '[') {
            i++;
            if (p[i] == '^')
                i++;
            size_t nrange = 0;
            for (;;) {
                if (p[i] == ']' && nrange > 0) {
                    i++;
                    break;
                }
                /* lo[-hi] */
                if (!skip_range_char(p, &i))
                    return false;
                if (p[i] == '-') {
                    i++;
                    if (!skip_range_char(p, &i))
                        return false;
                }
                nrange++;
            }
        } else {
            i++;
        }
    }
    return true;
}

/* One UTF-8 character at s (n bytes available): its code point and length (an invalid byte
 * counts as one character, as Go's decoder does with RuneError). */
static size_t utf8_next(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = u[0] < 0x80         ? 1
                 : (u[0] >> 5) == 6  ? 2
                 : (u[0] >> 4) == 14 ? 3
                 : (u[0] >> 3) == 30 ? 4
                                     : 0;
    if (len == 0 || len > n) {
        *cp = 0xfffd;
        return 1;
    }
    uint32_t c = len == 1 ? u[0] : len == 2 ? u[0] & 0x1f : len == 3 ? u[0] & 0x0f : u[0] & 0x07;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        c = (c << 6) | (u[i] & 0x3f);
    }
    *cp = c;
    return len;
}

/* ---- compile (Pattern.compile) ---- */

static void add_tok(struct pattern *pt, struct tok t)
{
    pt->toks = xreallocarray(pt->toks, pt->ntoks + 1, sizeof(*pt->toks));
    pt->toks[pt->ntoks++] = t;
}

static void compile(struct pattern *pt)
{
    const char *s = pt->text;
    size_t n = strlen(s);
    pt->type = M_EXACT;
    for (size_t i = 0, k = 0; i < n; k++) {
        char ch = s[i++];
        if (ch == '*') {
            if (i < n && s[i] == '*') {
                i++;
                if (i < n && s[i] == '/')
                    i++;
                if (i >= n) {
                    if (pt->type == M_EXACT) {
                        pt->type = M_PREFIX;
                    } else {
                        pt->type = M_REGEXP;
                    }
                    add_tok(pt, (struct tok){.kind = T_DSTAR_ALL});
                } else {
                    add_tok(pt, (struct tok){.kind = T_DSTAR_SLASH});
                    pt->type = M_REGEXP;
                }
                if (k == 0)
                    pt->type = M_SUFFIX;
            } else {
                add_tok(pt, (struct tok){.kind = T_STAR});
                pt->type = M_REGEXP;
            }
        } else if (ch == '?') {
            add_tok(pt, (struct tok){.kind = T_QMARK});
            pt->type = M_REGEXP;
        } else if (ch == '\\') {
            if (i < n) {
                add_tok(pt, (struct tok){.kind = T_LIT, .c = s[i++]});
                pt->type = M_REGEXP;
            } else {
                add_tok(pt, (struct tok){.kind = T_LIT, .c = '\\'});
            }
        } else if (ch == '[') {
            struct tok t = {.kind = T_CLASS};
            if (i < n && s[i] == '^') {
                t.negate = true;
                i++;
            }
            bool first = true;
            while (i < n && (s[i] != ']' || first)) {
                first = false;
                uint32_t lo, hi;
                if (s[i] == '\\' && i + 1 < n)
                    i++;
                i += utf8_next(s + i, n - i, &lo);
                hi = lo;
                if (i + 1 < n && s[i] == '-' && s[i + 1] != ']') {
                    i++;
                    if (s[i] == '\\' && i + 1 < n)
                        i++;
                    i += utf8_next(s + i, n - i, &hi);
                }
                t.ranges = xreallocarray(t.ranges, 2 * (t.nranges + 1), sizeof(uint32_t));
                t.ranges[2 * t.nranges] = lo;
                t.ranges[2 * t.nranges + 1] = hi;
                t.nranges++;
            }
            if (i < n)
                i++; /* ']' */
            add_tok(pt, t);
            pt->type = M_REGEXP;
        } else {
            add_tok(pt, (struct tok){.kind = T_LIT, .c = ch});
        }
    }
}

/* Matcher state: failed[] remembers (token, offset) pairs known not to match, so that patterns
 * with several stars stay polynomial (docker uses RE2, which is linear). */
struct mstate {
    const struct tok *t;
    size_t nt;
    const char *s;
    size_t len;
    unsigned char *failed; /* (nt + 1) * (len + 1) bits, NULL when not needed */
};

static bool m_at(struct mstate *m, size_t ti, size_t si);

static bool m_branch(struct mstate *m, size_t ti, size_t si, bool ok)
{
    if (!ok && m->failed) {
        size_t key = ti * (m->len + 1) + si;
        m->failed[key / 8] |= (unsigned char)(1u << (key % 8));
    }
    return ok;
}

static bool m_at(struct mstate *m, size_t ti, size_t si)
{
    for (;;) {
        if (ti == m->nt)
            return si == m->len;
        if (m->failed) {
            size_t key = ti * (m->len + 1) + si;
            if (m->failed[key / 8] & (1u << (key % 8)))
                return false;
        }
        const struct tok *t = &m->t[ti];
        char c = si < m->len ? m->s[si] : '\0';
        switch (t->kind) {
        case T_LIT:
            if (si >= m->len || c != t->c)
                return false;
            si++;
            break;
        case T_QMARK: {
            if (si >= m->len || c == '/')
                return false;
            uint32_t cp;
            si += utf8_next(m->s + si, m->len - si, &cp);
            break;
        }
        case T_CLASS: {
            if (si >= m->len)
                return false;
            uint32_t cp;
            size_t l = utf8_next(m->s + si, m->len - si, &cp);
            bool in = false;
            for (size_t r = 0; r < t->nranges && !in; r++)
                in = cp >= t->ranges[2 * r] && cp <= t->ranges[2 * r + 1];
            if (in == t->negate)
                return false;
            si += l;
            break;
        }
        case T_STAR:
            for (size_t q = si;; q++) {
                if (m_at(m, ti + 1, q))
                    return true;
                if (q >= m->len || m->s[q] == '/')
                    return m_branch(m, ti, si, false);
            }
        case T_DSTAR_ALL:
            for (size_t q = si; q <= m->len; q++)
                if (m_at(m, ti + 1, q))
                    return true;
            return m_branch(m, ti, si, false);
        case T_DSTAR_SLASH:
            /* (.*\/)? : nothing, or anything up to and including a '/' */
            if (m_at(m, ti + 1, si))
                return true;
            for (size_t q = si; q < m->len; q++)
                if (m->s[q] == '/' && m_at(m, ti + 1, q + 1))
                    return true;
            return m_branch(m, ti, si, false);
        }
        ti++;
    }
}

static bool match_toks(const struct tok *t, size_t nt, const char *s)
{
    struct mstate m = {.t = t, .nt = nt, .s = s, .len = strlen(s)};
    size_t stars = 0;
    for (size_t i = 0; i < nt; i++)
        stars += t[i].kind == T_STAR || t[i].kind == T_DSTAR_ALL || t[i].kind == T_DSTAR_SLASH;
    if (stars > 1)
        m.failed = xcalloc(((nt + 1) * (m.len + 1) + 7) / 8, 1);
    bool r = m_at(&m, 0, 0);
    free(m.failed);
    return r;
}

static bool pattern_match(const struct pattern *pt, const char *path)
{
    size_t pl = strlen(pt->text);
    switch (pt->type) {
    case M_EXACT:
        return strcmp(path, pt->text) == 0;
    case M_PREFIX:
        return strncmp(path, pt->text, pl - 2) == 0;
    case M_SUFFIX: {
        const char *suffix = pt->text + 2;
        size_t sl = strlen(suffix), l = strlen(path);
        if (l >= sl && strcmp(path + l - sl, suffix) == 0)
            return true;
        return suffix[0] == '/' && strcmp(path, suffix + 1) == 0;
    }
    case M_REGEXP:
        return match_toks(pt->toks, pt->ntoks, path);
    }
    return false;
}

/* ---- construction ---- */

void ignore_free(struct ignore *ign)
{
    if (!ign)
        return;
    for (size_t i = 0; i < ign->n; i++) {
        struct pattern *p = &ign->pats[i];
        for (size_t k = 0; k < p->ntoks; k++)
            free(p->toks[k].ranges);
        free(p->toks);
        free(p->text);
        free(p->display);
    }
    free(ign->pats);
    free(ign);
}

/* ReadAll's per-line normalisation; returns NULL for lines to skip. */
static char *normalise_line(const char *line)
{
    if (line[0] == '#')
        return NULL;
    while (*line == ' ' || *line == '\t' || *line == '\r' || *line == '\n' || *line == '\v' ||
           *line == '\f')
        line++;
    size_t n = strlen(line);
    while (n > 0 && strchr(" \t\r\n\v\f", line[n - 1]))
        n--;
    if (n == 0)
        return NULL;
    cleanup_free char *pat = xstrndup(line, n);
    bool invert = pat[0] == '!';
    const char *body = pat;
    if (invert) {
        body = pat + 1;
        while (*body && strchr(" \t\r\n\v\f", *body))
            body++;
    }
    cleanup_free char *clean = NULL;
    if (*body) {
        clean = go_clean(body);
        if (strlen(clean) > 1 && clean[0] == '/')
            memmove(clean, clean + 1, strlen(clean));
    } else {
        clean = xstrdup("");
    }
    return invert ? xasprintf("!%s", clean) : steal_pointer(&clean);
}

static int add_pattern(struct ignore *ign, const char *p, berth_error_t *err)
{
    /* NewPatternMatcher: trim, skip empty, Clean, "!" handling, syntax check */
    while (*p && strchr(" \t\r\n\v\f", *p))
        p++;
    size_t n = strlen(p);
    while (n > 0 && strchr(" \t\r\n\v\f", p[n - 1]))
        n--;
    if (n == 0)
        return 0;
    cleanup_free char *raw = xstrndup(p, n);
    cleanup_free char *c = go_clean(raw);
    bool excl = false;
    const char *body = c;
    if (c[0] == '!') {
        if (c[1] == '\0')
            return berth_error_make_status(err, EINVAL, "illegal exclusion pattern: \"!\"");
        excl = true;
        body = c + 1;
    }
    if (!valid_pattern(body))
        return berth_error_make_status(err, EINVAL, "syntax error in pattern \"%s\"", c);
    ign->pats = xreallocarray(ign->pats, ign->n + 1, sizeof(*ign->pats));
    struct pattern *pt = &ign->pats[ign->n++];
    memset(pt, 0, sizeof(*pt));
    pt->text = xstrdup(body);
    pt->display = xstrdup(c);
    pt->exclusion = excl;
    if (excl)
        ign->exclusions = true;
    compile(pt);
    return 0;
}

int ignore_new(const char *const *patterns, size_t n, struct ignore **out, berth_error_t *err)
{
    cleanup_ignore struct ignore *ign = xzalloc(sizeof(*ign));
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *norm = normalise_line(patterns[i]);
        if (norm && add_pattern(ign, norm, err) < 0)
            return -1;
    }
    *out = steal_pointer(&ign);
    return 0;
}

int ignore_parse(const char *buf, size_t len, struct ignore **out, berth_error_t *err)
{
    if (len > IGNORE_FILE_MAX_SIZE)
        return berth_error_make_status(err, EFBIG, "ignore file larger than %u bytes",
                                       IGNORE_FILE_MAX_SIZE);
    cleanup_ignore struct ignore *ign = xzalloc(sizeof(*ign));
    size_t pos = 0;
    bool first = true;
    while (pos < len) {
        const char *s = buf + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - s) : len - pos;
        pos += l + (nl ? 1 : 0);
        if (first && l >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
            s += 3;
            l -= 3;
        }
        first = false;
        if (l && s[l - 1] == '\r')
            l--; /* bufio.ScanLines drops a trailing \r */
        cleanup_free char *line = xstrndup(s, l);
        cleanup_free char *norm = normalise_line(line);
        if (norm && add_pattern(ign, norm, err) < 0)
            return -1;
    }
    *out = steal_pointer(&ign);
    return 0;
}

static int open_in_root(int dirfd, const char *name)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
    int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
    if (fd < 0 && (errno == ENOSYS || errno == EPERM))
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    return fd;
}

static int read_fd(int fd, const char *what, char **out, size_t *len, berth_error_t *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "stat \"%s\"", what);
    if (!S_ISREG(st.st_mode))
        return berth_error_make_status(err, EINVAL, "\"%s\" is not a regular file", what);
    return fs_read_fd(fd, IGNORE_FILE_MAX_SIZE, what, out, len, err);
}

int ignore_load(int context_dirfd, const char *containerfile, struct ignore **out, char **source,
                berth_error_t *err)
{
    if (source)
        *source = NULL;
    struct {
        int dirfd;
        char *name;
    } cands[4];
    size_t nc = 0;
    if (containerfile) {
        cands[nc].dirfd = AT_FDCWD;
        cands[nc++].name = xasprintf("%s.containerignore", containerfile);
        cands[nc].dirfd = AT_FDCWD;
        cands[nc++].name = xasprintf("%s.dockerignore", containerfile);
    }
    cands[nc].dirfd = context_dirfd;
    cands[nc++].name = xstrdup(".containerignore");
    cands[nc].dirfd = context_dirfd;
    cands[nc++].name = xstrdup(".dockerignore");
    int ret = 0;
    bool done = false;
    for (size_t i = 0; i < nc && !done && ret == 0; i++) {
        int fd = cands[i].dirfd == AT_FDCWD ? open(cands[i].name, O_RDONLY | O_CLOEXEC)
                                            : open_in_root(cands[i].dirfd, cands[i].name);
        if (fd < 0) {
            if (errno != ENOENT)
                ret = berth_error_make(err, errno, "open \"%s\"", cands[i].name);
            continue;
        }
        char *buf = NULL;
        size_t len = 0;
        ret = read_fd(fd, cands[i].name, &buf, &len, err);
        close(fd);
        if (ret == 0) {
            ret = ignore_parse(buf, len, out, err);
            if (ret < 0)
                berth_error_wrap(err, "%s", cands[i].name);
            else if (source)
                *source = xstrdup(cands[i].name);
            done = true;
        }
        free(buf);
    }
    for (size_t i = 0; i < nc; i++)
        free(cands[i].name);
    if (ret < 0)
        return -1;
    if (!done)
        *out = xzalloc(sizeof(**out));
    return 0;
}

size_t ignore_count(const struct ignore *ign)
{
    return ign->n;
}

const char *ignore_pattern(const struct ignore *ign, size_t i)
{
    return i < ign->n ? ign->pats[i].display : NULL;
}

bool ignore_has_exceptions(const struct ignore *ign)
{
    return ign->exclusions;
}

/* ---- matching (MatchesOrParentMatches) ---- */

int ignore_matches(const struct ignore *ign, const char *relpath, bool *excluded,
                   berth_error_t *err)
{
    *excluded = false;
    if (ign->n == 0)
        return 0;
    while (relpath[0] == '/')
        relpath++;
    cleanup_free char *file = go_clean(relpath[0] ? relpath : ".");
    /* the context root itself is never excluded */
    if (strcmp(file, ".") == 0)
        return 0;
    /* parent directories: filepath.Dir(file) split on '/' */
    cleanup_free char *parent = NULL;
    char *slash = strrchr(file, '/');
    parent = slash ? xstrndup(file, (size_t)(slash - file)) : xstrdup(".");
    bool matched = false;
    for (size_t i = 0; i < ign->n; i++) {
        const struct pattern *pt = &ign->pats[i];
        if (pt->exclusion != matched)
            continue;
        bool m = pattern_match(pt, file);
        if (!m && strcmp(parent, ".") != 0) {
            cleanup_free char *prefix = xstrdup(parent);
            for (char *c = prefix;; c++) {
                if (*c == '/' || *c == '\0') {
                    char save = *c;
                    *c = '\0';
                    m = pattern_match(pt, prefix);
                    *c = save;
                    if (m || save == '\0')
                        break;
                }
            }
        }
        if (m)
            matched = !pt->exclusion;
    }
    *excluded = matched;
    return 0;
}

bool ignore_dir_may_reinclude(const struct ignore *ign, const char *reldir)
{
    if (!ign->exclusions)
        return false;
    while (reldir[0] == '/')
        reldir++;
    cleanup_free char *dir = go_clean(reldir[0] ? reldir : ".");
    cleanup_free char *dirslash = xasprintf("%s/", dir);
    size_t dl = strlen(dirslash);
    for (size_t i = 0; i < ign->n; i++) {
        const struct pattern *pt = &ign->pats[i];
        if (!pt->exclusion)
            continue;
        /* literal prefix of the pattern, up to its first special character */
        size_t pl = strcspn(pt->text, "*?[\\");
        size_t cmp = pl < dl ? pl : dl;
        if (strncmp(pt->text, dirslash, cmp) == 0)
            return true;
    }
    return false;
}
