-- Test shim of Kong's kong.db.schema.typedefs: only the typedefs schema.lua uses, same shapes as Kong 3.x.
local null = ngx and ngx.null or setmetatable({}, { __tostring = function() return "null" end })


local typedefs = {}


-- Like Kong's Schema.define: a field table that can be called with overrides.
local function define(base)
  return setmetatable(base, {
    __call = function(self, overrides)
      local t = {}
      for k, v in pairs(self) do
        t[k] = v
      end
      for k, v in pairs(overrides or {}) do
        t[k] = v
      end
      return t
    end,
  })
end


local function validate_header_name(name)
  if name:match("^[%w%-_]+$") then
    return true
  end
  return nil, "bad header name '" .. name .. "', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
end


typedefs.header_name = define {
  type = "string",
  custom_validator = validate_header_name,
  description = "A string representing an HTTP header name.",
}

typedefs.no_consumer = define {
  type = "foreign",
  reference = "consumers",
  eq = null,
  description = "Custom type for representing a foreign key with a null value allowed.",
}

typedefs.protocols_http = define {
  type = "set",
  required = true,
  default = { "grpc", "grpcs", "http", "https" },
  elements = { type = "string", one_of = { "grpc", "grpcs", "http", "https" } },
  description = "A set of strings representing HTTP protocols.",
}


return typedefs
