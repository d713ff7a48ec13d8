-- luacheck (Debian lua-check) for the plugin and its specs; scripts/test.sh runs it before the build.
std = "ngx_lua"
globals = { "kong" }
max_line_length = 120
-- Schema descriptions are long strings by nature.
files["lua/kong/plugins/aforo-metering/schema.lua"] = { max_line_length = false }
files["lua/kong/plugins/aforo-metering/compat.lua"] = { max_line_length = false }
-- Kong calls handler methods with self and conf, whether a phase uses them or not.
unused_args = false
-- The shim and the specs stand in for nginx and Kong: they replace ngx's functions.
files["tests/lua"] = { std = "ngx_lua+busted", read_globals = {}, globals = { "ngx", "kong", "table" },
                       max_line_length = 140 }
