-- Test tool (run with lua5.1 from anywhere): what the plugin's schema says about Aforo v2.2 names and
-- about a Kong configuration, as JSON on stdout, for tests outside busted (the migrate-kong-config itest).
--
--   lua5.1 tests/lua/kong_config.lua v22-fields
--     {"<v2.2 field>": {"type": "string|integer|number|boolean|array|map", "elements": "<type>",
--                       "shorthand": true|false}, ...}: every name of compat.V22 with the type Kong checks
--     its value against (the shorthand's, or this plugin's field's when the name is one of its fields).
--   lua5.1 tests/lua/kong_config.lua check FILE
--     [{"where": "...", "config": {...processed...}} | {"where": "...", "errors": {...}}, ...]: every
--     aforo-metering entry of FILE (kong.yml or Admin API JSON) through the schema as Kong applies it;
--     exit 0 when there is at least one and each is valid, 1 otherwise.
local here = arg[0]:match("^(.*/)") or "./"
local root = here .. "../../"
package.path = root .. "lua/?.lua;" .. root .. "tests/lua/shim/?.lua;" .. package.path

local cjson = require "cjson"
local compat = require "kong.plugins.aforo-metering.compat"
local schema = require "kong.plugins.aforo-metering.schema"
local schema_check = require "aforo_shim.schema"
local kong_yml = require "aforo_shim.kong_yml"


local function def_of(name)
  for _, entry in ipairs(schema_check.config_field(schema).fields) do
    local n, def = next(entry)
    if n == name then
      return def, false
    end
  end
  for _, entry in ipairs(schema_check.config_field(schema).shorthand_fields) do
    local n, def = next(entry)
    if n == name then
      return def, true
    end
  end
end


local command, file = arg[1], arg[2]
if command == "v22-fields" then
  local out = {}
  for name in pairs(compat.V22) do
    local def, shorthand = def_of(name)
    assert(def, "compat.V22 names " .. name .. ", which is neither a field nor a shorthand of the schema")
    out[name] = { type = def.type, elements = def.elements and def.elements.type or nil, shorthand = shorthand }
  end
  io.write(cjson.encode(out), "\n")
elseif command == "check" and file then
  local ok, blocks = pcall(kong_yml.plugins, kong_yml.read(file), "aforo-metering")
  if not ok then
    io.stderr:write("cannot read ", file, ": ", tostring(blocks), "\n")
    os.exit(1)
  end
  local out, valid = {}, #blocks > 0
  for i, b in ipairs(blocks) do
    local conf, errs = schema_check.process(schema, b.config)
    out[i] = { where = b.where, config = conf, errors = errs }
    valid = valid and errs == nil
  end
  io.write(#out > 0 and cjson.encode(out) or "[]", "\n")
  os.exit(valid and 0 or 1)
else
  io.stderr:write("usage: lua5.1 tests/lua/kong_config.lua v22-fields | check FILE\n")
  os.exit(64)
end
