-- Test helper: the plugin entries of a Kong configuration file, as Kong reads them: a declarative kong.yml
-- (YAML or JSON; top-level `plugins`, and those under `services`, their `routes`, `routes` and
-- `consumers`), an Admin API answer (`GET /plugins`: {"data": [...]}), a list of plugins or one plugin.
-- YAML nulls become ngx.null (nil without ngx), as Kong's declarative loader gives them to the schema.
local lyaml = require "lyaml"

local _M = {}


local function denull(v)
  if v == lyaml.null then
    return ngx and ngx.null or nil
  end
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = denull(x)
  end
  return t
end


local function name_of(t)
  if type(t) == "table" then
    return t.name or t.username or t.id
  end
  return t
end


local function collect(list, name, where, out)
  if type(list) ~= "table" then
    return
  end
  for i, p in ipairs(list) do
    if type(p) == "table" and p.name == name then
      local scope = where
      if scope == "" then
        for _, kind in ipairs({ "service", "route", "consumer" }) do
          if p[kind] and p[kind] ~= lyaml.null then
            scope = kind .. " " .. tostring(name_of(p[kind]))
          end
        end
      end
      out[#out + 1] = { where = (scope == "" and "global" or scope) .. " #" .. i,
                        config = denull(type(p.config) == "table" and p.config or {}) }
    end
  end
end


--- The entries of plugin `name` in `text`: a list of { where = "global #1" | "route search-v1 #1" | ...,
-- config = the entry's config table }. Raises on text that is not YAML or JSON.
function _M.plugins(text, name)
  local root = lyaml.load(text)
  local out = {}
  if type(root) ~= "table" then
    return out
  end
  if root[1] then
    collect(root, name, "", out)
    return out
  end
  if root.name then
    collect({ root }, name, "", out)
  end
  collect(root.data, name, "", out)
  collect(root.plugins, name, "", out)
  for _, kind in ipairs({ "services", "routes", "consumers" }) do
    for _, owner in ipairs(type(root[kind]) == "table" and root[kind] or {}) do
      local singular = kind:sub(1, -2)
      collect(owner.plugins, name, singular .. " " .. tostring(name_of(owner)), out)
      if kind == "services" then
        for _, route in ipairs(type(owner.routes) == "table" and owner.routes or {}) do
          collect(route.plugins, name, "route " .. tostring(name_of(route)), out)
        end
      end
    end
  end
  return out
end


--- The contents of a file.
function _M.read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end


return _M
