-- LuaRocks spec of the aforo-metering Kong plugin: `luarocks make lua/aforo-metering-0.1.0-1.rockspec` from the repository root.
rockspec_format = "3.0"
package = "aforo-metering"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/aforo/aforo-sidecar.git",
  tag = "v0.1.0",
}
description = {
  summary = "Kong plugin: Aforo usage metering and entitlement checks through the local aforo-sidecar.",
  detailed = [[
    Asks the aforo-sidecar for an allow/throttle/block decision in the access phase and hands one
    usage event per request to the sidecar in the log phase (buffered per worker, flushed by timers).
  ]],
  license = "Apache-2.0",
  homepage = "https://github.com/aforo/aforo-sidecar",
  issues_url = "https://github.com/aforo/aforo-sidecar/issues",
  labels = { "kong", "kong-plugin", "metering", "billing" },
}
-- Kong 3.4 LTS and later bundle what the plugin needs (lua-cjson, lua-resty-core); nothing is installed.
dependencies = {
  "lua >= 5.1",
}
test_dependencies = {
  "busted",
}
test = {
  type = "busted",
  flags = { "tests/lua/spec" },
}
build = {
  type = "builtin",
  modules = {
    ["kong.plugins.aforo-metering.handler"] = "lua/kong/plugins/aforo-metering/handler.lua",
    ["kong.plugins.aforo-metering.schema"] = "lua/kong/plugins/aforo-metering/schema.lua",
    ["kong.plugins.aforo-metering.client"] = "lua/kong/plugins/aforo-metering/client.lua",
    ["kong.plugins.aforo-metering.buffer"] = "lua/kong/plugins/aforo-metering/buffer.lua",
    ["kong.plugins.aforo-metering.batch"] = "lua/kong/plugins/aforo-metering/batch.lua",
    ["kong.plugins.aforo-metering.lease"] = "lua/kong/plugins/aforo-metering/lease.lua",
    ["kong.plugins.aforo-metering.decision"] = "lua/kong/plugins/aforo-metering/decision.lua",
    ["kong.plugins.aforo-metering.event"] = "lua/kong/plugins/aforo-metering/event.lua",
    ["kong.plugins.aforo-metering.handshake"] = "lua/kong/plugins/aforo-metering/handshake.lua",
    ["kong.plugins.aforo-metering.identity"] = "lua/kong/plugins/aforo-metering/identity.lua",
    ["kong.plugins.aforo-metering.compat"] = "lua/kong/plugins/aforo-metering/compat.lua",
    ["kong.plugins.aforo-metering.overflow"] = "lua/kong/plugins/aforo-metering/overflow.lua",
    ["kong.plugins.aforo-metering.protocol"] = "lua/kong/plugins/aforo-metering/protocol.lua",
    ["kong.plugins.aforo-metering.graphql"] = "lua/kong/plugins/aforo-metering/graphql.lua",
    ["kong.plugins.aforo-metering.request"] = "lua/kong/plugins/aforo-metering/request.lua",
  },
}
