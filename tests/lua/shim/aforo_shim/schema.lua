-- Test helper: fills defaults and validates a plugin config with the subset of Kong's schema DSL that schema.lua uses.
--
-- Kong does this in kong.db.schema; here it is small and strict enough for the
-- specs and the nginx harness: type (string, integer, number, boolean, array, set, map, record),
-- required, default, one_of, between, len_min, len_max, match, elements, keys, values, field and
-- record custom_validator, and a record's shorthand_fields applied as Kong 3.x applies them
-- (kong.db.schema process_auto_fields: before defaults; each given shorthand value is validated
-- against its own definition, removed, and its func's result written into the record, a table
-- merged into the field's table, a scalar replacing the field's value: a shorthand without a
-- deprecation wins). Unknown fields are errors, as in Kong.
local _M = {}


local function deep_copy(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = deep_copy(x)
  end
  return t
end


local function is_integer(v)
  return type(v) == "number" and v == math.floor(v) and v > -math.huge and v < math.huge
end


local check_value -- forward

local function apply_shorthands(shorthands, value)
  local errs
  value = deep_copy(value)
  for _, entry in ipairs(shorthands) do
    local name, def = next(entry)
    local v = value[name]
    local null = ngx and ngx.null
    if v ~= nil and null ~= nil and v == null then
      -- A JSON null: valid for a field that is not required (Kong's validate_field), given to func as is.
      value[name] = nil
      def.func(v)
    elseif v ~= nil then
      local ok, err = check_value(def, v)
      if ok == nil then
        errs = errs or {}
        errs[name] = err
      else
        value[name] = nil
        local new_values = def.func(ok)
        if new_values then
          for k, nv in pairs(new_values) do
            if type(nv) == "table" and type(value[k]) == "table" then
              for kk, vv in pairs(nv) do value[k][kk] = vv end
            else
              value[k] = nv
            end
          end
        end
      end
    end
  end
  return value, errs
end


local function check_record(fields, value, record_validator, shorthands)
  if type(value) ~= "table" then
    return nil, "expected a record"
  end
  if shorthands then
    local errs
    value, errs = apply_shorthands(shorthands, value)
    if errs then
      return nil, errs
    end
  end
  local known, out, errs = {}, {}, nil
  for _, entry in ipairs(fields) do
    local name, field = next(entry)
    known[name] = true
    local v = value[name]
    if v == nil and field.default ~= nil then
      v = deep_copy(field.default)
    end
    if v == nil then
      if field.required then
        errs = errs or {}
        errs[name] = "required field missing"
      end
    else
      local ok, err = check_value(field, v)
      if ok == nil then
        errs = errs or {}
        errs[name] = err
      else
        out[name] = ok
      end
    end
  end
  for name in pairs(value) do
    if not known[name] then
      errs = errs or {}
      errs[name] = "unknown field"
    end
  end
  if errs then
    return nil, errs
  end
  if record_validator then
    local ok, err = record_validator(out)
    if not ok then
      return nil, { ["@entity"] = err }
    end
  end
  return out
end


check_value = function(field, v)
  local t = field.type
  if t == "string" then
    if type(v) ~= "string" then return nil, "expected a string" end
    if field.len_min and #v < field.len_min then return nil, "length must be at least " .. field.len_min end
    if field.len_max and #v > field.len_max then return nil, "length must be at most " .. field.len_max end
    if field.match and not v:match(field.match) then
      return nil, "invalid value: " .. v
    end
  elseif t == "integer" then
    if not is_integer(v) then return nil, "expected an integer" end
  elseif t == "number" then
    if type(v) ~= "number" then return nil, "expected a number" end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then return nil, "expected a boolean" end
  elseif t == "array" or t == "set" then
    if type(v) ~= "table" then return nil, "expected an array" end
    local out = {}
    for i, x in ipairs(v) do
      local ok, err = check_value(field.elements, x)
      if ok == nil then return nil, "element " .. i .. ": " .. tostring(err) end
      out[i] = ok
    end
    v = out
  elseif t == "map" then
    if type(v) ~= "table" then return nil, "expected a map" end
    local out = {}
    for k, x in pairs(v) do
      local okk, kerr = check_value(field.keys, k)
      if okk == nil then return nil, "key " .. tostring(k) .. ": " .. tostring(kerr) end
      local ok, err = check_value(field.values, x)
      if ok == nil then return nil, "value of " .. tostring(k) .. ": " .. tostring(err) end
      out[okk] = ok
    end
    v = out
  elseif t == "record" then
    return check_record(field.fields, v, field.custom_validator, field.shorthand_fields)
  elseif t == "foreign" then
    return nil, "not allowed"
  end
  if field.one_of then
    local found = false
    for _, allowed in ipairs(field.one_of) do
      if v == allowed then found = true end
    end
    if not found then return nil, "expected one of: " .. table.concat(field.one_of, ", ") end
  end
  if field.between and (v < field.between[1] or v > field.between[2]) then
    return nil, "value should be between " .. field.between[1] .. " and " .. field.between[2]
  end
  if field.custom_validator and t ~= "record" then
    local ok, err = field.custom_validator(v)
    if not ok then return nil, err end
  end
  return v
end


--- Returns the `config` field definition of a plugin schema.
function _M.config_field(schema)
  for _, entry in ipairs(schema.fields) do
    local name, field = next(entry)
    if name == "config" then
      return field
    end
  end
  error("schema has no config field")
end


--- Validates `config` and returns a copy with defaults filled, or nil and a table of errors.
function _M.process(schema, config)
  local field = _M.config_field(schema)
  return check_record(field.fields, config or {}, field.custom_validator, field.shorthand_fields)
end


return _M
