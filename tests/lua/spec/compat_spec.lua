-- Specs of compat.lua: an Aforo v2.2 plugin config loads (Kong's shorthand_fields), mapped where this plugin
-- has the field, with one WARN naming where a sidecar's field goes now, values never logged.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper
local schema_check = require "aforo_shim.schema"
local kong_yml = require "aforo_shim.kong_yml"
local cjson = require "cjson.safe"
local FIXTURES = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../../fixtures/aforo-plugin-v2.2/"

-- Every field of Aforo's v2.2 plugin (docs/design/event-fields.md#aforo-plugin-v22), with values a v2.2 user has in
-- kong.yml.
local function v22_config()
  return {
    aforo_endpoint = "https://ingest.aforo.ai/api/v1/usage/batch",
    api_key = "sk_live_SECRET_v22_key_0123456789",
    tenant_id = "tenant_acme",
    product_type = "API",
    metric_name_pattern = "{method} {path}",
    metric_mappings = { { path_pattern = "^/api/sms", metric_name = "sms_sent" } },
    mappings_url = "https://catalog.aforo.ai/internal/v1/metrics/gateway-mappings",
    mappings_refresh_seconds = 300,
    mappings_timeout_ms = 3000,
    default_metric = "search_calls",
    metric_header = "X-Aforo-Metric",
    quantity_header = "X-Aforo-Quantity",
    quantity_source = "response_size",
    customer_id_source = "consumer",
    customer_id_jwt_claim = "tenant_id",
    customer_id_jwt_exclude_claims = { "impersonated_by" },
    flush_interval_ms = 5000,
    flush_count = 50,
    include_metadata = true,
    mcp_enabled = false,
    mcp_product_id = "prod_mcp",
    status_outcomes = { ["404"] = "VALIDATION_FAILED", ["202"] = "PENDING" },
    grpc_enabled = false,
    grpc_product_id = "prod_grpc",
    grpc_path_prefix = "/grpc",
    graphql_enabled = false,
    graphql_product_id = "prod_gql",
    graphql_path_pattern = "graphql",
    websocket_enabled = false,
    websocket_product_id = "prod_ws",
    jwt_validation_enabled = true,
    jwt_issuer = "https://auth.aforo.ai",
    jwt_jwks_uri = "https://auth.aforo.ai/.well-known/jwks.json",
    jwt_public_key = "-----BEGIN PUBLIC KEY-----SECRETPEM-----END PUBLIC KEY-----",
    jwt_allow_unverified_signature = false,
    jwt_redis_host = "redis.internal",
    jwt_redis_port = 6380,
    jwt_secret_is_base64 = true,
    rate_limit_enabled = true,
    rate_limit_redis_host = "redis.internal",
    rate_limit_redis_port = 6379,
    rate_limit_redis_password = "SECRET_redis_pw",
    rate_limit_redis_timeout_ms = 50,
    rate_limit_headers = false,
    margin_guard_enabled = true,
    margin_guard_url = "http://pricing:8083",
    margin_guard_cache_ttl = 30,
    margin_guard_timeout_ms = 200,
    margin_guard_fail_open = true,
    preflight_quota_enabled = true,
    preflight_quota_url = "https://ingest.aforo.ai/api/v1/quota/check",
    preflight_quota_api_key = "sk_live_SECRET_quota_key",
    preflight_quota_timeout_ms = 100,
    preflight_quota_cache_ttl_ms = 1000,
    preflight_quota_cache_ttl = 1,
    preflight_quota_fail_open = false,
    exclude_paths = { "/health", "/ready", "/metrics" },
    exclude_status_codes = { 401, 403, 429 },
  }
end

describe("an Aforo v2.2 plugin config", function()
  local schema, compat, warns

  before_each(function()
    helper.setup()
    warns = {}
    ngx.log = function(level, ...)
      if level == ngx.WARN then warns[#warns + 1] = table.concat({ ... }) end
    end
    package.loaded["kong.plugins.aforo-metering.schema"] = nil
    package.loaded["kong.plugins.aforo-metering.compat"] = nil
    schema = require "kong.plugins.aforo-metering.schema"
    compat = require "kong.plugins.aforo-metering.compat"
  end)

  local function warn_for(name)
    for _, w in ipairs(warns) do
      if w:find("field '" .. name .. "'", 1, true) then return w end
    end
  end

  it("covers every field of Aforo's v2.2 plugin", function()
    local cfg = v22_config()
    for name in pairs(compat.V22) do
      assert.is_not_nil(cfg[name], "the v2.2 config of this spec lacks " .. name)
    end
  end)

  it("loads, each field mapped to this plugin's where one exists", function()
    local conf, errs = schema_check.process(schema, v22_config())
    assert.is_nil(errs)
    assert.equal(50, conf.batch_size)               -- flush_count
    assert.equal(5000, conf.flush_interval)         -- flush_interval_ms
    assert.equal("search_calls", conf.metric_name)  -- default_metric
    assert.is_true(conf.discovery_enabled)          -- include_metadata
    assert.equal("block", conf.fallback_on_error)   -- preflight_quota_fail_open = false
    assert.equal("consumer", conf.customer_id_source) -- v2.2 never read a request header
    assert.same({ "/health", "/ready", "/metrics" }, conf.exclude_paths)
    assert.same({ 401, 403, 429 }, conf.exclude_status_codes)
    assert.equal("tenant_id", conf.customer_id_jwt_claim)
    assert.same({ "impersonated_by" }, conf.customer_id_jwt_exclude_claims)
    assert.same({ ["404"] = "VALIDATION_FAILED", ["202"] = "PENDING" }, conf.status_outcomes)
    assert.equal("API", conf.product_type)
    -- Nothing of v2.2's own is kept (no secret in the stored config), but for the names that are
    -- fields of this plugin too (the protocol options).
    local real = {}
    for _, entry in ipairs(schema_check.config_field(schema).fields) do
      real[next(entry)] = true
    end
    for name in pairs(compat.V22) do
      if not real[name] then
        assert.is_nil(conf[name], name .. " kept in the processed config")
      end
    end
    assert.is_true(real.grpc_enabled and real.mcp_product_id)
  end)

  it("logs one WARN per sidecar field naming where it goes, never a value", function()
    assert(schema_check.process(schema, v22_config()))
    assert.matches("AFORO_API_KEY", warn_for("api_key"))
    assert.matches("aforo.tenant_id", warn_for("tenant_id"), 1, true)
    assert.matches("aforo.ingest_url", warn_for("aforo_endpoint"), 1, true)
    assert.matches("entitlements:", warn_for("preflight_quota_enabled"), 1, true)
    assert.matches("margin_guard:", warn_for("margin_guard_enabled"), 1, true)
    assert.matches("cache.redis", warn_for("rate_limit_redis_password"), 1, true)
    assert.matches("customer_id_jwt_claim", warn_for("jwt_validation_enabled"), 1, true)
    for _, w in ipairs(warns) do
      assert.matches("^%[aforo%-metering%] Aforo v2.2 field '", w)
      assert.is_nil(w:find("SECRET", 1, true), "a value was logged: " .. w)
    end
    -- A field left at v2.2's default asks for nothing: no WARN.
    assert.is_nil(warn_for("mcp_enabled"))
    assert.is_nil(warn_for("jwt_allow_unverified_signature"))
    -- Loaded again (another Admin API write): no second WARN.
    local n = #warns
    assert(schema_check.process(schema, v22_config()))
    assert.equal(n, #warns)
  end)

  it("keeps mapped values inside this plugin's bounds, so Kong never refuses them", function()
    local cfg = v22_config()
    cfg.flush_count, cfg.flush_interval_ms = 5000, 1
    local conf = assert(schema_check.process(schema, cfg))
    assert.equal(1000, conf.batch_size)
    assert.equal(10, conf.flush_interval)
  end)

  it("takes the minimal v2.2 config (the required three) and a JSON null", function()
    local conf = assert(schema_check.process(schema, {
      aforo_endpoint = "https://ingest.aforo.ai/x", api_key = "k", tenant_id = "t", mappings_url = ngx.null }))
    assert.equal("consumer", conf.customer_id_source)
    assert.equal(20, conf.batch_size)
  end)

  it("still refuses a v2.2 field with a wrong type, as Kong does", function()
    local conf, errs = schema_check.process(schema, { flush_count = "fifty" })
    assert.is_nil(conf)
    assert.is_not_nil(errs.flush_count)
  end)

  it("is no shorthand for a name the config record has as a field", function()
    local names = {}
    for _, entry in ipairs(compat.shorthand_fields({ { grpc_product_id = { type = "string" } } })) do
      names[next(entry)] = true
    end
    assert.is_nil(names.grpc_product_id)
    assert.is_true(names.graphql_product_id)
    assert.is_nil(names.grpc_enabled) -- marked a field of this plugin in V22
    -- And every name V22 marks a field of this plugin is one.
    local real = {}
    for _, entry in ipairs(schema_check.config_field(schema).fields) do
      real[next(entry)] = true
    end
    for name, spec in pairs(compat.V22) do
      if spec == true then
        assert.is_true(real[name], name)
      end
    end
    for _, entry in ipairs(schema_check.config_field(schema).shorthand_fields) do
      local name, def = next(entry)
      assert.is_function(def.func, name)
      assert.is_not.equal("record", def.type, name) -- Kong refuses record shorthands
    end
  end)

  it("loads every aforo-metering entry of the v2.2 fixtures (kong.yml, an Admin API answer)", function()
    for _, file in ipairs({ "kong.yml", "plugins.json" }) do
      local entries = kong_yml.plugins(kong_yml.read(FIXTURES .. file), "aforo-metering")
      assert.is_true(#entries > 0, file)
      for _, entry in ipairs(entries) do
        local conf, errs = schema_check.process(schema, entry.config)
        assert.is_nil(errs, file .. " " .. entry.where .. ": " .. tostring(cjson.encode(errs)))
        assert.equal("consumer", conf.customer_id_source)
      end
    end
    local entries = kong_yml.plugins(kong_yml.read(FIXTURES .. "kong.yml"), "aforo-metering")
    assert.same({ "global #1", "route search-v1 #1" }, { entries[1].where, entries[2].where })
  end)

  it("takes both spellings of the quota cache TTL and of the two fail-open fields", function()
    for _, cfg in ipairs({ { preflight_quota_cache_ttl = 0.5 }, { preflight_quota_cache_ttl_ms = 500 } }) do
      assert.is_not_nil((schema_check.process(schema, cfg)))
    end
    local function fallback(cfg)
      return assert(schema_check.process(schema, cfg)).fallback_on_error
    end
    assert.equal("allow", fallback({ preflight_quota_fail_open = true, margin_guard_fail_open = true }))
    assert.equal("block", fallback({ preflight_quota_fail_open = true, margin_guard_fail_open = false }))
    assert.equal("block", fallback({ preflight_quota_fail_open = false, margin_guard_fail_open = true }))
    assert.equal("block", fallback({ margin_guard_fail_open = false }))
    -- true asks for nothing: this plugin's own field keeps its value.
    assert.equal("block", fallback({ fallback_on_error = "block", margin_guard_fail_open = true }))
  end)

  it("logs what the new v2.2 names ask for only when they ask for something", function()
    assert(schema_check.process(schema, { rate_limit_headers = true, jwt_secret_is_base64 = false,
                                          preflight_quota_cache_ttl = 1 }))
    assert.same({}, warns)
    assert(schema_check.process(schema, { rate_limit_headers = false, jwt_secret_is_base64 = true,
                                          margin_guard_timeout_ms = 100 }))
    assert.matches("X-RateLimit", warn_for("rate_limit_headers"), 1, true)
    assert.matches("customer_id_jwt_claim", warn_for("jwt_secret_is_base64"), 1, true)
    assert.matches("entitlements:", warn_for("margin_guard_timeout_ms"), 1, true)
  end)

  it("accepts every Aforo product type, sending those a plain event cannot carry as API with one WARN", function()
    local event = require "kong.plugins.aforo-metering.event"
    for _, t in ipairs({ "API", "AGENTIC_API", "AI_AGENT", "MCP_SERVER", "GRPC_API", "GRAPHQL_API",
                         "WEBSOCKET_API", "MQTT_BROKER" }) do
      local conf, errs = schema_check.process(schema, { product_type = t })
      assert.is_nil(errs, t)
      local sent = (t == "API" or t == "AGENTIC_API") and t or "API"
      assert.equal(sent, compat.sent_product_type(conf.product_type), t)
      local outcome = event.outcome(conf)
      if sent == "API" then
        assert.is_nil(outcome, t)
      else
        assert.matches('"productType":"' .. sent .. '"', outcome.product_json, 1, true)
      end
    end
    local function warn_of(t)
      for _, w in ipairs(warns) do
        if w:find("product_type '" .. t .. "'", 1, true) then return w end
      end
    end
    assert.is_nil(warn_of("API"))
    assert.is_nil(warn_of("AGENTIC_API"))
    assert.matches("grpc_enabled", warn_of("GRPC_API"), 1, true)
    assert.matches("mcp_enabled", warn_of("MCP_SERVER"), 1, true)
    assert.matches("sent as API", warn_of("MQTT_BROKER"), 1, true)
    assert.is_nil((schema_check.process(schema, { product_type = "SOAP_API" })))
    local n = #warns
    assert(schema_check.process(schema, { product_type = "GRPC_API" }))
    assert.equal(n, #warns)
  end)
end)
