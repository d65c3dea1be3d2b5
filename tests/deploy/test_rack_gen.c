/* test_rack_gen.c: deploy/rack-gen for a 48-node Calxeda rack. The dnsmasq
 * fragment must name every interface by the lab's convention (calxedaMM-NN-00
 * eth0, -01 eth1, -02 BMC) with MACs counted in 48-bit arithmetic (carrying
 * across bytes) and unique addresses; the worker's device dictionary must load
 * with rr_worker_config_load, each node reading its own 0600 password file,
 * and no password may appear in anything generated. The expected MACs and IPs
 * are computed here independently of the generator, plus hand-checked values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fixture.h"

#define NODES 48
#define IFACES 3
#define MAC_BASE 0x00504302fffeULL      /* 00:50:43:02:ff:fe: node 01's BMC carries twice */
#define MAC_STRIDE 3

typedef struct {
    char mac[18], tag[65], host[65], ip[16];
} host_entry_t;

static host_entry_t hosts[NODES * IFACES + 1];
static size_t host_count;
static char *worker_yaml, *dnsmasq_conf;

static void mac_text(uint64_t mac, char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", (unsigned)(mac >> 40) & 0xff,
             (unsigned)(mac >> 32) & 0xff, (unsigned)(mac >> 24) & 0xff,
             (unsigned)(mac >> 16) & 0xff, (unsigned)(mac >> 8) & 0xff, (unsigned)mac & 0xff);
}

/* The dhcp-host lines of CONF, in order, into ENTRIES (at most MAX); returns the count. */
static size_t parse_hosts(const char *conf, host_entry_t *entries, size_t max)
{
    size_t n = 0;
    for (const char *line = conf; line && *line; line = strchr(line, '\n')) {
        line += *line == '\n';
        if (strncmp(line, "dhcp-host=", 10) != 0)
            continue;
        host_entry_t e;
        char end;
        int got = sscanf(line, "dhcp-host=%17[0-9a-f:],set:%64[^,],%64[^,],%15[0-9.]%c", e.mac,
                         e.tag, e.host, e.ip, &end);
        if (got != 5 || end != '\n' || n == max)
            return SIZE_MAX;    /* a malformed line fails the count checks */
        entries[n++] = e;
    }
    return n;
}

static void write_password_files(void)
{
    tmpdir_mkdir(0, "bmc");
    for (int nn = 1; nn <= NODES; nn++) {
        char name[64], text[32];
        snprintf(name, sizeof name, "bmc/calxeda02-%02d", nn);
        snprintf(text, sizeof text, "pw-%02d\n", nn);
        tmpdir_put(0, name, text, 0600);
    }
}

/* Generate the 48-node rack into scratch/rack48 once for the whole group. */
static int rack48_setup(void **state)
{
    deploy_run_t run;
    if (tmpdir_group_setup(state) < 0)
        return -1;
    write_password_files();
    char password_file[4096], tftp[4096], out[4096];
    snprintf(password_file, sizeof password_file, "%s/{name}", tmpdir_path(0, "bmc"));
    snprintf(tftp, sizeof tftp, "%s", tmpdir_mkdir(0, "tftp"));
    snprintf(out, sizeof out, "%s", tmpdir_path(0, "rack48"));
    const char *args[] = { "--machine", "2", "--nodes", "48", "--mac-base", "00:50:43:02:ff:fe",
                           "--network", "10.2.0.0/16", "--master", "tcp://127.0.0.1:5555",
                           "--password-file", password_file, "--tftp-root", tftp,
                           "--tags", "sata", "--domain", "lab", "--out", out, NULL };
    if (deploy_rack_gen(args, &run) < 0 || run.exit_code != 0) {
        fprintf(stderr, "rack-gen failed (exit %d):\n%s\n", run.exit_code, run.out ? run.out : "");
        deploy_run_free(&run);
        return -1;
    }
    deploy_run_free(&run);
    worker_yaml = tmpdir_slurp(tmpdir_path(0, "rack48/worker.yaml"), NULL);
    dnsmasq_conf = tmpdir_slurp(tmpdir_path(0, "rack48/dnsmasq.conf"), NULL);
    if (!worker_yaml || !dnsmasq_conf)
        return -1;
    host_count = parse_hosts(dnsmasq_conf, hosts, NODES * IFACES + 1);
    return 0;
}

static int rack48_teardown(void **state)
{
    free(worker_yaml);
    free(dnsmasq_conf);
    return tmpdir_group_teardown(state);
}

static void test_rack_of_48_names_all_144_interfaces_by_convention(void **state)
{
    assert_int_equal(host_count, NODES * IFACES);
    for (int nn = 1; nn <= NODES; nn++) {
        for (int k = 0; k < IFACES; k++) {
            char expected[64];
            snprintf(expected, sizeof expected, "calxeda02-%02d-%02d", nn, k);
            assert_string_equal(hosts[(nn - 1) * IFACES + k].host, expected);
            assert_string_equal(hosts[(nn - 1) * IFACES + k].tag, "rack02");
        }
    }
}

static void test_rack_macs_count_up_with_carry_across_bytes(void **state)
{
    assert_int_equal(host_count, NODES * IFACES);
    for (size_t i = 0; i < host_count; i++) {
        char expected[18];
        mac_text(MAC_BASE + (i / IFACES) * MAC_STRIDE + i % IFACES, expected);
        assert_string_equal(hosts[i].mac, expected);
    }
    /* worked by hand: 02:ff:fe + 2 carries into two bytes; node 48's BMC is base + 47*3 + 2 */
    assert_string_equal(hosts[0].mac, "00:50:43:02:ff:fe");
    assert_string_equal(hosts[1].mac, "00:50:43:02:ff:ff");
    assert_string_equal(hosts[2].mac, "00:50:43:03:00:00");
    assert_string_equal(hosts[NODES * IFACES - 1].mac, "00:50:43:03:00:8d");
}

static void test_rack_addresses_follow_interface_blocks(void **state)
{
    assert_int_equal(host_count, NODES * IFACES);
    for (size_t i = 0; i < host_count; i++) {
        char expected[32];
        snprintf(expected, sizeof expected, "10.2.%u.%u", (unsigned)(i % IFACES),
                 (unsigned)(i / IFACES + 1));
        assert_string_equal(hosts[i].ip, expected);
    }
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort the strings at OFFSET in every host entry and check no two are equal. */
static void assert_all_different(size_t offset)
{
    const char *items[NODES * IFACES];
    assert_int_equal(host_count, NODES * IFACES);
    for (size_t i = 0; i < host_count; i++)
        items[i] = (const char *)&hosts[i] + offset;
    qsort(items, host_count, sizeof items[0], compare_strings);
    for (size_t i = 1; i < host_count; i++)
        if (strcmp(items[i - 1], items[i]) == 0)
            fail_msg("duplicate: %s", items[i]);
}

static void test_rack_macs_ips_and_names_are_unique(void **state)
{
    assert_all_different(offsetof(host_entry_t, mac));
    assert_all_different(offsetof(host_entry_t, ip));
    assert_all_different(offsetof(host_entry_t, host));
}

static void test_rack_dnsmasq_conf_serves_tftp_and_resolves_every_host(void **state)
{
    char tftp_line[4200];
    snprintf(tftp_line, sizeof tftp_line, "\ntftp-root=%s\n", tmpdir_path(0, "tftp"));
    assert_non_null(strstr(dnsmasq_conf, "\nenable-tftp\n"));
    assert_non_null(strstr(dnsmasq_conf, tftp_line));
    assert_non_null(strstr(dnsmasq_conf, "\ndhcp-boot=tag:rack02,pxelinux.0\n"));
    assert_non_null(strstr(dnsmasq_conf, "\ndhcp-range=set:rack02,10.2.0.0,static,255.255.0.0,"));
    /* option 209 would make U-Boot skip pxelinux.cfg/01-<mac> */
    assert_null(strstr(dnsmasq_conf, ",209,"));
    assert_non_null(strstr(dnsmasq_conf,
                           "\nhost-record=calxeda02-48-02.lab,calxeda02-48-02,10.2.2.48\n"));
}

static void test_rack_worker_yaml_loads_with_a_password_file_per_node(void **state)
{
    rr_worker_config_t *config = NULL;
    char err[512] = "";
    int rc = rr_worker_config_load(tmpdir_path(0, "rack48/worker.yaml"), &config, err, sizeof err);
    if (rc != 0)
        fail_msg("worker.yaml does not load: %s", err);
    assert_string_equal(config->worker, "rack02");
    assert_string_equal(config->master, "tcp://127.0.0.1:5555");
    assert_string_equal(config->tftp_root, tmpdir_path(0, "tftp"));
    assert_string_equal(config->master_public_key, "/etc/rackrun/keys/master");
    assert_string_equal(config->secret_key, "/etc/rackrun/keys/rack02_secret");
    assert_int_equal(config->device_count, NODES);
    for (int nn = 1; nn <= NODES; nn++) {
        const rr_device_config_t *d = &config->devices[nn - 1];
        char name[32], bmc[32], password[16];
        snprintf(name, sizeof name, "calxeda02-%02d", nn);
        snprintf(bmc, sizeof bmc, "calxeda02-%02d-02", nn);
        snprintf(password, sizeof password, "pw-%02d", nn);
        assert_string_equal(d->name, name);
        assert_string_equal(d->type, "highbank");
        assert_int_equal(d->tag_count, 1);
        assert_string_equal(d->tags[0], "sata");
        assert_string_equal(d->bmc_host, bmc);
        assert_int_equal(d->bmc_port, 623);
        assert_string_equal(d->bmc_user, "admin");
        assert_string_equal(d->bmc_password, password);     /* its own file, not a neighbour's */
        assert_string_equal(d->mac, hosts[(nn - 1) * IFACES].mac);  /* eth0 is the PXE MAC */
        assert_int_equal(d->bootloader_delay_ms, 300);
    }
    rr_worker_config_destroy(&config);
    assert_null(config);
}

static void test_rack_generated_files_hold_no_password(void **state)
{
    assert_null(strstr(worker_yaml, "pw-"));
    assert_null(strstr(dnsmasq_conf, "pw-"));
    size_t files = 0;
    for (const char *p = worker_yaml; (p = strstr(p, "password_file: ")); p++)
        files++;
    assert_int_equal(files, NODES);
    assert_null(strstr(worker_yaml, "password_env"));
}

/* ---- tests that run the generator themselves ----------------------------------------- */

/* Run rack-gen with the rack of MAC BASE, NODES nodes, network NET into OUT. */
static int run_small_rack(const char *base, const char *nodes, const char *net, const char *out,
                          deploy_run_t *run)
{
    const char *args[] = { "--machine", "3", "--nodes", nodes, "--mac-base", base,
                           "--network", net, "--master", "tcp://127.0.0.1:5555",
                           "--out", out, NULL };
    return deploy_rack_gen(args, run);
}

static void test_rack_mac_carry_runs_across_three_bytes(void **state)
{
    deploy_run_t run;
    assert_int_equal(run_small_rack("00:50:43:ff:ff:ff", "2", "10.3.0.0/16",
                                    tmpdir_path(1, "carry3"), &run), 0);
    assert_int_equal(run.exit_code, 0);
    deploy_run_free(&run);
    char *conf = tmpdir_slurp(tmpdir_path(1, "carry3/dnsmasq.conf"), NULL);
    host_entry_t entries[8];
    assert_non_null(conf);
    assert_int_equal(parse_hosts(conf, entries, 8), 6);
    assert_string_equal(entries[0].mac, "00:50:43:ff:ff:ff");
    assert_string_equal(entries[1].mac, "00:50:44:00:00:00");
    assert_string_equal(entries[5].mac, "00:50:44:00:00:04");
    assert_string_equal(entries[5].host, "calxeda03-02-02");
    free(conf);
}

/* Names in directory PATH, sorted, joined by ' ' into OUT. */
static void list_dir(const char *path, char *out, size_t outlen)
{
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    size_t len = 0;
    out[0] = '\0';
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
            len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? " " : "",
                                    names[i]->d_name);
        free(names[i]);
    }
    free(names);
}

static void test_rack_gen_writes_only_into_its_out_dir(void **state)
{
    char listing[1024], out[4096];
    struct stat st;
    tmpdir_mkdir(1, "jail");
    tmpdir_put(1, "jail/victim", "keep\n", 0644);
    snprintf(out, sizeof out, "%s", tmpdir_mkdir(1, "jail/out"));
    /* a planted symlink must be replaced, never followed */
    assert_int_equal(symlink("../victim", tmpdir_path(1, "jail/out/worker.yaml")), 0);
    deploy_run_t run;
    assert_int_equal(run_small_rack("00:50:43:03:00:00", "4", "10.3.0.0/16", out, &run), 0);
    assert_int_equal(run.exit_code, 0);
    deploy_run_free(&run);
    list_dir(tmpdir_path(1, "jail"), listing, sizeof listing);
    assert_string_equal(listing, "out victim");
    list_dir(out, listing, sizeof listing);
    assert_string_equal(listing, "dnsmasq.conf worker.yaml");   /* no temp files left */
    char *victim = tmpdir_slurp(tmpdir_path(1, "jail/victim"), NULL);
    assert_string_equal(victim, "keep\n");
    free(victim);
    assert_int_equal(lstat(tmpdir_path(1, "jail/out/worker.yaml"), &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

static void assert_refused(const char *base, const char *nodes, const char *net,
                           const char *message)
{
    deploy_run_t run;
    const char *out = tmpdir_path(2, "refused");
    assert_int_equal(run_small_rack(base, nodes, net, out, &run), 0);
    assert_int_equal(run.exit_code, 2);
    if (!strstr(run.out, message))
        fail_msg("expected '%s' in: %s", message, run.out);
    deploy_run_free(&run);
    assert_int_equal(access(out, F_OK), -1);    /* nothing written, not even the directory */
}

static void test_rack_gen_refuses_macs_that_run_into_multicast(void **state)
{
    /* fe:ff:ff:ff:ff:fe + 2 carries into ff:..., a multicast address */
    assert_refused("fe:ff:ff:ff:ff:fe", "1", "10.3.0.0/16", "multicast");
}

static void test_rack_gen_refuses_a_network_too_small_for_the_rack(void **state)
{
    assert_refused("00:50:43:03:00:00", "48", "10.3.0.0/24", "too small");
}

static void test_rack_gen_refuses_a_node_count_over_99(void **state)
{
    assert_refused("00:50:43:03:00:00", "100", "10.3.0.0/16", "nodes: '100'");
}

static void test_rack_file_gives_settings_and_flags_override_them(void **state)
{
    const char *rack = tmpdir_put(3, "rack07.yaml",
                                  "# rack 07\n"
                                  "machine: 7\n"
                                  "nodes: 12\n"
                                  "mac_base: \"00:50:43:07:00:00\"\n"
                                  "network: 10.7.0.0/16\n"
                                  "master: tcp://127.0.0.1:5555   # the lab master\n"
                                  "bmc_address: ip\n"
                                  "insecure: yes\n",
                                  0644);
    const char *args[] = { "--rack", rack, "--nodes", "2", "--out", tmpdir_path(4, "rack07"),
                           NULL };
    deploy_run_t run;
    assert_int_equal(deploy_rack_gen(args, &run), 0);
    assert_int_equal(run.exit_code, 0);
    deploy_run_free(&run);
    char *yaml = tmpdir_slurp(tmpdir_path(4, "rack07/worker.yaml"), NULL);
    assert_non_null(yaml);
    assert_non_null(strstr(yaml, "\nworker: rack07\n"));
    assert_non_null(strstr(yaml, "- name: calxeda07-02\n"));
    assert_null(strstr(yaml, "calxeda07-03"));                  /* --nodes 2 won */
    assert_non_null(strstr(yaml, "host: \"10.7.2.2\""));        /* bmc_address: ip */
    assert_null(strstr(yaml, "secret_key"));                    /* insecure: yes */
    free(yaml);
}

static void test_rack_file_with_an_unknown_key_is_refused_with_its_line(void **state)
{
    const char *rack = tmpdir_put(3, "typo.yaml",
                                  "machine: 7\nnodes: 2\nmac_bsae: 00:50:43:07:00:00\n", 0644);
    const char *args[] = { "--rack", rack, "--out", tmpdir_path(4, "typo"), NULL };
    deploy_run_t run;
    assert_int_equal(deploy_rack_gen(args, &run), 0);
    assert_int_equal(run.exit_code, 2);
    if (!strstr(run.out, "typo.yaml:3: unknown key 'mac_bsae'"))
        fail_msg("unexpected: %s", run.out);
    deploy_run_free(&run);
}

int main(void)
{
    if (!deploy_find_tool("python3")) {
        printf("SKIP: python3 not found: deploy/rack-gen cannot run\n");
        return DEPLOY_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rack_of_48_names_all_144_interfaces_by_convention),
        cmocka_unit_test(test_rack_macs_count_up_with_carry_across_bytes),
        cmocka_unit_test(test_rack_addresses_follow_interface_blocks),
        cmocka_unit_test(test_rack_macs_ips_and_names_are_unique),
        cmocka_unit_test(test_rack_dnsmasq_conf_serves_tftp_and_resolves_every_host),
        cmocka_unit_test(test_rack_worker_yaml_loads_with_a_password_file_per_node),
        cmocka_unit_test(test_rack_generated_files_hold_no_password),
        cmocka_unit_test(test_rack_mac_carry_runs_across_three_bytes),
        cmocka_unit_test(test_rack_gen_writes_only_into_its_out_dir),
        cmocka_unit_test(test_rack_gen_refuses_macs_that_run_into_multicast),
        cmocka_unit_test(test_rack_gen_refuses_a_network_too_small_for_the_rack),
        cmocka_unit_test(test_rack_gen_refuses_a_node_count_over_99),
        cmocka_unit_test(test_rack_file_gives_settings_and_flags_override_them),
        cmocka_unit_test(test_rack_file_with_an_unknown_key_is_refused_with_its_line),
    };
    return cmocka_run_group_tests(tests, rack48_setup, rack48_teardown);
}
