/* Config defaults, environment overrides, invalid values. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "antar/config.h"

static void clear_env(void)
{
    const char *vars[] = {"ANTAR_PORT",    "ANTAR_USER_PORT",  "ANTAR_CORE_PORT",
                          "ANTAR_THREADS", "ANTAR_BODY_LIMIT", "ANTAR_HOST",
                          "ANTAR_DB_PORT", "ANTAR_TIMEOUT_MS"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++)
        unsetenv(vars[i]);
}

TestSuite(config, .init = clear_env);

Test(config, defaults)
{
    antar_config_t c;
    cr_assert_eq(antar_config_load(&c, "user"), 0);
    cr_assert_str_eq(c.service, "user");
    cr_assert_str_eq(c.host, "127.0.0.1");
    cr_assert_eq(c.port, 8001);
    cr_assert_eq(c.threads, 8);
    cr_assert_eq(c.body_limit, 65536);
    cr_assert_eq(c.db_port, 3307);
    cr_assert_str_eq(c.db_user, "antar_user");
    cr_assert_str_eq(c.db_name, "antar_user");
    cr_assert_eq(c.redis_port, 6380);
    cr_assert_eq(c.connect_timeout_ms, 500);
    cr_assert_eq(c.timeout_ms, 3000);
    cr_assert_eq(c.db_timeout_s, 3);
    cr_assert_eq(c.redis_timeout_ms, 1000);
    cr_assert_str_eq(c.client_id, "user-service");
    /* Peers are called on their internal listeners. */
    cr_assert_str_eq(c.core_url, "http://127.0.0.1:9003");
    cr_assert_str_eq(c.user_url, "http://127.0.0.1:9001");
    cr_assert_str_eq(c.driver_url, "http://127.0.0.1:9002");
    cr_assert_eq(c.internal_port, 9001);
    cr_assert_eq(c.internal_threads, 4);
    cr_assert_eq(c.drain_s, 10);
    cr_assert_eq(c.deregister_ms, 1500);
    cr_assert_str_eq(c.audience, "antar");
    cr_assert_str_eq(c.api_file, "build/api/user.json");
    cr_assert_str_eq(c.sql_dir, "services/user/sql");
    cr_assert_str_eq(c.state_dir, ".run/user");
    cr_assert_eq(antar_config()->port, 8001);
    antar_config_load(&c, "driver");
    cr_assert_eq(c.port, 8002);
    cr_assert_eq(c.internal_port, 9002);
    antar_config_load(&c, "core");
    cr_assert_eq(c.port, 8003);
    cr_assert_eq(c.internal_port, 9003);
}

Test(config, internal_listener_settings)
{
    setenv("ANTAR_INTERNAL_PORT", "9100", 1);
    setenv("ANTAR_DRIVER_INTERNAL_PORT", "9200", 1);
    setenv("ANTAR_INTERNAL_THREADS", "2", 1);
    setenv("ANTAR_DRAIN_S", "3", 1);
    setenv("ANTAR_DEREGISTER_MS", "0", 1);
    antar_config_t c;
    cr_assert_eq(antar_config_load(&c, "user"), 0);
    cr_assert_eq(c.internal_port, 9100);
    cr_assert_eq(c.internal_threads, 2);
    cr_assert_eq(c.drain_s, 3);
    cr_assert_eq(c.deregister_ms, 0);
    cr_assert_eq(antar_config_load(&c, "driver"), 0);
    cr_assert_eq(c.internal_port, 9200, "the per-service variable wins");
    /* The two listeners cannot share a port. */
    setenv("ANTAR_INTERNAL_PORT", "8001", 1);
    cr_assert_eq(antar_config_load(&c, "user"), -1);
    setenv("ANTAR_DRAIN_S", "0", 1);
    setenv("ANTAR_INTERNAL_PORT", "9100", 1);
    cr_assert_eq(antar_config_load(&c, "user"), -1);
    cr_assert_eq(c.drain_s, 10, "an invalid bound falls back to the default");
    unsetenv("ANTAR_INTERNAL_PORT");
    unsetenv("ANTAR_DRIVER_INTERNAL_PORT");
    unsetenv("ANTAR_INTERNAL_THREADS");
    unsetenv("ANTAR_DRAIN_S");
    unsetenv("ANTAR_DEREGISTER_MS");
}

Test(config, env_overrides)
{
    antar_config_t c;
    setenv("ANTAR_PORT", "9000", 1);
    setenv("ANTAR_THREADS", "2", 1);
    setenv("ANTAR_HOST", "0.0.0.0", 1);
    cr_assert_eq(antar_config_load(&c, "core"), 0);
    cr_assert_eq(c.port, 9000);
    cr_assert_eq(c.threads, 2);
    cr_assert_str_eq(c.host, "0.0.0.0");
    setenv("ANTAR_CORE_PORT", "9103", 1);
    antar_config_load(&c, "core");
    cr_assert_eq(c.port, 9103, "ANTAR_<SVC>_PORT wins");
    antar_config_load(&c, "user");
    cr_assert_eq(c.port, 9000);
}

Test(config, invalid_numbers_use_defaults)
{
    antar_config_t c;
    setenv("ANTAR_PORT", "80x", 1);
    setenv("ANTAR_THREADS", "0", 1);
    setenv("ANTAR_BODY_LIMIT", "-5", 1);
    setenv("ANTAR_DB_PORT", "70000", 1);
    setenv("ANTAR_TIMEOUT_MS", " 5", 1);
    cr_assert_eq(antar_config_load(&c, "user"), -1);
    cr_assert_eq(c.port, 8001);
    cr_assert_eq(c.threads, 8);
    cr_assert_eq(c.body_limit, 65536);
    cr_assert_eq(c.db_port, 3307);
    cr_assert_eq(c.timeout_ms, 3000);
}

Test(config, env_helper)
{
    setenv("ANTAR_X_TEST", "", 1);
    cr_assert_str_eq(antar_config_env("ANTAR_X_TEST", "d"), "d");
    setenv("ANTAR_X_TEST", "v", 1);
    cr_assert_str_eq(antar_config_env("ANTAR_X_TEST", "d"), "v");
}

Test(config, the_one_numeric_parser)
{
    unsetenv("ANTAR_T_NUM");
    cr_assert_eq(antar_config_long("ANTAR_T_NUM", 7, 1, 10), 7, "unset: the default");
    setenv("ANTAR_T_NUM", "", 1);
    cr_assert_eq(antar_config_long("ANTAR_T_NUM", 7, 1, 10), 7, "empty: the default");
    setenv("ANTAR_T_NUM", "10", 1);
    cr_assert_eq(antar_config_long("ANTAR_T_NUM", 7, 1, 10), 10);
    setenv("ANTAR_T_NUM", "-3", 1);
    cr_assert_eq(antar_config_long("ANTAR_T_NUM", 7, -5, 10), -3);
    const char *bad[] = {"11", "0", "abc", "5x", " 5", "9999999999999999999999", "0x5", "5.0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("ANTAR_T_NUM", bad[i], 1);
        cr_assert_eq(antar_config_long("ANTAR_T_NUM", 7, 1, 10), 7, "'%s' gives the default",
                     bad[i]);
    }
    unsetenv("ANTAR_T_NUM");
}
