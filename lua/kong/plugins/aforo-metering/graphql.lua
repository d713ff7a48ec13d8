-- Finds a GraphQL request's operation (type and name) in its query text without parsing the document:
-- a bounded scan that reads only the top level (outside every selection set), skipping strings,
-- block strings, comments, variable definitions and fragment definitions. Nothing is executed or
-- validated; a document the scan cannot read yields nil and the request is metered as a plain API call.
local byte = string.byte
local find = string.find
local sub = string.sub
local upper = string.upper
local min = math.min

local _M = {}

--- Query text past this many bytes is not scanned (an operation defined after it is not found).
_M.MAX_SCAN = 65536

local OPEN, CLOSE, QUOTE, HASH, LPAREN, RPAREN = 123, 125, 34, 35, 40, 41
local OPERATION = { query = true, mutation = true, subscription = true }


-- Index past the string literal opening at i ('"' or '"""'), or nil when it does not end.
local function skip_string(q, i, n)
  if sub(q, i, i + 2) == '"""' then
    local e = find(q, '"""', i + 3, true)
    return e and e + 3
  end
  local j = i + 1
  while j <= n do
    local k = find(q, '[\\"\n]', j)
    if not k then
      return nil
    end
    local c = byte(q, k)
    if c == QUOTE then
      return k + 1
    elseif c == 10 then
      return nil -- a single-line string does not span lines
    end
    j = k + 2 -- a backslash escapes the next character
  end
  return nil
end


--- The operation of `query`: "QUERY" | "MUTATION" | "SUBSCRIPTION" and its name (nil when anonymous),
-- the one named `wanted` when given (the request's operationName), else the first. When `wanted` is
-- not defined in the scanned text, the first operation's type with `wanted` as the name. nil when no
-- operation is found.
function _M.operation(q, wanted)
  local n = min(#q, _M.MAX_SCAN)
  local i, depth, parens = 1, 0, 0
  local pending = false -- a definition keyword was read: the next top-level '{' is its selection set
  local first_type, first_name
  while i <= n do
    i = find(q, depth > 0 and '[{}"#]' or '[{}"#()_%a]', i)
    if not i or i > n then
      break
    end
    local c = byte(q, i)
    if c == HASH then
      i = find(q, "\n", i, true)
      if not i then
        break
      end
    elseif c == QUOTE then
      i = skip_string(q, i, n)
      if not i then
        break
      end
    elseif c == OPEN then
      if depth == 0 and parens == 0 then
        if not pending then -- "{ ... }": the shorthand anonymous query
          if not wanted then
            return "QUERY", nil
          end
          first_type = first_type or "QUERY"
        end
        pending = false
      end
      depth = depth + 1
      i = i + 1
    elseif c == CLOSE then
      depth = depth > 0 and depth - 1 or 0
      i = i + 1
    elseif c == LPAREN then
      parens = parens + 1
      i = i + 1
    elseif c == RPAREN then
      parens = parens > 0 and parens - 1 or 0
      i = i + 1
    else -- a name at the top level
      local _, e = find(q, "^[_%w]+", i)
      local word = sub(q, i, e)
      i = e + 1
      if parens == 0 and not pending and OPERATION[word] then
        pending = true
        local s, ne = find(q, "^[%s,]*[_%a][_%w]*", i)
        local name
        if s then
          name = sub(q, i, ne):match("[_%a][_%w]*$")
          i = ne + 1
        end
        local op = upper(word)
        if not wanted or wanted == name then
          return op, name
        end
        first_type = first_type or op
        first_name = first_name or name
      elseif parens == 0 and not pending and word == "fragment" then
        pending = true
      end
    end
  end
  if first_type then
    return first_type, wanted or first_name
  end
  return nil
end



--- Response bytes looked at for a top-level "errors" member (gqlHasErrors); past them a response is
-- not read (its events carry no gqlHasErrors unless an "errors" member was found before).
_M.MAX_RESPONSE_SCAN = 16384

local LBRACKET, RBRACKET, BACKSLASH = 91, 93, 92

-- Index of the quote closing the JSON string that opens at i, or nil when it does not end by n.
local function string_end(s, i, n)
  local j = i + 1
  while true do
    local k = find(s, '["\\]', j)
    if not k or k > n then
      return nil
    end
    if byte(s, k) ~= BACKSLASH then
      return k
    end
    j = k + 2
  end
end


--- Whether each GraphQL result in a JSON response (the first MAX_RESPONSE_SCAN bytes of it, `complete`
-- when that is the whole body) has a top-level "errors" member that is neither null nor []:
-- { [k] = true | false } for the result k (1 for a response object, its position for the array of a
-- batch), a result absent when it cannot be told (past the bytes looked at, or not a JSON object).
-- nil when the text is no JSON object or array. A bounded scan: no decoding, no table per member.
function _M.response_errors(s, complete)
  local n = min(#s, _M.MAX_RESPONSE_SCAN)
  local i = find(s, "[^ \t\r\n]")
  if not i or i > n then
    return nil
  end
  local c = byte(s, i)
  local array = c == LBRACKET
  if not array and c ~= OPEN then
    return nil
  end
  local out = {}
  -- Fast path: a whole body without the text "errors" has no result with errors (one memchr-like search).
  if complete and #s <= n and not find(s, '"errors"', i, true) then
    if not array then
      out[1] = false
      return out
    end
  end
  local members = array and 2 or 1 -- the depth of a result's members
  local k = array and 0 or 1        -- the result being read
  local depth = 0
  while true do
    i = find(s, '[{}%[%]"]', i)
    if not i or i > n then
      return out
    end
    c = byte(s, i)
    if c == QUOTE then
      local e = string_end(s, i, n)
      if not e then
        return out
      end
      if depth == members and out[k] == nil and e - i == 7 and sub(s, i + 1, e - 1) == "errors" then
        local _, v = find(s, "^[ \t\r\n]*:[ \t\r\n]*", e + 1)
        if v and v < n and byte(s, v + 1) == LBRACKET and not find(s, "^%[[ \t\r\n]*%]", v + 1) then
          out[k] = true -- "errors": [ ... ] with something in it
        end
      end
      i = e + 1
    elseif c == OPEN or c == LBRACKET then
      depth = depth + 1
      if array and depth == 2 and c == OPEN then
        k = k + 1
      end
      i = i + 1
    else -- '}' or ']'
      if depth == members and c == CLOSE and out[k] == nil then
        out[k] = false -- the result ended without errors
      end
      depth = depth - 1
      if depth <= 0 then
        return out
      end
      i = i + 1
    end
  end
end


return _M
