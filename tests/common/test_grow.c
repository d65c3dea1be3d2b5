/* test_grow.c: rr_grow doubles an array only when it is full, keeps the
 * elements, and leaves the caller's array alone when it cannot grow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "grow.h"

static void test_empty_array_gets_first_capacity(void **state)
{
    (void) state;
    size_t cap = 0;
    int *items = rr_grow(NULL, 0, &cap, sizeof *items, 8);
    assert_non_null(items);
    assert_int_equal(cap, 8);
    free(items);
}

static void test_array_with_room_is_returned_as_is(void **state)
{
    (void) state;
    size_t cap = 0;
    int *items = rr_grow(NULL, 0, &cap, sizeof *items, 4);
    assert_non_null(items);
    for (size_t count = 1; count < 4; count++) {
        assert_ptr_equal(rr_grow(items, count, &cap, sizeof *items, 4), items);
        assert_int_equal(cap, 4);
    }
    free(items);
}

static void test_full_array_doubles_and_keeps_its_elements(void **state)
{
    (void) state;
    size_t cap = 0, count = 0;
    int *items = NULL;
    for (int i = 0; i < 100; i++) {
        int *grown = rr_grow(items, count, &cap, sizeof *grown, 4);
        assert_non_null(grown);
        items = grown;
        items[count++] = i;
    }
    assert_int_equal(cap, 128);     /* 4, 8, ... 128 */
    for (int i = 0; i < 100; i++)
        assert_int_equal(items[i], i);
    free(items);
}

static void test_impossible_size_fails_and_leaves_the_array_alone(void **state)
{
    (void) state;
    size_t cap = 2;
    char *items = malloc(2 * 8);
    assert_non_null(items);
    items[0] = 'x';
    assert_null(rr_grow(items, 2, &cap, SIZE_MAX / 3, 1));  /* 4 * SIZE_MAX/3 overflows */
    assert_int_equal(cap, 2);
    assert_int_equal(items[0], 'x');                        /* still ours, still valid */
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_array_gets_first_capacity),
        cmocka_unit_test(test_array_with_room_is_returned_as_is),
        cmocka_unit_test(test_full_array_doubles_and_keeps_its_elements),
        cmocka_unit_test(test_impossible_size_fails_and_leaves_the_array_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
