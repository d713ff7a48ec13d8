-- Specs of protocol-aware metering (protocol.lua, graphql.lua) through the handler with stubbed kong/ngx:
-- each option's event carries the productType and the fields docs/design/event-fields.md#product-types requires, keys
-- hold no client value, and with every option off the event is the plain API event it always was.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper

describe("aforo-metering protocols", function()
  local env, handler

  before_each(function()
    env = helper.setup()
    handler = require "kong.plugins.aforo-metering.handler"
    env.req.headers["X-Tenant-Id"] = "cust_acme"
  end)

  local buffered = helper.buffered

  local function meter(overrides)
    local conf = helper.conf(overrides)
    handler:access(conf)
    handler:log(conf)
    return buffered(conf), conf
  end

  local function rid()
    local v = env.req.var.kong_request_id
    return v or "01234567-89ab-cdef-0123-456789abcdef"
  end

  local ALL_ON = { grpc_enabled = true, graphql_enabled = true, mcp_enabled = true, websocket_enabled = true,
                   agentic_enabled = true, entitlement_enabled = false }

  describe("with every option off (the default)", function()
    it("meters a gRPC, GraphQL, MCP, WebSocket or traced request as the plain API event, reading no body",
       function()
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.headers["Content-Type"] = "application/grpc"
      env.req.headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
      env.req.headers["Upgrade"] = "websocket"
      env.req.headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
      env.req.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}'
      local events = meter({ entitlement_enabled = false })
      assert.equal(1, #events)
      assert.equal("API", events[1].productType)
      assert.equal("kong:" .. rid(), events[1].idempotencyKey)
      assert.is_nil(events[1].traceId)
      assert.is_nil(events[1].toolName)
      assert.is_nil(env.req.body_reads)
    end)
  end)

  describe("gRPC", function()
    it("meters /package.Service/Method as GRPC_API with the grpc-status trailer", function()
      env.req.method = "POST"
      env.req.path = "/shop.v1.Catalog/GetItem"
      env.req.headers["Content-Type"] = "application/grpc+proto"
      env.req.var.upstream_trailer_grpc_status = "5"
      local events = meter({ grpc_enabled = true, entitlement_enabled = false })
      local e = events[1]
      assert.equal("GRPC_API", e.productType)
      assert.equal("shop.v1.Catalog", e.grpcService)
      assert.equal("GetItem", e.grpcMethod)
      assert.equal(5, e.grpcStatusCode)
      assert.equal("ERROR", e.executionStatus) -- NOT_FOUND, though HTTP said 200
      assert.equal(200, e.statusCode)
      assert.equal("grpc:" .. rid(), e.idempotencyKey)
    end)

    it("reads the status of a trailers-only response from the header, under a path prefix", function()
      env.req.method = "POST"
      env.req.path = "/rpc/shop.v1.Catalog/GetItem"
      env.req.headers["Content-Type"] = "application/grpc"
      env.req.resp_headers["grpc-status"] = "4"
      local e = meter({ grpc_enabled = true, grpc_path_prefix = "/rpc", entitlement_enabled = false })[1]
      assert.equal("shop.v1.Catalog", e.grpcService)
      assert.equal(4, e.grpcStatusCode)
      assert.equal("TIMEOUT", e.executionStatus)
    end)

    it("leaves a request that is not gRPC, or not a method path, as an API event", function()
      env.req.method = "POST"
      env.req.path = "/shop.v1.Catalog/GetItem"
      assert.equal("API", meter({ grpc_enabled = true, entitlement_enabled = false })[1].productType)
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      env.req.headers["Content-Type"] = "application/grpc"
      env.req.path = "/v1/items/42"
      assert.equal("API", meter({ grpc_enabled = true, entitlement_enabled = false })[2].productType)
    end)
  end)

  describe("GraphQL", function()
    local function post(body, overrides)
      env.req.method = "POST"
      env.req.path = "/api/graphql"
      env.req.headers["Content-Type"] = "application/json"
      env.req.body = body
      env.req.headers["Content-Length"] = tostring(#body)
      local o = { graphql_enabled = true, entitlement_enabled = false }
      for k, v in pairs(overrides or {}) do o[k] = v end
      local events = meter(o)
      return events[#events]
    end

    it("takes the operation named by operationName", function()
      local e = post('{"query":"query A { a } mutation AddItem($x: In = {n: 1}) { add(x: $x) { id } }",'
                     .. '"operationName":"AddItem","variables":{"x":{"n":2}}}')
      assert.equal("GRAPHQL_API", e.productType)
      assert.equal("MUTATION", e.gqlOperationType)
      assert.equal("AddItem", e.gqlOperationName)
      assert.equal("gql:" .. rid(), e.idempotencyKey)
    end)

    it("takes the first operation without operationName, past fragments, comments and strings", function()
      local e = post('{"query":"# mutation Fake { x }\\nfragment F on Item { id name(q: \\"{ mutation }\\") }\\n'
                     .. 'subscription OnItem { item { ...F } }"}')
      assert.equal("SUBSCRIPTION", e.gqlOperationType)
      assert.equal("OnItem", e.gqlOperationName)
      local anon = post('{"query":"{ items { id } }"}')
      assert.equal("QUERY", anon.gqlOperationType)
      assert.is_nil(anon.gqlOperationName)
    end)

    it("meters each operation of a batch once, keyed by its position, leaving out an entry without one",
       function()
      env.req.method = "POST"
      env.req.path = "/api/graphql"
      env.req.headers["Content-Type"] = "application/json"
      env.req.body = '[{"query":"query A { a } mutation AddItem { add }","operationName":"AddItem"},'
                     .. '{"variables":{}},{"query":"{ items { id } }"},{"query":"subscription OnItem { item }"}]'
      local events = meter({ graphql_enabled = true, entitlement_enabled = false })
      assert.equal(3, #events)
      assert.same({ "gql:" .. rid() .. ":1", "gql:" .. rid() .. ":3", "gql:" .. rid() .. ":4" },
                  { events[1].idempotencyKey, events[2].idempotencyKey, events[3].idempotencyKey })
      assert.same({ "MUTATION", "QUERY", "SUBSCRIPTION" },
                  { events[1].gqlOperationType, events[2].gqlOperationType, events[3].gqlOperationType })
      assert.same({ "AddItem", "OnItem" }, { events[1].gqlOperationName, events[3].gqlOperationName })
      assert.is_nil(events[2].gqlOperationName)
      for _, e in ipairs(events) do
        assert.equal("GRAPHQL_API", e.productType)
        assert.equal("/api/graphql", e.endpointPath)
      end
    end)

    it("keys two operations of a batch apart, and meters a batch without operations as API", function()
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.body = '[{"query":"query A { a }"},{"query":"query B { b }"}]'
      local events = meter({ graphql_enabled = true, entitlement_enabled = false })
      assert.same({ "gql:" .. rid() .. ":1", "gql:" .. rid() .. ":2" },
                  { events[1].idempotencyKey, events[2].idempotencyKey })
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.body = '[{"variables":{}},"query A { a }"]'
      assert.equal("API", meter({ graphql_enabled = true, entitlement_enabled = false })[3].productType)
    end)

    it("reads an application/graphql POST body as the query text", function()
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.headers["Content-Type"] = "application/graphql; charset=utf-8"
      env.req.body = "# a comment { query }\nmutation AddItem { add(name: \"query X\") { id } }"
      local e = meter({ graphql_enabled = true, entitlement_enabled = false })[1]
      assert.equal("GRAPHQL_API", e.productType)
      assert.equal("MUTATION", e.gqlOperationType)
      assert.equal("AddItem", e.gqlOperationName)
      assert.equal("gql:" .. rid(), e.idempotencyKey)
    end)

    it("reads a GET query string with operationName, the operation it names", function()
      env.req.method = "GET"
      env.req.path = "/graphql"
      env.req.query = { query = "query Items { items } mutation AddItem { add } query Search { s }",
                        operationName = "Search" }
      local e = meter({ graphql_enabled = true, entitlement_enabled = false })[1]
      assert.equal("QUERY", e.gqlOperationType)
      assert.equal("Search", e.gqlOperationName)
      assert.is_nil(env.req.body_reads)
    end)

    it("reads a GET query string", function()
      env.req.method = "GET"
      env.req.path = "/graphql"
      env.req.query = { query = "query Search { s }" }
      local e = meter({ graphql_enabled = true, entitlement_enabled = false })[1]
      assert.equal("QUERY", e.gqlOperationType)
      assert.equal("Search", e.gqlOperationName)
    end)

    it("meters a body over the cap without its operation, unread, and counts it", function()
      local protocol = require "kong.plugins.aforo-metering.protocol"
      local big = '{"query":"query Big { a }","pad":"' .. string.rep("x", protocol.MAX_BODY) .. '"}'
      local e = post(big)
      assert.equal("API", e.productType)
      assert.is_nil(env.req.body_reads)
      assert.equal(1, protocol.stats.body_over_cap)
      assert.matches("over 65536 bytes", helper.last_log(env, "warn"))
    end)

    it("meters a body nginx kept in a file, or that is not GraphQL, as an API event", function()
      env.req.body_in_file = true
      assert.equal("API", post('{"query":"{ a }"}').productType)
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      assert.equal("API", post('not json').productType)
    end)
  end)

  describe("MCP", function()
    local function call(id, name)
      return '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":{"name":"' .. name
             .. '","arguments":{}}}'
    end

    it("meters a tools/call as MCP_SERVER with toolName, agentId and sessionId", function()
      env.req.method = "POST"
      env.req.path = "/mcp"
      env.req.body = call(7, "search_docs")
      env.req.headers["Mcp-Session-Id"] = "sess-1"
      local events = meter({ mcp_enabled = true, mcp_product_id = "prod-9", entitlement_enabled = false })
      assert.equal(1, #events)
      local e = events[1]
      assert.equal("MCP_SERVER", e.productType)
      assert.equal("search_docs", e.toolName)
      assert.equal("cust_acme", e.agentId)
      assert.equal("sess-1", e.sessionId)
      assert.is_number(e.executionDurationMs)
      assert.equal("prod-9", e.metadata.mcp_product_id)
      assert.equal("mcp:" .. rid() .. ":1", e.idempotencyKey)
    end)

    it("meters each tools/call of a batch once, keyed by its position; other methods are not calls", function()
      env.req.method = "POST"
      env.req.path = "/mcp"
      env.req.consumer = { id = "c0ffee00-0000-4000-8000-000000000001", username = "agent-app" }
      env.req.body = "[" .. call(1, "search") .. ',{"jsonrpc":"2.0","id":2,"method":"tools/list"},'
                     .. call(3, "search") .. "]"
      local events = meter({ mcp_enabled = true, entitlement_enabled = false })
      assert.equal(2, #events)
      assert.equal("mcp:" .. rid() .. ":1", events[1].idempotencyKey)
      assert.equal("mcp:" .. rid() .. ":3", events[2].idempotencyKey)
      for _, e in ipairs(events) do
        assert.equal("search", e.toolName)
        assert.equal("c0ffee00-0000-4000-8000-000000000001", e.agentId)
        assert.equal("agent-app", e.customerId)
      end
    end)

    it("leaves a JSON-RPC request without tools/call as an API event", function()
      env.req.method = "POST"
      env.req.body = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}'
      assert.equal("API", meter({ mcp_enabled = true, entitlement_enabled = false })[1].productType)
    end)

    it("cuts a long tool name and session id to Aforo's limits", function()
      env.req.method = "POST"
      env.req.body = call(1, string.rep("t", 100))
      env.req.headers["Mcp-Session-Id"] = string.rep("s", 100)
      local e = meter({ mcp_enabled = true, entitlement_enabled = false })[1]
      assert.equal(64, #e.toolName)
      assert.equal(64, #e.sessionId)
    end)
  end)

  describe("WebSocket", function()
    it("meters an upgraded connection once, when it ends, with its key and duration", function()
      env.req.headers["Upgrade"] = "websocket"
      env.req.headers["Connection"] = "Upgrade"
      env.req.headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
      env.req.status = 101
      env.clock.t = env.req.start_ms / 1000 + 2.5
      local e = meter({ websocket_enabled = true, entitlement_enabled = false })[1]
      assert.equal("WEBSOCKET_API", e.productType)
      assert.equal("dGhlIHNhbXBsZSBub25jZQ==", e.wsConnectionId)
      assert.equal(2500, e.executionDurationMs)
      assert.equal("ws:" .. rid(), e.idempotencyKey) -- not the client's Sec-WebSocket-Key
    end)

    it("meters a refused upgrade as an API event", function()
      env.req.headers["Upgrade"] = "websocket"
      env.req.headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
      env.req.status = 403
      assert.equal("API", meter({ websocket_enabled = true, entitlement_enabled = false, exclude_status_codes = {} })[1].productType)
    end)
  end)

  describe("agentic traffic", function()
    it("reports a traceparent request as AGENTIC_API with traceId, spanId and the trace object", function()
      env.req.headers["traceparent"] = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
      env.req.headers["tracestate"] = "congo=t61rcWkgMzE"
      env.req.headers["X-Request-Id"] = "client-chosen"
      local e = meter({ agentic_enabled = true, entitlement_enabled = false })[1]
      assert.equal("AGENTIC_API", e.productType)
      assert.equal("4bf92f3577b34da6a3ce929d0e0e4736", e.traceId)
      assert.equal("00f067aa0ba902b7", e.spanId)
      assert.same({ traceparent = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                    tracestate = "congo=t61rcWkgMzE", xRequestId = "client-chosen" }, e.trace)
      assert.equal("kong:" .. rid(), e.idempotencyKey)
    end)

    it("takes x-trace-id when there is no valid traceparent", function()
      env.req.headers["traceparent"] = "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
      env.req.headers["x-trace-id"] = "run-42"
      local e = meter({ agentic_enabled = true, entitlement_enabled = false })[1]
      assert.equal("run-42", e.traceId)
      assert.is_nil(e.spanId)
      assert.equal("run-42", e.trace.xTraceId)
    end)

    it("adds the trace to a more specific protocol's event", function()
      env.req.method = "POST"
      env.req.path = "/shop.v1.Catalog/GetItem"
      env.req.headers["Content-Type"] = "application/grpc"
      env.req.headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
      local e = meter(ALL_ON)[1]
      assert.equal("GRPC_API", e.productType)
      assert.equal("4bf92f3577b34da6a3ce929d0e0e4736", e.traceId)
    end)
  end)

  it("keeps every protocol event's idempotency key byte for byte from a failed flush to its retry", function()
    local conf = helper.conf(ALL_ON)
    env.req.method = "POST"
    env.req.path = "/graphql"
    env.req.headers["Content-Type"] = "application/json"
    env.req.headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    env.req.body = '[{"query":"query A { a }"},{"query":"mutation B { b }"}]'
    handler:access(conf)
    handler:log(conf)
    env.new_request()
    env.req.headers["X-Tenant-Id"] = "cust_acme"
    env.req.method = "POST"
    env.req.path = "/mcp"
    env.req.headers["Content-Type"] = "application/json"
    env.req.body = '[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},'
                   .. '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b"}}]'
    handler:access(conf)
    handler:log(conf)
    env.new_request()
    env.req.headers["X-Tenant-Id"] = "cust_acme"
    env.req.method = "POST"
    env.req.path = "/shop.v1.Catalog/GetItem"
    env.req.headers["Content-Type"] = "application/grpc"
    handler:access(conf)
    handler:log(conf)

    local sent = {}
    local answers = { function() return nil, "connection refused" end,
                      function() return 503, '{"error":"busy"}' end,
                      function() return 202, '{"accepted":5,"failed":0,"errors":[]}' end }
    env.respond(function(_, _, path, body)
      if path ~= "/v1/ingest/batch" then
        return 200, "{}"
      end
      sent[#sent + 1] = body
      return table.remove(answers, 1)()
    end)
    for _ = 1, 10 do
      env.clock.t = env.clock.t + 7.25 -- the retries come later: no clock reading in any key
      helper.run_timers(env)
      if #sent >= 3 then break end
    end
    assert.equal(3, #sent)
    local function keys(body)
      local out = {}
      for k in body:gmatch('"idempotencyKey":"([^"]*)"') do out[#out + 1] = k end
      return out
    end
    local first = keys(sent[1])
    assert.equal(5, #first)
    local kinds = {}
    for i, k in ipairs(first) do kinds[i] = k:gsub("^(%a+:)[%x-]+", "%1<id>", 1) end
    assert.same({ "gql:<id>:1", "gql:<id>:2", "mcp:<id>:1", "mcp:<id>:2", "grpc:<id>" }, kinds)
    assert.same(first, keys(sent[2]))
    assert.same(first, keys(sent[3]))
    assert.equal(5, #helper.decode(sent[3]).events)
  end)

  describe("the check's operation", function()
    local function checked(overrides)
      local o = { entitlement_enabled = true }
      for k, v in pairs(overrides) do o[k] = v end
      helper.access(handler, helper.conf(o))
      return helper.check_body(env, #env.calls)
    end
    local function mcp_call(id, name)
      return '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":{"name":"' .. name .. '"}}'
    end

    it("sends the GraphQL operation name, and none for an anonymous operation", function()
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.headers["Content-Type"] = "application/json"
      env.req.body = '{"query":"mutation AddItem { add { id } }"}'
      assert.equal("AddItem", checked({ graphql_enabled = true }).operation)
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.body = '{"query":"{ items { id } }"}'
      local body = checked({ graphql_enabled = true })
      assert.is_nil(body.operation)
      assert.is_nil(env.calls[#env.calls].body:find('"operation"', 1, true))
    end)

    it("sends none for a batch of GraphQL operations, the name of a batch's only operation", function()
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.headers["Content-Type"] = "application/json"
      env.req.body = '[{"query":"query Items { items { id } }"},{"query":"mutation DropAll { drop }"}]'
      local body = checked({ graphql_enabled = true })
      assert.is_nil(body.operation)
      assert.equal("/graphql", body.path)
      assert.equal(2, body.quantity) -- two operations, two events: two units
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.body = '[{"query":"mutation DropAll { drop }"},{"variables":{}}]'
      assert.equal("DropAll", checked({ graphql_enabled = true }).operation)
    end)

    it("sends the tool of a single MCP call, none for a batch of calls", function()
      env.req.method = "POST"
      env.req.path = "/mcp"
      env.req.body = mcp_call(1, "search_docs")
      local single = checked({ mcp_enabled = true })
      assert.equal("search_docs", single.operation)
      assert.equal(1, single.quantity)
      env.new_request()
      env.req.headers["X-Tenant-Id"] = "cust_acme"
      env.req.method = "POST"
      env.req.path = "/mcp"
      env.req.body = "[" .. mcp_call(1, "a") .. "," .. mcp_call(2, "b") .. "," .. mcp_call(3, "c") .. "]"
      local body = checked({ mcp_enabled = true })
      assert.is_nil(body.operation)
      assert.equal(3, body.quantity) -- three calls, three events: three units
    end)

    it("sends a gRPC call as Service/Method", function()
      env.req.method = "POST"
      env.req.path = "/shop.v1.Catalog/GetItem"
      env.req.headers["Content-Type"] = "application/grpc"
      assert.equal("shop.v1.Catalog/GetItem", checked({ grpc_enabled = true }).operation)
    end)

    it("sends none with the options off, body unread", function()
      env.req.method = "POST"
      env.req.path = "/graphql"
      env.req.headers["Content-Type"] = "application/json"
      env.req.body = '{"query":"mutation AddItem { add { id } }"}'
      assert.is_nil(checked({}).operation)
      assert.is_nil(env.req.body_reads)
    end)
  end)
end)
