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
_M.MAX_RESPONSE_SCAN = 8192

local LBRACKET, RBRACKET, BACKSLASH, E = 91, 93, 92, 101
local SPACE, TAB, LF, CR = 32, 9, 10, 13


-- Is the member value at v (past "errors" and its colon) a non-empty array?
local function nonempty_array(s, v, n)
  local _, at = find(s, "^[ \t\r\n]*:[ \t\r\n]*%[[ \t\r\n]*", v)
  return at ~= nil and at < n and byte(s, at + 1) ~= RBRACKET
end


-- Index of the quote closing the string that opens at q (one not escaped by an odd run of
-- backslashes), or nil when it is not within n.
local function string_end(s, q, n)
  local e = q
  repeat
    e = find(s, '"', e + 1, true)
    if not e or e > n then
      return nil
    end
    local b = e - 1
    while byte(s, b) == BACKSLASH do
      b = b - 1
    end
  until (e - 1 - b) % 2 == 0
  return e
end


-- Is the string at q, in a whole body s of n bytes, a member of its top-level object? From it to the
-- end, the first bracket that closes more than was opened since must be the body's last one.
local function top_level(s, q, n)
  local depth, pos = 0, q
  while true do
    local e = string_end(s, pos, n)
    if not e then
      return false
    end
    local nq = find(s, '"', e + 1, true) or n + 1
    for j = e + 1, nq - 1 do
      local c = byte(s, j)
      if c == OPEN or c == LBRACKET then
        depth = depth + 1
      elseif c == CLOSE or c == RBRACKET then
        depth = depth - 1
        if depth < 0 then
          return c == CLOSE and find(s, "^[ \t\r\n]*$", j + 1) ~= nil
        end
      end
    end
    if nq > n then
      return false
    end
    pos = nq
  end
end


--- Whether each GraphQL result in a JSON response (its first MAX_RESPONSE_SCAN bytes; `complete` when
-- they are the whole body) has a top-level "errors" member that is neither null nor []: a table
-- { [k] = true | false, rest = false | nil } for the result k (1 for a response object, its position
-- in the array of a batch), `rest` the answer for every result not listed (false when the whole body
-- was looked at, nil: cannot be told). nil when the text is no JSON object or array.
-- Bounded, no decoding, and for a response object without reading its data: the first member is
-- looked at (errors first: graphql-js, graphql-java), then the last "errors" text of a whole body
-- (errors after data), found by plain searches; only when that text is not a top-level member
-- (a field of data named errors) is the body scanned from its start to that text, a string at a time
-- (plain searches for the quotes, a look at the few bytes between strings for brackets).
function _M.response_errors(s, complete)
  local n = min(#s, _M.MAX_RESPONSE_SCAN)
  local i = 1
  local c = byte(s, 1)
  while c == SPACE or c == TAB or c == LF or c == CR do
    i = i + 1
    c = byte(s, i)
  end
  if not c or i > n then
    return nil
  end
  local array = c == LBRACKET
  if not array and c ~= OPEN then
    return nil
  end
  local out = {}
  local whole = complete and #s <= n
  if whole then
    out.rest = false -- the whole body is looked at: a result not found with errors has none
  end
  if not array then
    local _, ke = find(s, '^[ \t\r\n]*"errors"', i + 1)
    if ke and ke < n then -- the first member: there is one errors member at most
      out[1] = nonempty_array(s, ke + 1, n)
      return out
    end
  end
  -- The last "errors" text (past it no member can be found; none: done). The search is for `rrors"`:
  -- LuaJIT's plain find stops at each occurrence of its first character, and '"' is every few bytes.
  local last, at = nil, i + 1
  while true do
    local f = find(s, 'rrors"', at, true)
    if not f or f + 5 > n then
      break
    end
    if byte(s, f - 1) == E and byte(s, f - 2) == QUOTE and byte(s, f - 3) ~= BACKSLASH then
      last = f - 2
    end
    at = f + 6
  end
  if not last then
    return out
  end
  if whole and not array and find(s, "^[ \t\r\n]*:", last + 8) and top_level(s, last, n) then
    out[1] = nonempty_array(s, last + 8, n) -- errors after data (and extensions)
    return out
  end
  local members = array and 2 or 1 -- the depth of a result's members
  local k = array and 0 or 1        -- the result being read
  local depth = 0
  local pos = i                     -- the next byte outside a string
  while true do
    local q = find(s, '"', pos, true)
    if not q or q > last then
      return out
    end
    for j = pos, q - 1 do -- between two strings: brackets, colons, commas, numbers, literals, spaces
      c = byte(s, j)
      if c == OPEN or c == LBRACKET then
        depth = depth + 1
        if depth == 2 and array and c == OPEN then
          k = k + 1
        end
      elseif c == CLOSE or c == RBRACKET then
        depth = depth - 1
        if depth <= 0 then
          return out
        end
      end
    end
    local e = string_end(s, q, n)
    if not e then
      return out
    end
    if e - q == 7 and depth == members and byte(s, q + 1) == E and out[k] == nil
       and sub(s, q + 1, e - 1) == "errors" and nonempty_array(s, e + 1, n) then
      out[k] = true
      if not array then
        return out
      end
    end
    pos = e + 1
  end
end

return _M
