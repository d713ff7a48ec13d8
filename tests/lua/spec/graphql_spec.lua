-- Specs of GraphQL metering's scans (graphql.lua): the operation of a query text, and gqlHasErrors from the
-- response, through the handler with stubbed kong/ngx and the body filter phase as Kong runs it.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper

describe("aforo-metering GraphQL responses", function()
  local env, handler

  before_each(function()
    env = helper.setup()
    handler = require "kong.plugins.aforo-metering.handler"
    env.req.headers["X-Tenant-Id"] = "cust_acme"
  end)

  local buffered = helper.buffered

  -- The response through the handler's body filter phase, chunk by chunk (ngx.arg as nginx sets it),
  -- as Kong runs it.
  local function respond(chunks, ctype, from_kong)
    env.req.resp_headers["Content-Type"] = ctype or "application/json"
    env.req.var.upstream_status = not from_kong and "200" or nil -- nginx's $upstream_status: proxied
    for i, chunk in ipairs(chunks) do
      ngx.arg = { chunk, i == #chunks }
      handler:body_filter(helper.conf({ graphql_enabled = true }))
    end
    ngx.arg = nil
  end

  local function post_answered(body, chunks, ctype, from_kong)
    env.req.method = "POST"
    env.req.path = "/graphql"
    env.req.headers["Content-Type"] = "application/json"
    env.req.body = body
    local conf = helper.conf({ graphql_enabled = true, entitlement_enabled = false })
    handler:access(conf)
    respond(chunks, ctype, from_kong)
    handler:log(conf)
    return buffered(conf)
  end

  it("reports gqlHasErrors from a top-level errors member of the response, in any chunk", function()
    local e = post_answered('{"query":"query A { a }"}',
                            { '{"errors":[{"message":"boom","path":["a"]}],"data":{"a":null}}' })[1]
    assert.equal("GRAPHQL_API", e.productType)
    assert.is_true(e.gqlHasErrors)
    env.new_request()
    env.req.headers["X-Tenant-Id"] = "cust_acme"
    local events = post_answered('{"query":"query A { a }"}',
                                 { '{"data":{"a":{"errors":[1],"s":"\\"errors\\":[1]"}}', ',"errors":',
                                   '[]}' }, "application/graphql-response+json; charset=utf-8")
    assert.is_false(events[2].gqlHasErrors) -- nested, inside a string, or empty: not the response's
    env.new_request()
    env.req.headers["X-Tenant-Id"] = "cust_acme"
    events = post_answered('{"query":"query A { a }"}', { '{"data":{"a":1},', '"errors":[{"message":"x"}]}' })
    assert.is_true(events[3].gqlHasErrors)
  end)

  it("reports gqlHasErrors per operation of a batch, by position", function()
    local events = post_answered('[{"query":"query A { a }"},{"variables":{}},{"query":"query C { c }"}]',
                                 { '[{"data":{"a":1}},{"errors":[{"message":"no query"}]},',
                                   '{"errors":[{"message":"c"}],"data":null}]' })
    assert.equal(2, #events)
    assert.is_false(events[1].gqlHasErrors)
    assert.equal("C", events[2].gqlOperationName)
    assert.is_true(events[2].gqlHasErrors)
  end)

  it("sends no gqlHasErrors for a response Kong made (a refusal), which the upstream never answered", function()
    local e = post_answered('{"query":"query A { a }"}', { '{"message":"usage check unavailable"}' }, nil, true)[1]
    assert.equal("GRAPHQL_API", e.productType)
    assert.is_nil(e.gqlHasErrors)
  end)

  it("sends no gqlHasErrors when it cannot tell: not JSON, compressed, past the bytes looked at", function()
    local graphql = require "kong.plugins.aforo-metering.graphql"
    local q = '{"query":"query A { a }"}'
    local function again()
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
    end
    post_answered(q, { '{"errors":[{"message":"x"}]}' }, "text/html")
    again()
    env.req.resp_headers["Content-Encoding"] = "gzip"
    post_answered(q, { '{"errors":[{"message":"x"}]}' })
    again()
    local late = '{"data":{"s":"' .. string.rep("x", graphql.MAX_RESPONSE_SCAN) .. '"},"errors":[{"message":"x"}]}'
    local cut = graphql.MAX_RESPONSE_SCAN + 100
    local events = post_answered(q, { late:sub(1, cut), late:sub(cut + 1) })
    assert.equal(3, #events)
    for _, e in ipairs(events) do
      assert.equal("GRAPHQL_API", e.productType)
      assert.is_nil(e.gqlHasErrors)
    end
  end)

  it("reads no response chunk of a request that is not GraphQL", function()
    env.req.method = "POST"
    env.req.path = "/v1/items"
    local conf = helper.conf({ graphql_enabled = true, entitlement_enabled = false })
    handler:access(conf)
    local reads = 0
    ngx.arg = setmetatable({}, { __index = function() reads = reads + 1 end })
    handler:body_filter(conf)
    ngx.arg = nil
    handler:log(conf)
    assert.equal(0, reads)
    assert.is_nil(buffered(conf)[1].gqlHasErrors)
  end)
end)


describe("graphql.operation", function()
  local graphql
  setup(function()
    dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
    graphql = require "kong.plugins.aforo-metering.graphql"
  end)

  it("finds the named operation or the first one", function()
    assert.same({ "QUERY", "A" }, { graphql.operation("query A { a }") })
    assert.same({ "MUTATION", "B" }, { graphql.operation("query A { a } mutation B { b }", "B") })
    assert.same({ "QUERY", "A" }, { graphql.operation("query A { a } mutation B { b }") })
    assert.same({ "QUERY" }, { graphql.operation("  {a}") })
    assert.same({ "QUERY" }, { graphql.operation("query { a }") })
    assert.same({ "QUERY" }, { graphql.operation("query($id: ID!) { a(id: $id) }") })
  end)

  it("skips what is not a top-level operation", function()
    assert.same({ "MUTATION", "M" },
                { graphql.operation('"""doc { query }""" fragment F on T { query } mutation M { x }') })
    assert.same({ "MUTATION", "M" }, { graphql.operation('# query X {\nmutation M { s(a: "}") }') })
    assert.same({ "QUERY", "Q" }, { graphql.operation("query Q($a: In = {b: {c: 1}}) @live { x }") })
  end)

  it("returns nil for text without an operation and stops at MAX_SCAN", function()
    assert.is_nil(graphql.operation(""))
    assert.is_nil(graphql.operation("fragment F on T { a }"))
    assert.is_nil(graphql.operation('"unterminated'))
    assert.is_nil(graphql.operation(string.rep(" ", graphql.MAX_SCAN) .. "query Late { a }"))
  end)

  it("finds a top-level errors member of each result, bounded by MAX_RESPONSE_SCAN", function()
    -- The verdicts for results 1..n: true, false, or "?" (cannot be told).
    local function re(text, complete, n)
      local r = graphql.response_errors(text, complete)
      if r == nil then
        return nil
      end
      local t = {}
      for k = 1, n or 1 do
        local v = r[k]
        if v == nil then v = r.rest end
        t[k] = v == nil and "?" or v
      end
      return t
    end
    assert.same({ true }, re(' {"errors" : [ {"message":"x"} ],"data":null}', true))
    assert.same({ true }, re('{"data":{"a":[{"b":"}"}]},"errors":[{"message":"x"}]}', true))
    assert.same({ false }, re('{"data":{"errors":[1]},"extensions":{"errors":[2]}}', true))
    assert.same({ false }, re('{"data":{"items":[{"id":"1"}]}}', true))
    assert.same({ false }, re('{"data":null,"errors":null}', true))
    assert.same({ false }, re('{"errors":[ ],"data":{}}', true))
    assert.same({ false }, re('{"data":{"m":"\\"errors\\":[1]","n":"\\\\"},"o":1}', true))
    assert.same({ true }, re('{"data":{"n":"\\\\"},"errors":[1]}', true)) -- "\\" ends the string
    -- errors after data, found from the last "errors" text; between data and extensions; only in data
    assert.same({ true }, re('{"data":{"a":{"errors":"none"}},"errors" :[{"message":"x"}]}', true))
    assert.same({ true }, re('{"data":{"a":1},"errors":[{"m":"e"}],"extensions":{"errors":[1]}}', true))
    assert.same({ false }, re('{"data":{"a":{"errors":[1]},"b":"errors"},"extensions":{}}', true))
    assert.same({ false }, re('{"data":{"m":"the \\"errors\\" field"}}', true))
    assert.same({ true }, re('{"data":{"a":{"errors":[1]}},"errors":[{"m":"e"}]', false)) -- a first part
    assert.same({ "?" }, re('{"data":{"a":{"errors":[1]}},"b":[{"m":"e"}]', false))
    assert.same({ false, true, false }, re('[{"data":{}},{"errors":[{}]},{"data":{"errors":[1]}}]', true, 3))
    assert.same({ true }, re('{"errors":[{"message":"x"}],"data":{"items":[', false)) -- first chunk only
    assert.same({ "?" }, re('{"data":{"items":[', false))
    assert.same({ "?" }, re('{"data":"' .. string.rep("x", graphql.MAX_RESPONSE_SCAN) .. '","errors":[{}]}', true))
    assert.is_nil(re("<html>errors</html>", true))
    assert.is_nil(re("", true))
  end)

  it("keeps the requested name when it is not defined in the text", function()
    assert.same({ "QUERY", "Missing" }, { graphql.operation("query A { a }", "Missing") })
  end)
end)
