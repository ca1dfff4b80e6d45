/* run/net: -p parsing, the ports strings of ps and port, network definitions in podman's format
 * (create/list/get/remove in a private config dir, subnet choice and validation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "run/net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *publish(const char *spec, int expect)
{
    json_t *a = json_array();
    berth_error_t err = NULL;
    assert_int_equal(net_parse_publish(spec, a, &err), expect);
    berth_error_release(&err);
    return a;
}

static void test_publish(void **state)
{
    (void)state;
    json_t *a = publish("8080:80", 0);
    assert_int_equal(json_array_size(a), 1);
    json_t *m = json_array_get(a, 0);
    assert_int_equal(json_integer_value(json_object_get(m, "host_port")), 8080);
    assert_int_equal(json_integer_value(json_object_get(m, "container_port")), 80);
    assert_string_equal(json_string_value(json_object_get(m, "protocol")), "tcp");
    assert_string_equal(json_string_value(json_object_get(m, "host_ip")), "");
    json_decref(a);

    a = publish("127.0.0.1:9000-9002:7000-7002/udp", 0);
    m = json_array_get(a, 0);
    assert_int_equal(json_integer_value(json_object_get(m, "range")), 3);
    assert_string_equal(json_string_value(json_object_get(m, "host_ip")), "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(m, "protocol")), "udp");
    json_t *net = json_pack("{s:O}", "ports", a);
    char *s = net_ports_string(net);
    assert_string_equal(s, "127.0.0.1:9000-9002->7000-7002/udp");
    free(s);
    s = net_port_lines(net, "7001/udp");
    assert_string_equal(s, "127.0.0.1:9001\n");
    free(s);
    json_decref(net);
    json_decref(a);

    a = publish("[::1]:8081:81/sctp", 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "host_ip")), "::1");
    json_decref(a);
    /* a container port alone gets a free host port */
    a = publish("80", 0);
    assert_true(json_integer_value(json_object_get(json_array_get(a, 0), "host_port")) > 0);
    json_decref(a);
    a = publish("80/tcp,udp", 0);
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);

    json_decref(publish("", -1));
    json_decref(publish("0", -1));
    json_decref(publish("70000:80", -1));
    json_decref(publish("8080:80/icmp", -1));
    json_decref(publish("8080-8081:80", -1));  /* ranges of different sizes */
    json_decref(publish("80-81", -1));         /* a range needs host ports */
    json_decref(publish("1.2.3:8080:80", -1)); /* bad IP */
    json_decref(publish("a:b:c:d", -1));
}

static void test_networks(void **state)
{
    (void)state;
    char dir[] = "/tmp/berth-test-net.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct net_dirs d = {.config_dir = xstrdup(dir), .run_dir = xstrdup(dir)};
    berth_error_t err = NULL;

    /* the default network exists without a file */
    json_t *n = NULL;
    assert_int_equal(net_network_get(&d, "podman", &n, &err), 0);
    assert_string_equal(json_string_value(json_object_get(n, "network_interface")), "podman0");
    json_decref(n);

    char *sub[] = {"10.123.4.0/24", NULL};
    char *gw[] = {"10.123.4.1", NULL};
    char *lab[] = {"a=b", NULL};
    struct net_create_opts o = {
        .name = "one", .subnets = sub, .gateways = gw, .labels = lab, .internal = true};
    assert_int_equal(net_network_create(&d, &o, &n, &err), 0);
    assert_string_equal(json_string_value(json_object_get(n, "driver")), "bridge");
    assert_true(json_is_true(json_object_get(n, "internal")));
    assert_true(json_is_true(json_object_get(n, "dns_enabled")));
    assert_int_equal(strlen(json_string_value(json_object_get(n, "id"))), 64);
    json_decref(n);
    /* the file is podman's: NAME.json in the config dir */
    char *path = xasprintf("%s/one.json", dir);
    assert_int_equal(access(path, F_OK), 0);
    free(path);

    /* same name, overlapping subnet, bad gateway: refused */
    assert_int_equal(net_network_create(&d, &o, &n, &err), -1);
    berth_error_release(&err);
    char *sub2[] = {"10.123.4.128/25", NULL};
    struct net_create_opts o2 = {.name = "two", .subnets = sub2};
    assert_int_equal(net_network_create(&d, &o2, &n, &err), -1);
    berth_error_release(&err);
    char *sub3[] = {"10.124.0.0/16", NULL};
    char *gw3[] = {"10.125.0.1", NULL};
    struct net_create_opts o3 = {.name = "three", .subnets = sub3, .gateways = gw3};
    assert_int_equal(net_network_create(&d, &o3, &n, &err), -1);
    berth_error_release(&err);
    struct net_create_opts bad = {.name = "../evil"};
    assert_int_equal(net_network_create(&d, &bad, &n, &err), -1);
    berth_error_release(&err);

    /* no subnet: one from 10.89.N.0/24, and an interface name that is free */
    struct net_create_opts o4 = {.name = "four"};
    assert_int_equal(net_network_create(&d, &o4, &n, &err), 0);
    const char *s = json_string_value(
        json_object_get(json_array_get(json_object_get(n, "subnets"), 0), "subnet"));
    assert_true(strncmp(s, "10.89.", 6) == 0);
    json_decref(n);

    json_t *all = NULL;
    assert_int_equal(net_network_list(&d, &all, &err), 0);
    assert_int_equal(json_array_size(all), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "name")),
                        "podman");
    json_decref(all);

    assert_int_equal(net_network_remove(&d, "podman", &err), -1);
    berth_error_release(&err);
    assert_int_equal(net_network_remove(&d, "one", &err), 0);
    assert_int_equal(net_network_get(&d, "one", &n, &err), -1);
    berth_error_release(&err);
    assert_int_equal(net_network_remove(&d, "four", &err), 0);
    net_dirs_clear(&d);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_networks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
