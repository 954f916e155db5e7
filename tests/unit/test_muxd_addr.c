/* test_muxd_addr — $USBMUXD_SOCKET_ADDRESS as libusbmuxd 2.0.2 reads it: a Unix socket,
 * HOST:PORT or [V6]:PORT; what it cannot read is an error naming the value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <string.h>

#include "fr_err.h"
#include "fr_muxd_addr.h"

static void unix_sockets_and_the_default(void **state)
{
    struct fr_muxd_addr a;
    char err[256];
    assert_int_equal(fr_muxd_addr_parse("UNIX:/tmp/mux.sock", "/var/run/usbmuxd", &a, err, sizeof err), 0);
    assert_false(a.tcp);
    assert_string_equal(a.path, "/tmp/mux.sock");
    assert_string_equal(a.text, "UNIX:/tmp/mux.sock");
    assert_int_equal(fr_muxd_addr_parse(NULL, "/var/run/usbmuxd", &a, err, sizeof err), 0);
    assert_string_equal(a.path, "/var/run/usbmuxd");
    assert_int_equal(fr_muxd_addr_parse("", "/root/var/run/usbmuxd", &a, err, sizeof err), 0);
    assert_string_equal(a.path, "/root/var/run/usbmuxd");
}

static void tcp_addresses(void **state)
{
    struct fr_muxd_addr a;
    char err[256];
    assert_int_equal(fr_muxd_addr_parse("127.0.0.1:27015", "", &a, err, sizeof err), 0);
    assert_true(a.tcp);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 27015);
    assert_int_equal(fr_muxd_addr_parse("[::1]:5000", "", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 5000);
    assert_int_equal(fr_muxd_addr_parse("localhost:1", "", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "localhost");

    struct sockaddr_storage ss;
    socklen_t len = 0;
    assert_int_equal(fr_muxd_addr_parse("[::1]:5000", "", &a, err, sizeof err), 0);
    assert_int_equal(fr_muxd_addr_resolve(&a, &ss, &len, err, sizeof err), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 5000);
}

static void refused(const char *value, const char *why)
{
    struct fr_muxd_addr a;
    char err[512] = "";
    assert_int_equal(fr_muxd_addr_parse(value, "/var/run/usbmuxd", &a, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "USBMUXD_SOCKET_ADDRESS '"));
    assert_non_null(strstr(err, value));
    assert_non_null(strstr(err, why));
    assert_non_null(strstr(err, "expected UNIX:/path, HOST:PORT or [IPV6]:PORT"));
}

/* libusbmuxd would quietly fall back to /var/run/usbmuxd on each of these. */
static void what_libusbmuxd_cannot_read_is_an_error(void **state)
{
    refused("UNIX:", "no path after UNIX:");
    refused("localhost", "no :PORT");
    refused("127.0.0.1:", "not a number from 1 to 65535");
    refused("127.0.0.1:0", "not a number from 1 to 65535");
    refused("127.0.0.1:65536", "not a number from 1 to 65535");
    refused("127.0.0.1:27015x", "not a number from 1 to 65535");
    refused(":27015", "no host before :PORT");
    refused("[::1:27015", "closing ']'");
    refused("/var/run/usbmuxd", "no :PORT");
    char longpath[200] = "UNIX:/";
    memset(longpath + 6, 'a', 150);
    longpath[156] = '\0';
    refused(longpath, "longer than a Unix socket's 107 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unix_sockets_and_the_default),
        cmocka_unit_test(tcp_addresses),
        cmocka_unit_test(what_libusbmuxd_cannot_read_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
