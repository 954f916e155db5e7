/* test_sha — SHA-256 and SHA-1 (OpenSSL EVP) against the FIPS 180 vectors, in any chunking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fr_sha.h"

static void sha256_of(const char *s, size_t n, size_t chunk, char hex[65])
{
    struct fr_sha256 c;
    fr_sha256_init(&c);
    for (size_t i = 0; i < n; i += chunk)
        fr_sha256_update(&c, s + i, n - i < chunk ? n - i : chunk);
    fr_sha256_hex(&c, hex);
}

static void sha1_of(const char *s, size_t n, size_t chunk, char hex[41])
{
    struct fr_sha1 c;
    fr_sha1_init(&c);
    for (size_t i = 0; i < n; i += chunk)
        fr_sha1_update(&c, s + i, n - i < chunk ? n - i : chunk);
    fr_sha1_hex(&c, hex);
}

static void fips_vectors(void **state)
{
    char h[65], g[41];
    sha256_of("", 0, 1, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_of("abc", 3, 1, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_of(two, strlen(two), 7, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    sha1_of("abc", 3, 2, g);
    assert_string_equal(g, "a9993e364706816aba3e25717850c26c9cd0d89d");
    sha1_of(two, strlen(two), 64, g);
    assert_string_equal(g, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

static void a_million_a(void **state)
{
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    char h[65], g[41];
    for (size_t chunk = 1; chunk <= 100000; chunk *= 10) {
        sha256_of(a, n, chunk, h);
        assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    sha1_of(a, n, 4096, g);
    assert_string_equal(g, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(a);
}

/* A context dropped unfinished is released (no leak under ASan), and a released one
 * gives no hash rather than a wrong one. */
static void an_unfinished_context_is_released(void **state)
{
    struct fr_sha256 a;
    struct fr_sha1 b;
    fr_sha256_init(&a);
    fr_sha1_init(&b);
    fr_sha256_update(&a, "abc", 3);
    fr_sha256_release(&a);
    fr_sha1_release(&b);
    fr_sha1_release(&b); /* twice is safe */
    char h[65];
    fr_sha256_hex(&a, h);
    assert_string_equal(h, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fips_vectors),
        cmocka_unit_test(a_million_a),
        cmocka_unit_test(an_unfinished_context_is_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
