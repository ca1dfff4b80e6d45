/* Image-spec types: parsing of every document kind (fixtures/spec/), malformed input, size
 * limits, canonical serialisation round trips, OCI <-> Docker conversion and platform matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "common/imagespec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define H(c)             c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c
#define DA               "sha256:" H("aa")
#define DB               "sha256:" H("bb")
#define DC               "sha256:" H("cc")
#define CFG_OCI          "{\"mediaType\":\"" MEDIA_TYPE_OCI_CONFIG "\",\"digest\":\"" DA "\",\"size\":10}"
#define LAYER(mt, d, sz) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #sz "}"

static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    char *buf;
    long n;
    snprintf(path, sizeof(path), "%s/spec/%s", FIXTURES_DIR, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void test_detect(void **state)
{
    (void)state;
    struct {
        const char *doc;
        manifest_kind_t kind; /* UNKNOWN = expect error */
    } t[] = {
        {"{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\"}",
         MANIFEST_KIND_OCI_MANIFEST},
        {"{\"mediaType\":\"" MEDIA_TYPE_OCI_INDEX "\"}", MANIFEST_KIND_OCI_INDEX},
        {"{\"mediaType\":\"" MEDIA_TYPE_DOCKER_MANIFEST "\"}", MANIFEST_KIND_DOCKER_V2},
        {"{\"mediaType\":\"" MEDIA_TYPE_DOCKER_MANIFEST_LIST "\"}", MANIFEST_KIND_DOCKER_LIST},
        {"{\"mediaType\":\"" MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED "\"}", MANIFEST_KIND_DOCKER_V1},
        {"{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[],\"signatures\":[]}",
         MANIFEST_KIND_DOCKER_V1},
        {"{\"schemaVersion\":2,\"manifests\":[]}", MANIFEST_KIND_OCI_INDEX},
        {"{\"schemaVersion\":2,\"config\":" CFG_OCI ",\"layers\":[]}", MANIFEST_KIND_OCI_MANIFEST},
        {"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MEDIA_TYPE_DOCKER_CONFIG "\"}}",
         MANIFEST_KIND_DOCKER_V2},
        {"{\"schemaVersion\":2,\"layers\":[]}", MANIFEST_KIND_OCI_MANIFEST},
        {"{\"schemaVersion\":2}", MANIFEST_KIND_UNKNOWN},
        {"{\"mediaType\":\"text/plain\"}", MANIFEST_KIND_UNKNOWN},
        {"{\"mediaType\":5}", MANIFEST_KIND_UNKNOWN},
        {"not json", MANIFEST_KIND_UNKNOWN},
        {"[1,2]", MANIFEST_KIND_UNKNOWN},
    };
    /* the one detector (image_manifest_kind, also behind mf_detect) on the one parser */
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        cleanup_error berth_error_t err = NULL;
        cleanup_json json_t *j = NULL;
        manifest_kind_t k = MANIFEST_KIND_UNKNOWN;
        if (json_parse_bounded(t[i].doc, strlen(t[i].doc), IMAGE_MANIFEST_MAX_SIZE, "manifest", &j,
                               &err) == 0 &&
            json_is_object(j))
            k = image_manifest_kind(j);
        if (k != t[i].kind)
            fail_msg("detect case %zu: kind %d, want %d", i, k, t[i].kind);
    }
    /* the fixtures */
    const char *files[] = {"oci-manifest.json", "docker-manifest.json", "oci-index.json",
                           "docker-list.json"};
    manifest_kind_t kinds[] = {MANIFEST_KIND_OCI_MANIFEST, MANIFEST_KIND_DOCKER_V2,
                               MANIFEST_KIND_OCI_INDEX, MANIFEST_KIND_DOCKER_LIST};
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        cleanup_free char *buf = read_fixture(files[i], &len);
        cleanup_json json_t *j = NULL;
        assert_int_equal(json_parse_bounded(buf, len, IMAGE_MANIFEST_MAX_SIZE, files[i], &j, NULL),
                         0);
        manifest_kind_t k = image_manifest_kind(j);
        assert_int_equal(k, kinds[i]);
        const char *mt = manifest_kind_media_type(k);
        assert_true(strncmp(strstr(buf, "application/vnd"), mt, strlen(mt)) == 0);
    }
}

static void test_media_types(void **state)
{
    (void)state;
    compression_t c;
    bool nd;
    assert_true(image_layer_media_type_info(MEDIA_TYPE_OCI_LAYER_ZSTD, &c, &nd));
    assert_int_equal(c, COMPRESSION_ZSTD);
    assert_false(nd);
    assert_true(image_layer_media_type_info(MEDIA_TYPE_DOCKER_LAYER_GZIP, &c, &nd));
    assert_int_equal(c, COMPRESSION_GZIP);
    assert_true(image_layer_media_type_info(MEDIA_TYPE_DOCKER_FOREIGN_GZIP, &c, &nd));
    assert_true(nd);
    assert_true(image_layer_media_type_info(MEDIA_TYPE_OCI_LAYER_ND_TAR, &c, &nd));
    assert_true(nd);
    assert_int_equal(c, COMPRESSION_NONE);
    assert_true(image_layer_media_type_info(MEDIA_TYPE_OCI_LAYER_TAR, NULL, NULL));
    assert_false(image_layer_media_type_info(MEDIA_TYPE_OCI_CONFIG, &c, &nd));
    assert_false(image_layer_media_type_info(NULL, &c, &nd));
    assert_string_equal(image_layer_media_type(MANIFEST_KIND_OCI_MANIFEST, COMPRESSION_ZSTD),
                        MEDIA_TYPE_OCI_LAYER_ZSTD);
    assert_string_equal(image_layer_media_type(MANIFEST_KIND_DOCKER_V2, COMPRESSION_GZIP),
                        MEDIA_TYPE_DOCKER_LAYER_GZIP);
    assert_null(image_layer_media_type(MANIFEST_KIND_DOCKER_V2, COMPRESSION_ZSTD));
    assert_null(image_layer_media_type(MANIFEST_KIND_OCI_INDEX, COMPRESSION_GZIP));
    assert_true(manifest_kind_is_index(MANIFEST_KIND_DOCKER_LIST));
    assert_false(manifest_kind_is_index(MANIFEST_KIND_DOCKER_V2));
    assert_int_equal(manifest_kind_from_media_type("application/json"), MANIFEST_KIND_UNKNOWN);
    assert_string_equal(manifest_kind_config_media_type(MANIFEST_KIND_DOCKER_V2),
                        MEDIA_TYPE_DOCKER_CONFIG);
}

static void test_parse_oci_manifest(void **state)
{
    (void)state;
    size_t len;
    cleanup_free char *buf = read_fixture("oci-manifest.json", &len);
    cleanup_image_manifest image_manifest_t *m = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(image_manifest_parse(buf, len, &m, &err), 0);
    assert_int_equal(m->kind, MANIFEST_KIND_OCI_MANIFEST);
    assert_int_equal(m->schema_version, 2);
    assert_string_equal(m->config.media_type, MEDIA_TYPE_OCI_CONFIG);
    assert_int_equal(m->config.size, 7023);
    assert_int_equal(m->n_layers, 3);
    assert_string_equal(m->layers[1].media_type, MEDIA_TYPE_OCI_LAYER_TAR);
    assert_string_equal(
        json_string_value(json_object_get(m->layers[1].annotations, "org.example.layer")), "two");
    assert_string_equal(m->layers[2].urls[0], "https://example.com/layer.tar.gz");
    assert_null(m->layers[2].urls[1]);
    assert_null(m->subject);
    assert_string_equal(json_string_value(json_object_get(m->annotations, "com.example.key1")),
                        "value1");
    /* unknown fields stay reachable */
    assert_non_null(json_object_get(m->raw, "x-unknown-field"));
}

static void test_parse_docker_manifest(void **state)
{
    (void)state;
    size_t len;
    cleanup_free char *buf = read_fixture("docker-manifest.json", &len);
    cleanup_image_manifest image_manifest_t *m = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(image_manifest_parse(buf, len, &m, &err), 0);
    assert_int_equal(m->kind, MANIFEST_KIND_DOCKER_V2);
    assert_string_equal(m->config.media_type, MEDIA_TYPE_DOCKER_CONFIG);
    assert_int_equal(m->n_layers, 2);
    assert_int_equal(m->layers[0].size, 2479);
    assert_string_equal(m->layers[1].media_type, MEDIA_TYPE_DOCKER_FOREIGN_GZIP);
    /* a manifest list is not a manifest, and the other way round */
    cleanup_image_index image_index_t *ix = NULL;
    assert_int_equal(image_index_parse(buf, len, &ix, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "is an image manifest, not an index"));
}

static void test_parse_indexes(void **state)
{
    (void)state;
    size_t len, len2;
    cleanup_free char *buf = read_fixture("oci-index.json", &len);
    cleanup_free char *buf2 = read_fixture("docker-list.json", &len2);
    cleanup_image_index image_index_t *ix = NULL, *dl = NULL;
    cleanup_image_manifest image_manifest_t *m = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(image_index_parse(buf, len, &ix, &err), 0);
    assert_int_equal(ix->kind, MANIFEST_KIND_OCI_INDEX);
    assert_int_equal(ix->n_manifests, 5);
    assert_string_equal(ix->manifests[2].platform->variant, "v6");
    assert_string_equal(ix->manifests[4].platform->os_version, "10.0.17763.1040");
    assert_string_equal(ix->manifests[4].platform->os_features[0], "win32k");
    assert_int_equal(image_index_parse(buf2, len2, &dl, &err), 0);
    assert_int_equal(dl->kind, MANIFEST_KIND_DOCKER_LIST);
    assert_int_equal(dl->n_manifests, 2);
    assert_string_equal(dl->manifests[1].platform->architecture, "arm64");
    assert_int_equal(image_manifest_parse(buf2, len2, &m, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "is an image index, not a manifest"));
}

static void test_parse_configs(void **state)
{
    (void)state;
    size_t len, len2;
    cleanup_free char *buf = read_fixture("oci-config.json", &len);
    cleanup_free char *buf2 = read_fixture("docker-config.json", &len2);
    cleanup_image_config image_config_t *c = NULL, *d = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(image_config_parse(buf, len, &c, &err), 0);
    assert_string_equal(c->architecture, "amd64");
    assert_string_equal(c->os, "linux");
    assert_true(c->has_config);
    assert_string_equal(c->config.user, "1000:1000");
    assert_string_equal(c->config.exposed_ports[0], "8080/tcp");
    assert_string_equal(c->config.exposed_ports[1], "53/udp");
    assert_null(c->config.exposed_ports[2]);
    assert_string_equal(c->config.env[1], "A=b");
    assert_string_equal(c->config.entrypoint[0], "/bin/app");
    assert_string_equal(c->config.cmd[0], "--help");
    assert_string_equal(c->config.volumes[0], "/data");
    assert_string_equal(c->config.working_dir, "/srv");
    assert_string_equal(c->config.stop_signal, "SIGTERM");
    assert_string_equal(
        json_string_value(json_object_get(c->config.labels, "org.opencontainers.image.title")),
        "app");
    assert_string_equal(c->rootfs_type, "layers");
    assert_non_null(c->diff_ids[1]);
    assert_null(c->diff_ids[2]);
    assert_int_equal(c->n_history, 3);
    assert_true(c->history[1].empty_layer);
    assert_string_equal(c->history[2].comment, "build");
    assert_int_equal(image_config_history_layers(c), 2);
    assert_null(c->config.healthcheck);

    assert_int_equal(image_config_parse(buf2, len2, &d, &err), 0);
    assert_string_equal(d->variant, "v8");
    assert_string_equal(d->docker_version, "24.0.5");
    assert_string_equal(d->container, "3f8a0c0b0e5b");
    assert_non_null(d->container_config);
    assert_null(d->config.entrypoint); /* null = absent */
    assert_null(d->config.labels);
    assert_non_null(d->config.healthcheck);
    assert_string_equal(d->config.healthcheck->test[0], "CMD-SHELL");
    assert_int_equal(d->config.healthcheck->interval, 30000000000LL);
    assert_int_equal(d->config.healthcheck->retries, 3);
    assert_string_equal(d->config.onbuild[0], "RUN echo child");
    assert_string_equal(d->config.shell[0], "/bin/ash");
    assert_true(d->config.args_escaped);
    assert_int_equal(image_config_history_layers(d), 1);
}

typedef enum { DOC_MANIFEST, DOC_INDEX, DOC_CONFIG } doc_t;
typedef struct {
    doc_t doc;
    const char *json;
    const char *err_sub;
} bad_case_t;

#define M(body) "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\"," body "}"
#define ROOTFS  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}"

static const bad_case_t bad_cases[] = {
    {DOC_MANIFEST, "", "invalid manifest: line"},
    {DOC_MANIFEST, "{\"schemaVersion\":2,", "invalid manifest: line"},
    {DOC_MANIFEST, "[]", "must be a JSON object"},
    {DOC_MANIFEST, M("\"layers\":[]"), "manifest: config: missing"},
    {DOC_MANIFEST, M("\"config\":" CFG_OCI), "manifest: layers: missing"},
    {DOC_MANIFEST, M("\"config\":" CFG_OCI ",\"layers\":{}"), "manifest: layers: must be an array"},
    {DOC_MANIFEST, M("\"config\":\"x\",\"layers\":[]"), "manifest: config: must be an object"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[" LAYER(MEDIA_TYPE_OCI_LAYER_GZIP, DB, 1) "," LAYER(
         MEDIA_TYPE_OCI_LAYER_GZIP, DB, 2) "," LAYER(MEDIA_TYPE_OCI_LAYER_GZIP, "sha256:abc",
                                                     3) "]"),
     "manifest: layers[2].digest: invalid digest \"sha256:abc\""},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[" LAYER(MEDIA_TYPE_OCI_LAYER_GZIP, DB, -5) "]"),
     "manifest: layers[0].size: must not be negative"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[{\"mediaType\":\"" MEDIA_TYPE_OCI_LAYER_GZIP
       "\",\"digest\":\"" DB "\",\"size\":\"12\"}]"),
     "manifest: layers[0].size: must be an integer, got string"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[{\"mediaType\":\"" MEDIA_TYPE_OCI_LAYER_GZIP
       "\",\"digest\":\"" DB "\",\"size\":1.5}]"),
     "manifest: layers[0].size: must be an integer, got number"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[{\"mediaType\":\"" MEDIA_TYPE_OCI_LAYER_GZIP
       "\",\"digest\":\"" DB "\"}]"),
     "manifest: layers[0].size: missing"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[{\"mediaType\":\"" MEDIA_TYPE_OCI_LAYER_GZIP
       "\",\"size\":3}]"),
     "manifest: layers[0].digest: missing"},
    {DOC_MANIFEST, M("\"config\":" CFG_OCI ",\"layers\":[{\"digest\":\"" DB "\",\"size\":3}]"),
     "manifest: layers[0].mediaType: missing"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[{\"mediaType\":\"nonsense\",\"digest\":\"" DB
       "\",\"size\":3}]"),
     "manifest: layers[0].mediaType: invalid media type"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[{\"mediaType\":7,\"digest\":\"" DB "\",\"size\":3}]"),
     "manifest: layers[0].mediaType: must be a string, got integer"},
    {DOC_MANIFEST,
     M("\"config\":{\"mediaType\":\"" MEDIA_TYPE_OCI_CONFIG
       "\",\"digest\":\"md5:" H("0") "\","
                                     "\"size\":1},\"layers\":[]"),
     "manifest: config.digest: invalid digest"},
    {DOC_MANIFEST,
     M("\"config\":{\"mediaType\":\"" MEDIA_TYPE_OCI_CONFIG
       "\",\"digest\":\"sha256:" H("AB") "\","
                                         "\"size\":1},\"layers\":[]"),
     "manifest: config.digest: invalid digest"},
    {DOC_MANIFEST, "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}",
     "schema1 manifests are not supported"},
    {DOC_MANIFEST, "{\"schemaVersion\":1,\"config\":" CFG_OCI ",\"layers\":[]}",
     "manifest: schemaVersion 1 (Docker schema1) is not supported"},
    {DOC_MANIFEST, M("\"config\":" CFG_OCI ",\"layers\":[]") "", NULL /* sanity: valid */},
    {DOC_MANIFEST,
     "{\"schemaVersion\":3,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"config\":" CFG_OCI
     ",\"layers\":[]}",
     "manifest: schemaVersion: must be 2, got 3"},
    {DOC_MANIFEST, "{\"schemaVersion\":\"2\",\"config\":" CFG_OCI ",\"layers\":[]}",
     "manifest: schemaVersion: must be an integer"},
    {DOC_MANIFEST,
     "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"config\":" CFG_OCI ",\"layers\":[]}",
     "manifest: schemaVersion: missing"},
    {DOC_MANIFEST,
     "{\"schemaVersion\":2,\"mediaType\":\"application/x-other\",\"config\":" CFG_OCI
     ",\"layers\":[]}",
     "unsupported media type \"application/x-other\""},
    {DOC_MANIFEST, "{\"schemaVersion\":2,\"schemaVersion\":2,\"config\":" CFG_OCI ",\"layers\":[]}",
     "duplicate"},
    {DOC_MANIFEST, M("\"config\":" CFG_OCI ",\"layers\":[],\"annotations\":{\"a\":1}"),
     "manifest: annotations[\"a\"]: must be a string"},
    {DOC_MANIFEST, M("\"config\":" CFG_OCI ",\"layers\":[],\"annotations\":[]"),
     "manifest: annotations: must be an object"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[{\"mediaType\":\"" MEDIA_TYPE_OCI_LAYER_GZIP
       "\",\"digest\":\"" DB "\",\"size\":3,\"urls\":[\"a\",2]}]"),
     "manifest: layers[0].urls[1]: must be a string"},
    {DOC_MANIFEST,
     M("\"config\":" CFG_OCI ",\"layers\":[],\"subject\":{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST
       "\",\"digest\":\"x\",\"size\":3}"),
     "manifest: subject.digest: invalid digest"},
    {DOC_MANIFEST, "{\"a\":\"\\u0000\"}", "invalid manifest"},
    /* the one JSON convention (json_parse_bounded): duplicate keys are rejected */
    {DOC_MANIFEST, "{\"schemaVersion\":2,\"schemaVersion\":2}", "duplicate object key"},
    /* index */
    {DOC_INDEX, "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_INDEX "\"}",
     "index: manifests: missing"},
    {DOC_INDEX, "{\"schemaVersion\":2,\"manifests\":{}}", "index: manifests: must be an array"},
    {DOC_INDEX,
     "{\"schemaVersion\":2,\"manifests\":[" LAYER(
         MEDIA_TYPE_OCI_MANIFEST, DA, 1) ",{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST
                                         "\",\"digest\":\"" DB
                                         "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
     "index: manifests[1].platform.architecture: missing"},
    {DOC_INDEX,
     "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST
     "\",\"digest\":\"" DB "\",\"size\":1,\"platform\":\"linux/amd64\"}]}",
     "index: manifests[0].platform: must be an object"},
    {DOC_INDEX, "{\"schemaVersion\":2,\"manifests\":[" LAYER(MEDIA_TYPE_OCI_MANIFEST, DA, -1) "]}",
     "index: manifests[0].size: must not be negative"},
    {DOC_INDEX, "{\"schemaVersion\":1,\"manifests\":[]}", "schemaVersion 1"},
    {DOC_INDEX, M("\"config\":" CFG_OCI ",\"layers\":[]"), "not an index"},
    {DOC_INDEX, "{\"schemaVersion\":2,\"config\":" CFG_OCI ",\"layers\":[]}",
     "index: the document is an image manifest (by its structure), not an index"},
    {DOC_MANIFEST, "{\"schemaVersion\":2,\"manifests\":[]}",
     "manifest: the document is an image index (by its structure), not a manifest"},
    /* config */
    {DOC_CONFIG, "{\"architecture\":\"amd64\",\"os\":\"linux\"}", "config: rootfs: missing"},
    {DOC_CONFIG, "{\"os\":\"linux\"," ROOTFS "}", "config: architecture: missing"},
    {DOC_CONFIG, "{\"architecture\":\"amd64\"," ROOTFS "}", "config: os: missing"},
    {DOC_CONFIG, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":[]}",
     "config: rootfs: must be an object"},
    {DOC_CONFIG,
     "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"x\",\"diff_ids\":[]}}",
     "config: rootfs.type: must be \"layers\""},
    {DOC_CONFIG,
     "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
     "\"diff_ids\":[\"" DA "\",\"sha256:zz\"]}}",
     "config: rootfs.diff_ids[1]: invalid digest"},
    {DOC_CONFIG,
     "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
     "\"diff_ids\":[1]}}",
     "config: rootfs.diff_ids[0]: must be a string, got integer"},
    {DOC_CONFIG,
     "{\"architecture\":\"amd64\",\"os\":\"linux\"," ROOTFS ",\"config\":{\"Env\":\"A=b\"}}",
     "config: config.Env: must be an array of strings"},
    {DOC_CONFIG,
     "{\"architecture\":\"amd64\",\"os\":\"linux\"," ROOTFS ",\"config\":{\"Cmd\":[\"a\",null]}}",
     "config: config.Cmd[1]: must be a string, got null"},
    {DOC_CONFIG, "{\"architecture\":\"amd64\",\"os\":\"linux\"," ROOTFS ",\"config\":[]}",
     "config: config: must be an object"},
    {DOC_CONFIG, "{\"architecture\":\"amd64\",\"os\":\"linux\"," ROOTFS ",\"history\":{}}",
     "config: history: must be an array"},
    {DOC_CONFIG,
     "{\"architecture\":\"amd64\",\"os\":\"linux\"," ROOTFS
     ",\"history\":[{},{\"empty_layer\":1}]}",
     "config: history[1].empty_layer: must be a boolean"},
    {DOC_CONFIG,
     "{\"architecture\":\"amd64\",\"os\":\"linux\"," ROOTFS
     ",\"config\":{\"Healthcheck\":{\"Interval\":\"30s\"}}}",
     "config: config.Healthcheck.Interval: must be an integer"},
    {DOC_CONFIG, "{\"architecture\":7,\"os\":\"linux\"," ROOTFS "}",
     "config: architecture: must be a string, got integer"},
    {DOC_CONFIG, "{\"architecture\":\"amd64\",\"os\":\"linux\"," ROOTFS "}", NULL},
};

static int parse_doc(doc_t doc, const char *buf, size_t len, berth_error_t *err)
{
    switch (doc) {
    case DOC_MANIFEST: {
        cleanup_image_manifest image_manifest_t *m = NULL;
        return image_manifest_parse(buf, len, &m, err);
    }
    case DOC_INDEX: {
        cleanup_image_index image_index_t *ix = NULL;
        return image_index_parse(buf, len, &ix, err);
    }
    case DOC_CONFIG: {
        cleanup_image_config image_config_t *c = NULL;
        return image_config_parse(buf, len, &c, err);
    }
    }
    return -1;
}

static void test_malformed(void **state)
{
    (void)state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case_t *c = &bad_cases[i];
        cleanup_error berth_error_t err = NULL;
        int rc = parse_doc(c->doc, c->json, strlen(c->json), &err);
        if (c->err_sub == NULL) {
            if (rc != 0) {
                fprintf(stderr, "case %zu: unexpected error %s\n", i, berth_error_msg(err));
                failures++;
            }
        } else if (rc == 0 || strstr(berth_error_msg(err), c->err_sub) == NULL) {
            fprintf(stderr, "case %zu: want error containing '%s', got %s\n", i, c->err_sub,
                    rc == 0 ? "success" : berth_error_msg(err));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_oversize(void **state)
{
    (void)state;
    /* valid JSON padded with whitespace beyond each limit: the limit is checked first */
    size_t big = IMAGE_CONFIG_MAX_SIZE + 1;
    char *buf = xmalloc(big);
    cleanup_error berth_error_t err = NULL;
    memset(buf, ' ', big);
    buf[0] = '{';
    buf[big - 1] = '}';
    assert_int_equal(parse_doc(DOC_CONFIG, buf, big, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "config too large: 8388609 bytes"));
    assert_int_equal(berth_error_status(err), EFBIG);
    buf[IMAGE_MANIFEST_MAX_SIZE] = '}';
    assert_int_equal(parse_doc(DOC_MANIFEST, buf, IMAGE_MANIFEST_MAX_SIZE + 1, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "manifest too large: 4194305 bytes"));
    assert_int_equal(parse_doc(DOC_INDEX, buf, IMAGE_MANIFEST_MAX_SIZE + 1, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "index too large: 4194305 bytes"));
    /* exactly at the limit is parsed (and then fails for content, not size) */
    buf[IMAGE_MANIFEST_MAX_SIZE - 1] = '}';
    assert_int_equal(parse_doc(DOC_MANIFEST, buf, IMAGE_MANIFEST_MAX_SIZE, &err), -1);
    assert_null(strstr(berth_error_msg(err), "exceeds"));
    free(buf);
}

/* parse -> serialise -> parse -> serialise: the second serialisation equals the first, and
 * the first preserves what was parsed. */
static void test_round_trip(void **state)
{
    (void)state;
    const char *files[] = {"oci-manifest.json", "docker-manifest.json", "oci-index.json",
                           "docker-list.json",  "oci-config.json",      "docker-config.json"};
    for (size_t i = 0; i < 6; i++) {
        size_t len, l1, l2;
        cleanup_free char *buf = read_fixture(files[i], &len);
        cleanup_free char *s1 = NULL, *s2 = NULL;
        cleanup_error berth_error_t err = NULL;
        if (i < 2) {
            cleanup_image_manifest image_manifest_t *a = NULL, *b = NULL;
            assert_int_equal(image_manifest_parse(buf, len, &a, &err), 0);
            assert_int_equal(image_manifest_serialize(a, &s1, &l1, &err), 0);
            assert_int_equal(image_manifest_parse(s1, l1, &b, &err), 0);
            assert_int_equal(image_manifest_serialize(b, &s2, &l2, &err), 0);
            assert_int_equal(b->n_layers, a->n_layers);
            for (size_t j = 0; j < a->n_layers; j++) {
                assert_string_equal(b->layers[j].digest, a->layers[j].digest);
                assert_int_equal(b->layers[j].size, a->layers[j].size);
            }
            /* the unknown field is not invented by the serialiser */
            assert_null(strstr(s1, "x-unknown-field"));
        } else if (i < 4) {
            cleanup_image_index image_index_t *a = NULL, *b = NULL;
            assert_int_equal(image_index_parse(buf, len, &a, &err), 0);
            assert_int_equal(image_index_serialize(a, &s1, &l1, &err), 0);
            assert_int_equal(image_index_parse(s1, l1, &b, &err), 0);
            assert_int_equal(image_index_serialize(b, &s2, &l2, &err), 0);
            assert_int_equal(b->n_manifests, a->n_manifests);
        } else {
            cleanup_image_config image_config_t *a = NULL, *b = NULL;
            assert_int_equal(image_config_parse(buf, len, &a, &err), 0);
            assert_int_equal(image_config_serialize(a, &s1, &l1, &err), 0);
            assert_int_equal(image_config_parse(s1, l1, &b, &err), 0);
            assert_int_equal(image_config_serialize(b, &s2, &l2, &err), 0);
            assert_string_equal(b->diff_ids[0], a->diff_ids[0]);
            assert_int_equal(b->n_history, a->n_history);
        }
        assert_int_equal(l1, strlen(s1));
        assert_string_equal(s1, s2);
        /* the whole input structure is preserved: compare JSON with the known extras removed */
        cleanup_json json_t *orig = json_loads(buf, 0, NULL);
        cleanup_json json_t *ser = json_loads(s1, 0, NULL);
        json_object_del(orig, "x-unknown-field");
        if (i == 5) {
            /* fields berth does not model (they stay in raw) and nulls the serialiser omits */
            json_t *cfg = json_object_get(orig, "config");
            json_object_del(cfg, "Hostname");
            json_object_del(cfg, "Entrypoint");
            json_object_del(cfg, "Labels");
        }
        if (!json_equal(orig, ser))
            fail_msg("%s: serialised form differs:\n%s", files[i], s1);
    }
}

static void test_serialize_canonical(void **state)
{
    (void)state;
    cleanup_image_manifest image_manifest_t *m = xzalloc(sizeof(*m));
    cleanup_free char *s = NULL;
    cleanup_error berth_error_t err = NULL;
    size_t len;
    m->kind = MANIFEST_KIND_OCI_MANIFEST;
    m->schema_version = 2;
    m->config.media_type = xstrdup(MEDIA_TYPE_OCI_CONFIG);
    m->config.digest = xstrdup(DA);
    m->config.size = 5;
    m->layers = xcalloc(1, sizeof(*m->layers));
    m->n_layers = 1;
    m->layers[0].media_type = xstrdup(MEDIA_TYPE_OCI_LAYER_ZSTD);
    m->layers[0].digest = xstrdup(DB);
    m->layers[0].size = 6;
    assert_int_equal(image_manifest_serialize(m, &s, &len, &err), 0);
    assert_string_equal(s, "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST
                           "\",\"config\":{\"mediaType\":\"" MEDIA_TYPE_OCI_CONFIG
                           "\",\"digest\":\"" DA
                           "\",\"size\":5},\"layers\":[{\"mediaType\":\"" MEDIA_TYPE_OCI_LAYER_ZSTD
                           "\",\"digest\":\"" DB "\",\"size\":6}]}");
    /* serialisation validates */
    m->layers[0].size = -1;
    free(s);
    s = NULL;
    assert_int_equal(image_manifest_serialize(m, &s, &len, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "manifest: layers[0].size: must not be negative"));
    m->layers[0].size = 6;
    free(m->layers[0].digest);
    m->layers[0].digest = xstrdup("sha256:../../etc/passwd");
    assert_int_equal(image_manifest_serialize(m, &s, &len, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "manifest: layers[0].digest: invalid digest"));
    free(m->layers[0].digest);
    m->layers[0].digest = xstrdup(DB);
    free(m->config.media_type);
    m->config.media_type = xstrdup("bad\xff/x");
    assert_int_equal(image_manifest_serialize(m, &s, &len, &err), -1);
    free(m->config.media_type);
    m->config.media_type = xstrdup(MEDIA_TYPE_OCI_CONFIG);
    m->schema_version = 1;
    assert_int_equal(image_manifest_serialize(m, &s, &len, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "schemaVersion 1"));

    /* config built by hand: the minimal valid document */
    cleanup_image_config image_config_t *c = xzalloc(sizeof(*c));
    cleanup_free char *cs = NULL;
    c->architecture = xstrdup("amd64");
    c->os = xstrdup("linux");
    c->rootfs_type = xstrdup("layers");
    assert_int_equal(image_config_serialize(c, &cs, &len, &err), 0);
    assert_string_equal(cs, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
                            "\"layers\",\"diff_ids\":[]}}");
    /* an explicitly empty Entrypoint is kept as [], an unset one is omitted */
    free(cs);
    cs = NULL;
    c->has_config = true;
    c->config.entrypoint = xcalloc(1, sizeof(char *));
    assert_int_equal(image_config_serialize(c, &cs, &len, &err), 0);
    assert_non_null(strstr(cs, "\"config\":{\"Entrypoint\":[]}"));
}

static void test_convert_manifest(void **state)
{
    (void)state;
    size_t len;
    cleanup_free char *buf = read_fixture("oci-manifest.json", &len);
    cleanup_image_manifest image_manifest_t *oci = NULL, *dock = NULL, *back = NULL, *same = NULL,
                                            *z = NULL;
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *s = NULL;
    assert_int_equal(image_manifest_parse(buf, len, &oci, &err), 0);
    assert_int_equal(image_manifest_convert(oci, MANIFEST_KIND_DOCKER_V2, &dock, &err), 0);
    assert_int_equal(dock->kind, MANIFEST_KIND_DOCKER_V2);
    assert_null(dock->raw);
    assert_string_equal(dock->config.media_type, MEDIA_TYPE_DOCKER_CONFIG);
    assert_string_equal(dock->config.digest, oci->config.digest);
    assert_string_equal(dock->layers[0].media_type, MEDIA_TYPE_DOCKER_LAYER_GZIP);
    assert_string_equal(dock->layers[1].media_type, MEDIA_TYPE_DOCKER_LAYER_TAR);
    assert_string_equal(dock->layers[2].media_type, MEDIA_TYPE_DOCKER_FOREIGN_GZIP);
    assert_string_equal(dock->layers[2].urls[0], oci->layers[2].urls[0]);
    assert_null(dock->annotations);
    assert_null(dock->layers[1].annotations);
    for (size_t i = 0; i < oci->n_layers; i++) {
        assert_string_equal(dock->layers[i].digest, oci->layers[i].digest);
        assert_int_equal(dock->layers[i].size, oci->layers[i].size);
    }
    assert_int_equal(image_manifest_serialize(dock, &s, &len, &err), 0);
    assert_non_null(strstr(s, MEDIA_TYPE_DOCKER_MANIFEST));
    assert_null(strstr(s, "annotations"));

    assert_int_equal(image_manifest_convert(dock, MANIFEST_KIND_OCI_MANIFEST, &back, &err), 0);
    assert_int_equal(back->kind, MANIFEST_KIND_OCI_MANIFEST);
    assert_string_equal(back->config.media_type, MEDIA_TYPE_OCI_CONFIG);
    for (size_t i = 0; i < oci->n_layers; i++) {
        assert_string_equal(back->layers[i].media_type, oci->layers[i].media_type);
        assert_string_equal(back->layers[i].digest, oci->layers[i].digest);
    }
    assert_int_equal(image_manifest_convert(oci, MANIFEST_KIND_OCI_MANIFEST, &same, &err), 0);
    assert_non_null(same->annotations);
    assert_int_equal(image_manifest_convert(oci, MANIFEST_KIND_OCI_INDEX, &z, &err), -1);

    /* zstd cannot go to schema2 */
    free(oci->layers[1].media_type);
    oci->layers[1].media_type = xstrdup(MEDIA_TYPE_OCI_LAYER_ZSTD);
    assert_int_equal(image_manifest_convert(oci, MANIFEST_KIND_DOCKER_V2, &z, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "layers[1]: zstd-compressed layers cannot"));
    /* unknown layer type, artifact config, subject */
    free(oci->layers[1].media_type);
    oci->layers[1].media_type = xstrdup("application/x-custom");
    assert_int_equal(image_manifest_convert(oci, MANIFEST_KIND_DOCKER_V2, &z, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "unknown layer media type"));
    free(oci->layers[1].media_type);
    oci->layers[1].media_type = xstrdup(MEDIA_TYPE_OCI_LAYER_GZIP);
    free(oci->config.media_type);
    oci->config.media_type = xstrdup(MEDIA_TYPE_OCI_EMPTY);
    assert_int_equal(image_manifest_convert(oci, MANIFEST_KIND_DOCKER_V2, &z, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "not an image config"));
    free(oci->config.media_type);
    oci->config.media_type = xstrdup(MEDIA_TYPE_OCI_CONFIG);
    oci->subject = xzalloc(sizeof(*oci->subject));
    image_descriptor_copy(oci->subject, &oci->config);
    assert_int_equal(image_manifest_convert(oci, MANIFEST_KIND_DOCKER_V2, &z, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "subject"));
    assert_null(z);
}

static void test_convert_index(void **state)
{
    (void)state;
    size_t len;
    cleanup_free char *buf = read_fixture("oci-index.json", &len);
    cleanup_image_index image_index_t *ix = NULL, *dl = NULL, *back = NULL, *bad = NULL;
    cleanup_error berth_error_t err = NULL;
    assert_int_equal(image_index_parse(buf, len, &ix, &err), 0);
    assert_int_equal(image_index_convert(ix, MANIFEST_KIND_DOCKER_LIST, &dl, &err), 0);
    assert_int_equal(dl->kind, MANIFEST_KIND_DOCKER_LIST);
    assert_null(dl->annotations);
    for (size_t i = 0; i < ix->n_manifests; i++) {
        assert_string_equal(dl->manifests[i].media_type, MEDIA_TYPE_DOCKER_MANIFEST);
        assert_string_equal(dl->manifests[i].digest, ix->manifests[i].digest);
    }
    assert_int_equal(image_index_convert(dl, MANIFEST_KIND_OCI_INDEX, &back, &err), 0);
    assert_string_equal(back->manifests[3].media_type, MEDIA_TYPE_OCI_MANIFEST);
    assert_string_equal(back->manifests[3].platform->architecture, "arm64");
    free(ix->manifests[0].media_type);
    ix->manifests[0].media_type = xstrdup("application/vnd.example.artifact");
    assert_int_equal(image_index_convert(ix, MANIFEST_KIND_DOCKER_LIST, &bad, &err), -1);
    assert_non_null(strstr(berth_error_msg(err), "manifests[0]"));
}

static void test_convert_config(void **state)
{
    (void)state;
    size_t len;
    cleanup_free char *buf = read_fixture("docker-config.json", &len);
    cleanup_image_config image_config_t *d = NULL, *o = NULL, *d2 = NULL;
    cleanup_error berth_error_t err = NULL;
    cleanup_free char *s = NULL, *s2 = NULL;
    assert_int_equal(image_config_parse(buf, len, &d, &err), 0);
    assert_int_equal(image_config_convert(d, MANIFEST_KIND_OCI_MANIFEST, &o, &err), 0);
    assert_null(o->config.healthcheck);
    assert_null(o->config.onbuild);
    assert_null(o->config.shell);
    assert_null(o->docker_version);
    assert_null(o->container_config);
    assert_null(o->raw);
    assert_string_equal(o->diff_ids[0], d->diff_ids[0]);
    assert_null(o->diff_ids[1]);
    assert_int_equal(o->n_history, d->n_history);
    assert_string_equal(o->history[0].created_by, d->history[0].created_by);
    assert_string_equal(o->config.cmd[0], "sh");
    assert_string_equal(o->variant, "v8");
    assert_int_equal(image_config_serialize(o, &s, &len, &err), 0);
    assert_null(strstr(s, "Healthcheck"));
    assert_null(strstr(s, "docker_version"));
    assert_null(strstr(s, "container_config"));
    assert_non_null(strstr(s, d->diff_ids[0]));
    /* OCI -> Docker keeps everything */
    assert_int_equal(image_config_convert(d, MANIFEST_KIND_DOCKER_V2, &d2, &err), 0);
    assert_int_equal(image_config_serialize(d2, &s2, &len, &err), 0);
    assert_non_null(strstr(s2, "\"Healthcheck\":{\"Test\":[\"CMD-SHELL\""));
    assert_non_null(strstr(s2, "\"docker_version\":\"24.0.5\""));
    image_config_t *bad = NULL;
    assert_int_equal(image_config_convert(d, MANIFEST_KIND_OCI_INDEX, &bad, &err), -1);
}

static void test_platform(void **state)
{
    (void)state;
    struct {
        const char *want, *have;
        bool match;
    } t[] = {
        {"linux/amd64", "linux/amd64", true},     {"linux/amd64", "linux/x86_64", true},
        {"linux/x86_64", "linux/amd64", true},    {"linux/amd64", "linux/arm64", false},
        {"linux/amd64", "windows/amd64", false},  {"linux/arm64", "linux/aarch64", true},
        {"linux/arm64", "linux/arm64/v8", true},  {"linux/arm64/v8", "linux/arm64", true},
        {"linux/aarch64/8", "linux/arm64", true}, {"linux/arm64/v9", "linux/arm64", false},
        {"linux/arm/v7", "linux/armhf", true},    {"linux/arm", "linux/arm/v7", true},
        {"linux/arm", "linux/arm/v6", false},     {"linux/arm/v6", "linux/armel", true},
        {"linux/arm/7", "linux/arm/v7", true},    {"linux/386", "linux/i686", true},
        {"LINUX/AMD64", "linux/amd64", true},     {"linux/amd64/v1", "linux/amd64", true},
        {"linux/amd64/v3", "linux/amd64", false}, {"linux/amd64", "linux/amd64/v3", true},
        {"darwin/arm64", "macos/arm64", true},    {"linux/ppc64le", "linux/ppc64le", true},
        {"linux/s390x", "linux/ppc64le", false},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        cleanup_image_platform image_platform_t *w = NULL, *h = NULL;
        assert_int_equal(image_platform_parse(t[i].want, &w, NULL), 0);
        assert_int_equal(image_platform_parse(t[i].have, &h, NULL), 0);
        if (image_platform_match(w, h) != t[i].match)
            fail_msg("platform case %zu: %s vs %s: want %d", i, t[i].want, t[i].have, t[i].match);
    }
    const char *badp[] = {"linux",   "linux/",       "/amd64", "linux//amd64",
                          "a/b/c/d", "linux/am d64", ""};
    for (size_t i = 0; i < sizeof(badp) / sizeof(badp[0]); i++) {
        image_platform_t *p = NULL;
        cleanup_error berth_error_t err = NULL;
        if (image_platform_parse(badp[i], &p, &err) == 0)
            fail_msg("platform \"%s\" parsed", badp[i]);
        assert_non_null(strstr(berth_error_msg(err), "invalid platform"));
    }
    cleanup_image_platform image_platform_t *p = NULL;
    cleanup_free char *ps = NULL;
    assert_int_equal(image_platform_parse("linux/aarch64", &p, NULL), 0);
    image_platform_normalize(p);
    ps = image_platform_string(p);
    assert_string_equal(ps, "linux/arm64/v8");

    /* the host platform */
    struct utsname u;
    cleanup_image_platform image_platform_t *host = image_platform_host();
    assert_int_equal(uname(&u), 0);
    assert_string_equal(host->os, "linux");
    if (strcmp(u.machine, "x86_64") == 0)
        assert_string_equal(host->architecture, "amd64");
    if (strcmp(u.machine, "aarch64") == 0) {
        assert_string_equal(host->architecture, "arm64");
        assert_string_equal(host->variant, "v8");
    }

    /* selection from an index */
    size_t len;
    cleanup_free char *buf = read_fixture("oci-index.json", &len);
    cleanup_image_index image_index_t *ix = NULL;
    assert_int_equal(image_index_parse(buf, len, &ix, NULL), 0);
    struct {
        const char *want, *digest_prefix;
    } sel[] = {
        {"linux/amd64", "sha256:bb"},   {"linux/x86_64", "sha256:bb"},
        {"linux/arm64", "sha256:dd"},   {"linux/arm64/v8", "sha256:dd"},
        {"linux/arm/v6", "sha256:cc"},  {"linux/ppc64le", "sha256:aa"},
        {"windows/amd64", "sha256:ee"}, {"linux/arm/v7", NULL},
        {"linux/s390x", NULL},
    };
    for (size_t i = 0; i < sizeof(sel) / sizeof(sel[0]); i++) {
        cleanup_image_platform image_platform_t *w = NULL;
        const image_descriptor_t *d;
        assert_int_equal(image_platform_parse(sel[i].want, &w, NULL), 0);
        d = image_index_find_platform(ix, w);
        if (sel[i].digest_prefix == NULL) {
            assert_null(d);
        } else {
            assert_non_null(d);
            assert_true(strncmp(d->digest, sel[i].digest_prefix, 9) == 0);
        }
    }
    cleanup_image_platform image_platform_t *hp = image_platform_host();
    if (strcmp(u.machine, "x86_64") == 0)
        assert_string_equal(image_index_find_platform(ix, hp)->digest, ix->manifests[1].digest);
}

static void test_dup_and_free(void **state)
{
    (void)state;
    size_t len;
    cleanup_free char *buf = read_fixture("oci-config.json", &len);
    cleanup_image_config image_config_t *c = NULL, *d = NULL;
    cleanup_free char *s1 = NULL, *s2 = NULL;
    assert_int_equal(image_config_parse(buf, len, &c, NULL), 0);
    d = image_config_dup(c);
    assert_int_equal(image_config_serialize(c, &s1, NULL, NULL), 0);
    assert_int_equal(image_config_serialize(d, &s2, NULL, NULL), 0);
    assert_string_equal(s1, s2);
    image_manifest_free(NULL);
    image_index_free(NULL);
    image_config_free(NULL);
    image_platform_free(NULL);
    image_descriptor_clear(NULL);
}

/* Deterministic mutations of every fixture: each parser must either accept or fail with a
 * message, never crash or leak (run under ASan/valgrind in CI's sanitizer build). */
static void test_mutations(void **state)
{
    (void)state;
    const char *files[] = {"oci-manifest.json", "docker-manifest.json", "oci-index.json",
                           "docker-list.json",  "oci-config.json",      "docker-config.json"};
    const char junk[] = "{}[]\",:0-1e\\ \x01\xff";
    uint32_t seed = 12345;
    size_t accepted = 0, rejected = 0;
    for (size_t f = 0; f < 6; f++) {
        size_t len;
        cleanup_free char *orig = read_fixture(files[f], &len);
        for (int round = 0; round < 400; round++) {
            cleanup_free char *buf = xmalloc(len + 1);
            size_t n = len;
            memcpy(buf, orig, len + 1);
            for (int k = 0; k < 1 + round % 4; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t pos = (seed >> 8) % n;
                seed = seed * 1103515245u + 12345u;
                if ((seed >> 16) % 5 == 0)
                    n = pos; /* truncate */
                else
                    buf[pos] = junk[(seed >> 8) % (sizeof(junk) - 1)];
                if (n == 0)
                    n = 1;
            }
            for (int d = 0; d < 3; d++) {
                cleanup_error berth_error_t err = NULL;
                if (parse_doc((doc_t)d, buf, n, &err) == 0) {
                    accepted++;
                } else {
                    assert_non_null(err);
                    assert_true(strlen(berth_error_msg(err)) > 0);
                    rejected++;
                }
                berth_error_release(&err);
            }
        }
    }
    assert_true(rejected > 0);
    assert_true(accepted > 0);
}

static void test_time_parse(void **state)
{
    (void)state;
    int64_t t = 1;
    assert_int_equal(image_time_parse("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(image_time_parse("2006-01-02T15:04:05.999999999Z", &t), 0);
    assert_int_equal(t, 1136214245);
    assert_int_equal(image_time_parse("2006-01-02T15:04:05-07:00", &t), 0);
    assert_int_equal(t, 1136239445);
    assert_int_equal(image_time_parse("2024-02-29T23:59:59+01:30", &t), 0);
    assert_int_equal(t, 1709251199 - 5400);
    assert_int_equal(image_time_parse("1960-06-15T12:00:00Z", &t), 0);
    assert_int_equal(t, -301233600);
    const char *bad[] = {"",
                         "2006-01-02",
                         "2006-01-02T15:04:05",
                         "2006-13-02T15:04:05Z",
                         "2006-01-02T15:04:05.Z",
                         "2006-01-02T15:04:05Zjunk",
                         "2006-01-02T15:04:05+0700",
                         "20x6-01-02T15:04:05Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(image_time_parse(bad[i], &t), -1);
    assert_int_equal(image_time_parse(NULL, &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_media_types),
        cmocka_unit_test(test_parse_oci_manifest),
        cmocka_unit_test(test_parse_docker_manifest),
        cmocka_unit_test(test_parse_indexes),
        cmocka_unit_test(test_parse_configs),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_serialize_canonical),
        cmocka_unit_test(test_convert_manifest),
        cmocka_unit_test(test_convert_index),
        cmocka_unit_test(test_convert_config),
        cmocka_unit_test(test_platform),
        cmocka_unit_test(test_dup_and_free),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_time_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
