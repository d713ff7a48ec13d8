-- Minimal HTTP/1.1 client for the sidecar over ngx.socket.tcp (TCP or unix socket) with keepalive.
--
-- Only what the sidecar speaks: one request with a Content-Length body, one
-- response with Content-Length, chunked or close-delimited body. Connections
-- go back to the cosocket pool when the response allows it.
local ngx = ngx
local tcp = ngx.socket.tcp
local tonumber = tonumber
local type = type
local lower = string.lower
local find = string.find
local sub = string.sub
local concat = table.concat


local _M = {}


local targets = {} -- sidecar_url -> { host, port, pool, host_header }
-- Request head and body as an array of strings: send() copies it before it
-- yields, so one array per worker serves every request without concatenation.
local req = {}


--- Parses "http://host[:port]" or "unix:/path" once per url.
-- @return target table, or nil and an error string
function _M.target(url)
  local t = targets[url]
  if t then
    return t
  end
  if sub(url, 1, 5) == "unix:" then
    t = { host = url, port = nil, host_header = "localhost" }
  else
    local host, port = url:match("^http://([^/:]+):?(%d*)/?$")
    if not host then
      return nil, "unsupported sidecar_url " .. url
    end
    port = tonumber(port) or 80
    t = { host = host, port = port, host_header = host .. ":" .. port }
  end
  t.pool = "aforo:" .. url
  targets[url] = t
  return t
end


--- The request header line carrying conf.sidecar_token ("Authorization: Bearer <token>\r\n"), or nil
-- when no token is configured. Kong has resolved a vault reference before the plugin sees the config.
function _M.authorization(conf)
  local token = conf.sidecar_token
  if type(token) ~= "string" or token == "" then
    return nil
  end
  return "Authorization: Bearer " .. token .. "\r\n"
end


--- "HTTP <status>" for an error answer; a 401 names the plugin's sidecar_token.
function _M.status_text(status)
  if status == 401 then
    return "HTTP 401 (the sidecar wants its local API token: sidecar_token missing or wrong)"
  end
  return "HTTP " .. status
end


local function read_chunked(sock)
  local parts, n = {}, 0
  while true do
    local line, err = sock:receive("*l")
    if not line then
      return nil, err
    end
    local size = tonumber(line:match("^%s*(%x+)"), 16)
    if not size then
      return nil, "bad chunk size"
    end
    if size == 0 then
      repeat -- trailers end with an empty line
        line, err = sock:receive("*l")
        if not line then
          return nil, err
        end
      until line == ""
      return concat(parts, "", 1, n)
    end
    local data
    data, err = sock:receive(size)
    if not data then
      return nil, err
    end
    n = n + 1
    parts[n] = data
    local _
    _, err = sock:receive(2) -- CRLF after the chunk
    if err then
      return nil, err
    end
  end
end


-- Reads status line, headers and body. Returns status, body, keepalive flag.
local function read_response(sock, method)
  local line, err = sock:receive("*l")
  if not line then
    return nil, err
  end
  local minor, status = line:match("^HTTP/1%.(%d) (%d%d%d)")
  if not status then
    return nil, "bad status line"
  end
  status = tonumber(status)
  local keepalive = minor == "1"
  local length, chunked
  while true do
    line, err = sock:receive("*l")
    if not line then
      return nil, err
    end
    if line == "" then
      break
    end
    local colon = find(line, ":", 1, true)
    if colon then
      local name = lower(sub(line, 1, colon - 1))
      if name == "content-length" then
        length = tonumber(line:match("^%s*(%d+)", colon + 1))
      elseif name == "transfer-encoding" then
        chunked = find(lower(line), "chunked", colon, true) ~= nil
      elseif name == "connection" then
        local v = lower(sub(line, colon + 1))
        if find(v, "close", 1, true) then
          keepalive = false
        elseif find(v, "keep-alive", 1, true) then
          keepalive = true
        end
      end
    end
  end

  local body
  if method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then
    body = ""
  elseif chunked then
    body, err = read_chunked(sock)
  elseif length then
    body, err = length > 0 and sock:receive(length) or "", nil
  else
    body, err = sock:receive("*a")
    keepalive = false
  end
  if not body then
    return nil, err
  end
  return status, body, keepalive
end


local function attempt(t, method, path, body, opts)
  local sock = tcp()
  local timeout = opts.timeout
  sock:settimeouts(timeout, timeout, timeout)
  local ok, err = sock:connect(t.host, t.port, { pool = t.pool, pool_size = opts.pool_size })
  if not ok then
    return nil, err, false, false
  end
  local reused = sock:getreusedtimes() > 0

  req[1] = method
  req[2] = " "
  req[3] = path
  req[4] = " HTTP/1.1\r\nHost: "
  req[5] = t.host_header
  req[6] = opts.headers and "\r\nUser-Agent: aforo-metering\r\nAccept: application/json\r\n" .. opts.headers
           or "\r\nUser-Agent: aforo-metering\r\nAccept: application/json\r\n"
  req[7] = opts.authorization or "" -- "Authorization: Bearer <sidecar_token>\r\n" when configured
  if body then
    req[8] = "Content-Type: application/json\r\nContent-Length: "
    req[9] = #body
    req[10] = "\r\n\r\n"
    req[11] = body
  else
    req[8] = "\r\n"
    req[9] = ""
    req[10] = ""
    req[11] = ""
  end
  ok, err = sock:send(req)
  req[7] = "" -- nor the token
  req[11] = "" -- do not keep a large batch referenced from the array
  if not ok then
    sock:close()
    return nil, err, reused, true -- perhaps in part
  end

  local status, resp_body, keepalive = read_response(sock, method)
  if not status then
    sock:close()
    return nil, resp_body, reused, true
  end
  if keepalive then
    sock:setkeepalive(opts.keepalive_timeout, opts.pool_size)
  else
    sock:close()
  end
  return status, resp_body
end


--- Sends one request to the sidecar and reads the whole response.
-- Must run where cosockets are allowed (access phase, timers).
-- @param url sidecar_url
-- @param method "GET" | "POST"
-- @param path request target, e.g. "/v1/check"
-- @param body JSON string or nil
-- @param opts { timeout = ms, keepalive_timeout = ms, pool_size = n, headers = "Name: value\r\n..." or nil,
--   authorization = _M.authorization(conf) or nil }
-- @return status (number), body (string); or nil, an error string, and whether the request may have
--   reached the sidecar (false: it never went out, e.g. the connection was refused)
function _M.request(url, method, path, body, opts)
  local t, err = _M.target(url)
  if not t then
    return nil, err, false
  end
  local status, resp_body, reused, sent = attempt(t, method, path, body, opts)
  if not status and reused and (resp_body == "closed" or find(resp_body, "reset", 1, true)
                                or find(resp_body, "broken pipe", 1, true)) then
    -- A pooled connection the sidecar closed while idle fails on first use;
    -- nothing was processed, so one retry on a fresh connection is safe.
    local _
    status, resp_body, _, sent = attempt(t, method, path, body, opts)
  end
  return status, resp_body, sent
end


return _M
