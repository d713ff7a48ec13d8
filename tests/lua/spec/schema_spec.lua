-- Specs of schema.lua: defaults, descriptions and validators of every field of docs/design/plugin-contract.md#schema.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper
local schema_check = require "aforo_shim.schema"

describe("aforo-metering schema", function()
  local schema, config_field

  before_each(function()
    package.loaded["kong.plugins.aforo-metering.schema"] = nil
    schema = require "kong.plugins.aforo-metering.schema"
    config_field = schema_check.config_field(schema)
  end)

  local function process(overrides)
    return schema_check.process(schema, overrides)
  end

  it("is named aforo-metering and cannot be scoped to a consumer", function()
    assert.equal("aforo-metering", schema.name)
    local consumer
    for _, entry in ipairs(schema.fields) do
      if entry.consumer then consumer = entry.consumer end
    end
    assert.equal("foreign", consumer.type)
    assert.equal("consumers", consumer.reference)
  end)

  it("fills the defaults of the plugin contract for an empty config", function()
    local conf = assert(process({}))
    assert.same({
      sidecar_url = "http://127.0.0.1:8750", tenant_header = "X-Tenant-Id", discovery_enabled = true,
      fallback_on_error = "allow", customer_id_source = "consumer_then_header", missing_tenant = "allow",
      entitlement_enabled = true, metering_enabled = true, metric_name = "api_calls",
      quantity_header = "X-Aforo-Quantity", cost_header = "X-Aforo-Cost", timeout = 50,
      keepalive_timeout = 60000, keepalive_pool_size = 64, flush_interval = 250, batch_size = 20,
      buffer_max_size = 10000, overflow_max_bytes = 104857600, exclude_paths = {},
      customer_id_jwt_exclude_claims = {}, exclude_status_codes = { 401, 403, 429 }, product_type = "API",
      grpc_enabled = false, grpc_path_prefix = "/", graphql_enabled = false,
      graphql_path_pattern = "/(?:graphql|gql)/?$", websocket_enabled = false, mcp_enabled = false,
      agentic_enabled = false,
    }, conf)
  end)

  it("has every field of the plugin contract, each with a description", function()
    local expected = { "sidecar_url", "tenant_header", "discovery_enabled", "fallback_on_error",
      "customer_id_source", "missing_tenant", "entitlement_enabled", "metering_enabled", "feature",
      "metric_name", "quantity_header", "cost_header", "timeout", "keepalive_timeout",
      "keepalive_pool_size", "flush_interval", "batch_size", "buffer_max_size", "overflow_max_bytes", "exclude_paths",
      "customer_id_jwt_claim", "customer_id_jwt_exclude_claims", "exclude_status_codes", "status_outcomes",
      "product_type" }
    local NO_DEFAULT = { feature = true, sidecar_token = true, customer_id_jwt_claim = true, status_outcomes = true,
      mcp_product_id = true }
    local seen = {}
    for _, entry in ipairs(config_field.fields) do
      local name, field = next(entry)
      seen[name] = true
      assert.is_string(field.description, name .. " has no description")
      assert.is_true(#field.description > 10, name .. " has a too short description")
      if not NO_DEFAULT[name] then
        assert.is_not_nil(field.default, name .. " has no default")
      end
    end
    for _, name in ipairs(expected) do
      assert.is_true(seen[name], "missing field " .. name)
    end
  end)

  it("accepts the five-line core config", function()
    local conf = assert(process({ sidecar_url = "http://127.0.0.1:8750", tenant_header = "X-Tenant-Id",
                                  discovery_enabled = true }))
    assert.equal("allow", conf.fallback_on_error)
  end)

  it("accepts http and unix sidecar urls", function()
    assert.truthy(process({ sidecar_url = "http://127.0.0.1:8750" }))
    assert.truthy(process({ sidecar_url = "http://localhost" }))
    assert.truthy(process({ sidecar_url = "unix:/run/aforo/sidecar.sock" }))
  end)

  it("refuses https, paths, bad ports and other schemes in sidecar_url", function()
    for _, url in ipairs({ "https://127.0.0.1:8750", "http://127.0.0.1:8750/v1", "http://h:0",
                           "http://h:70000", "tcp://h:1", "unix:", "127.0.0.1:8750" }) do
      local conf, errs = process({ sidecar_url = url })
      assert.is_nil(conf, url)
      assert.is_not_nil(errs.sidecar_url, url)
    end
  end)

  it("refuses values outside one_of for the enumerations", function()
    for field, bad in pairs({ fallback_on_error = "deny", customer_id_source = "ip", missing_tenant = "drop" }) do
      local conf, errs = process({ [field] = bad })
      assert.is_nil(conf)
      assert.matches("expected one of", errs[field])
    end
    assert.truthy(process({ fallback_on_error = "block", customer_id_source = "consumer", missing_tenant = "block" }))
  end)

  it("bounds the numeric fields", function()
    for field, bad in pairs({ timeout = 0, keepalive_pool_size = 0, flush_interval = 5, batch_size = 1001,
                              buffer_max_size = 0, keepalive_timeout = -1 }) do
      local conf, errs = process({ [field] = bad })
      assert.is_nil(conf, field)
      assert.is_not_nil(errs[field], field)
    end
    local conf, errs = process({ timeout = 1.5 })
    assert.is_nil(conf)
    assert.equal("expected an integer", errs.timeout)
  end)

  it("refuses a batch_size larger than buffer_max_size", function()
    local conf, errs = process({ batch_size = 500, buffer_max_size = 100 })
    assert.is_nil(conf)
    assert.matches("batch_size", errs["@entity"])
  end)

  it("refuses turning off both the checks and the metering", function()
    local conf, errs = process({ entitlement_enabled = false, metering_enabled = false })
    assert.is_nil(conf)
    assert.is_not_nil(errs["@entity"])
  end)

  it("validates header names and exclude_paths", function()
    local conf, errs = process({ tenant_header = "X Tenant" })
    assert.is_nil(conf)
    assert.matches("bad header name", errs.tenant_header)
    conf, errs = process({ exclude_paths = { "/health", "metrics" } })
    assert.is_nil(conf)
    assert.matches("must start with", errs.exclude_paths)
    assert.truthy(process({ exclude_paths = { "/health", "/metrics/" } }))
  end)

  it("limits metric_name and feature to 255 characters", function()
    assert.is_nil(process({ metric_name = string.rep("m", 256) }))
    assert.is_nil(process({ metric_name = "" }))
    assert.is_nil(process({ feature = string.rep("f", 256) }))
    assert.equal("advanced_search", process({ feature = "advanced_search" }).feature)
  end)

  it("takes an optional sidecar_token that Kong Vault can hold and keeps it encrypted", function()
    local field
    for _, entry in ipairs(config_field.fields) do
      if entry.sidecar_token then field = entry.sidecar_token end
    end
    assert.is_true(field.referenceable)
    assert.is_true(field.encrypted)
    assert.is_nil(field.default)
    assert.is_nil(process({}).sidecar_token)
    assert.equal("0123456789abcdef0123456789abcdef", process({ sidecar_token = "0123456789abcdef0123456789abcdef" }).sidecar_token)
    assert.truthy(process({ sidecar_token = "{vault://env/aforo-sidecar-token}" }))
    assert.truthy(process({ sidecar_token = "AbC-._~+/0123456789==" }))
    assert.is_nil(process({ sidecar_token = "short" }))
    assert.is_nil(process({ sidecar_token = "0123456789abcdef\r\nX-Evil: 1" }))
    assert.is_nil(process({ sidecar_token = "0123456789abcdef 0123" }))
  end)

  it("refuses unknown fields", function()
    local conf, errs = process({ sidecar = "http://x:1" })
    assert.is_nil(conf)
    assert.equal("unknown field", errs.sidecar)
  end)

  it("validates the protocol options: grpc_path_prefix and graphql_path_pattern", function()
    assert.is_truthy(process({ grpc_enabled = true, grpc_path_prefix = "/rpc", graphql_enabled = true,
                               mcp_enabled = true, mcp_product_id = "prod-1" }))
    local _, errs = process({ grpc_path_prefix = "rpc" })
    assert.matches("must start with '/'", errs.grpc_path_prefix)
    _, errs = process({ mcp_product_id = "" })
    assert.is_not_nil(errs.mcp_product_id)
    -- The regular expression is compiled where ngx.re is (nginx, Kong); stubbed here as PCRE answers.
    local saved = _G.ngx
    _G.ngx = { re = { find = function(_, re)
      if re == "(graphql" then return nil, "pcre_compile() failed: missing ) in \"(graphql\"" end
      return nil
    end } }
    local ok, conf, bad = pcall(process, { graphql_path_pattern = "(graphql" })
    local ok2, good = pcall(process, { graphql_path_pattern = "^/api/graphql$" })
    _G.ngx = saved
    assert.is_true(ok and ok2)
    assert.equal("^/api/graphql$", good.graphql_path_pattern)
    assert.is_nil(conf)
    assert.matches("invalid regular expression: pcre_compile", bad.graphql_path_pattern)
  end)

  it("is used with defaults by the spec helper", function()
    assert.equal(50, helper.conf().timeout)
  end)
end)
