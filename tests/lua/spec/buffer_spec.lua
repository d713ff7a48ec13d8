-- Specs of buffer.lua: bounds, batching, one flush at a time, keep-and-retry, flush on worker exit
-- (the overflow file: buffer_overflow_spec.lua).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper
local fixture = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "buffer_fixture.lua")
local record = require("kong.plugins.aforo-metering.event").RECORD -- values per record (checked below)

describe("aforo-metering buffer", function()
  local S = fixture.state(helper)
  local env, buffer, sent, q
  local new_queue, add, errors = S.new_queue, S.add, S.errors

  before_each(function()
    S.setup()
    env, buffer, sent, q = S.env, S.buffer, S.sent, S.q
  end)

  it("schedules one delayed flush for the first event, not one per event", function()
    add(q, 1)
    add(q, 2)
    assert.equal(1, #env.timers)
    assert.equal(0.25, env.timers[1].delay)
  end)

  it("flushes at once when a batch is full", function()
    q = new_queue(2, 10, 60000)
    add(q, 1)
    add(q, 2)
    assert.equal(2, #env.timers)
    assert.equal(0, env.timers[2].delay)
  end)

  it("queues a record only once committed; one never committed is overwritten by the next", function()
    local items, b = buffer.slot(q)
    items[b + 1] = 99 -- say the log phase failed here
    assert.equal(0, buffer.count(q))
    assert.equal(0, #env.timers)
    add(q, 1)
    add(q, 2)
    helper.run_timers(env)
    assert.same({ { { n = 1 }, { n = 2 } } }, sent)
  end)

  it("sends everything in batches of batch_size and empties the queue", function()
    for i = 1, 7 do add(q, i) end
    helper.run_timers(env)
    assert.equal(3, #sent)
    assert.same({ 3, 3, 1 }, { #sent[1], #sent[2], #sent[3] })
    assert.same({ n = 7 }, sent[3][1])
    assert.equal(0, buffer.count(q))
  end)

  it("under load sends full batches only, leaving a partial one for the interval", function()
    local arriving = 5 -- events logged while each send is in flight
    S.outcome = function()
      for _ = 1, arriving do add(q, 0) end
      arriving = 0
      return true
    end
    for i = 1, 3 do add(q, i) end -- full: an immediate flush
    assert.equal(0, env.timers[#env.timers].delay)
    local immediate = table.remove(env.timers) -- the delayed one of the first event stays
    immediate.fn(false, unpack(immediate.args))
    -- 3 sent; 5 arrived meanwhile: one more full batch of 3, and 2 wait instead of a 2-event POST.
    assert.same({ 3, 3 }, { #sent[1], #sent[2] })
    assert.equal(2, buffer.count(q))
    assert.equal(1, #env.timers)
    assert.equal(0.25, env.timers[1].delay)
    helper.run_timers(env)
    assert.equal(3, #sent)
    assert.equal(2, #sent[3])
    assert.equal(0, buffer.count(q))
  end)

  -- Events 1..last_n arrive: `first` at once, then `per_send` during each send. Returns the highest queue
  -- index a send saw, after checking that every event was sent once and in order.
  local function stream(batch_size, last_n, first, per_send)
    q = new_queue(batch_size, 100000)
    local next_n, highest = 1, 0
    local function arrive(k)
      for _ = 1, k do
        if next_n <= last_n then
          add(q, next_n)
          next_n = next_n + 1
        end
      end
    end
    S.outcome = function()
      highest = math.max(highest, q.last)
      arrive(per_send)
      return true
    end
    arrive(first)
    helper.run_timers(env)
    local got = {}
    for _, batch in ipairs(sent) do
      for _, e in ipairs(batch) do got[#got + 1] = e.n end
    end
    assert.equal(last_n, #got)
    for i = 1, last_n do
      if got[i] ~= i then
        assert.equal(i, got[i])
      end
    end
    assert.equal(0, buffer.count(q))
    assert.is_nil(next(q.items), "a sent or moved record's slot was left set")
    return highest
  end

  it("under steady load moves the queued records to the front, sending each once and in order", function()
    -- as many arrive during each send as it takes: the queue is never empty
    local highest = stream(3, 12000, 3, 3)
    assert.is_true(highest <= 1024 + 6, "queue indexes reached " .. highest)
  end)

  it("drains a backlog in order while more events arrive, moving records to the front", function()
    stream(50, 9000, 5000, 20) -- a backlog, as after a sidecar outage
  end)

  it("with the sidecar's limit known, a POST carries the whole backlog up to it", function()
    q = new_queue(3, 100)
    buffer.set_max_post("http://127.0.0.1:8750", 5)
    for i = 1, 12 do add(q, i) end
    helper.run_timers(env)
    local sizes = {}
    for i, b in ipairs(sent) do sizes[i] = #b end
    assert.same({ 5, 5, 2 }, sizes)
    assert.same({ n = 12 }, sent[3][2])
    assert.equal(0, buffer.count(q))
  end)

  it("under load, POSTs grow with what arrived during the round trip instead of the queue overflowing", function()
    buffer.set_max_post("http://127.0.0.1:8750", 1000)
    stream(3, 3000, 3, 40) -- in order, each once (checked by stream)
    local biggest = 0
    for _, batch in ipairs(sent) do biggest = math.max(biggest, #batch) end
    assert.equal(40, biggest)
    assert.is_true(#sent < 3000 / 3 / 5, #sent .. " POSTs")
    assert.equal(0, q.dropped)
  end)

  it("on a 413 halves the POSTs and sends again, losing nothing", function()
    buffer.set_max_post("http://127.0.0.1:8750", 8)
    S.outcome = function(body)
      if #helper.decode(body).events > 4 then return nil, "HTTP 413: too many events", true end
      return true
    end
    for i = 1, 8 do add(q, i) end
    helper.run_timers(env)
    assert.same({ 4, 4 }, { #sent[1], #sent[2] })
    assert.same({ n = 8 }, sent[2][4])
    assert.equal(0, buffer.count(q))
    assert.same({}, errors())
    assert.equal("sidecar refused 8 events in one POST (HTTP 413: too many events); sending at most 4",
                 helper.last_log(env, "warn"))
  end)

  it("drops a lone event the sidecar refuses with 413, and logs it", function()
    S.outcome = function() return nil, "HTTP 413: payload too large", true end
    add(q, 1)
    add(q, 2)
    helper.run_timers(env)
    assert.equal(0, buffer.count(q))
    assert.equal(0, #sent)
    assert.same({ "ERROR sidecar refused an event with HTTP 413: payload too large, event dropped",
                  "ERROR sidecar refused an event with HTTP 413: payload too large, event dropped" }, errors())
  end)

  it("keeps the events when a flush fails and sends them on retry, in order", function()
    S.outcome = function() return nil, "connection refused" end
    for i = 1, 4 do add(q, i) end
    helper.run_timers(env, false, 2)
    assert.equal(4, buffer.count(q))
    assert.is_true(q.failures >= 1)
    assert.matches("ERROR could not send events to sidecar at http://127.0.0.1:8750: connection refused %(4 events kept, retrying%)",
                   errors()[1])
    assert.equal(1, #env.timers) -- the retry, with backoff
    assert.is_true(env.timers[1].delay >= 0.5)
    S.outcome = function() return true end
    helper.run_timers(env)
    assert.equal(0, buffer.count(q))
    assert.same({ { n = 1 }, { n = 2 }, { n = 3 } }, sent[1])
    assert.same({ { n = 4 } }, sent[2])
    assert.equal(0, q.failures)
  end)

  it("keeps records flat and encodes them with the queue's put when their batch is sent, again on a retry", function()
    assert.equal(record, require("kong.plugins.aforo-metering.event").RECORD)
    local encoded = 0
    q.put = function(parts, k, items, base)
      encoded = encoded + 1
      parts[k + 1] = '{"n":'
      parts[k + 2] = items[base + 1]
      parts[k + 3] = ',"last":'
      parts[k + 4] = items[base + record]
      parts[k + 5] = "}"
      return k + 5
    end
    S.outcome = function() return nil, "connection refused" end
    for i = 1, 4 do
      add(q, i, -i)
    end
    assert.equal(-4, q.items[4 * record]) -- flat: no table per record
    assert.equal(0, encoded) -- nothing is encoded when an event is added
    helper.run_timers(env, false, 1)
    assert.equal(3, encoded) -- the first batch, not sent
    assert.equal(4, buffer.count(q))
    S.outcome = function() return true end
    helper.run_timers(env)
    assert.same({ { n = 1, last = -1 }, { n = 2, last = -2 }, { n = 3, last = -3 } }, sent[1])
    assert.same({ { n = 4, last = -4 } }, sent[2])
    assert.equal(3 + 4, encoded)
    assert.equal(0, buffer.count(q))
    assert.is_nil(next(q.items)) -- sent records are released
  end)

  it("does not hammer a failing sidecar with immediate flushes while backing off", function()
    S.outcome = function() return nil, "timeout" end
    add(q, 1)
    helper.run_timers(env, false, 1)
    for i = 2, 9 do add(q, i) end
    assert.equal(1, #env.timers)
  end)

  it("runs one flush at a time: a timer firing during a flush leaves the work to it", function()
    local inner_ran
    S.outcome = function()
      -- a second timer fires while this send is in flight
      inner_ran = true
      local before = #sent
      local t = { delay = 0, fn = env.timers[1] and env.timers[1].fn }
      if t.fn then t.fn(false, q) end
      assert.equal(before, #sent)
      S.outcome = function() return true end
      return true
    end
    for i = 1, 3 do add(q, i) end
    helper.run_timers(env)
    assert.is_true(inner_ran)
    assert.equal(0, buffer.count(q))
  end)

  it("drops new events past buffer_max_size, counts them and logs rate-limited", function()
    S.outcome = function() return nil, "down" end
    for i = 1, 25 do add(q, i) end
    assert.equal(10, buffer.count(q))
    assert.equal(15, q.dropped)
    local drops = 0
    for _, m in ipairs(errors()) do
      if m:find("buffer full", 1, true) then drops = drops + 1 end
    end
    assert.equal(1, drops)
    assert.matches("ERROR buffer full %(10 events%), dropped 1 events %(1 in total%)", errors()[1])
    env.clock.t = env.clock.t + 11
    add(q, 26)
    assert.matches("dropped 15 events %(16 in total%)", errors()[#errors()])
  end)

  it("drains the queue when the worker exits (premature timer)", function()
    for i = 1, 5 do add(q, i) end
    env.exiting = true
    helper.run_timers(env, true)
    assert.equal(0, buffer.count(q))
    assert.equal(2, #sent)
  end)

  it("schedules a zero-delay flush for events added while the worker exits", function()
    env.exiting = true
    add(q, 1)
    assert.equal(1, #env.timers)
    assert.equal(0, env.timers[1].delay)
    helper.run_timers(env, true)
    assert.equal(0, buffer.count(q))
  end)

  describe("under Kong's lua-resty-timer-ng (ngx.timer.at replaced, nginx's kept as native_timer_at)", function()
    local native

    before_each(function()
      native = {}
      -- The library after its stop: accepts jobs and never runs them.
      ngx.timer.at = function() return true end
      _G.native_timer_at = function(delay, fn, ...)
        native[#native + 1] = { delay = delay, fn = fn, args = { ... } }
        return true
      end
    end)

    after_each(function()
      _G.native_timer_at = nil
    end)

    it("schedules flushes with nginx's own timer while the worker exits", function()
      env.exiting = true
      for i = 1, 3 do add(q, i) end
      assert.is_true(#native >= 1)
      for _, t in ipairs(native) do
        assert.equal(0, t.delay)
        t.fn(false, unpack(t.args))
      end
      assert.equal(0, buffer.count(q))
      local got = {}
      for _, batch in ipairs(sent) do
        for _, e in ipairs(batch) do got[#got + 1] = e.n end
      end
      assert.same({ 1, 2, 3 }, got)
    end)

    it("keeps using ngx.timer.at (the library) while the worker runs", function()
      local lib = 0
      ngx.timer.at = function() lib = lib + 1 return true end
      add(q, 1)
      assert.equal(1, lib)
      assert.equal(0, #native)
    end)
  end)

  it("reports the events it could not send when the worker exits", function()
    S.outcome = function() return nil, "connection refused" end
    for i = 1, 2 do add(q, i) end
    env.exiting = true
    helper.run_timers(env, true)
    assert.matches("ERROR worker exiting: 2 events could not be sent", errors()[#errors()])
  end)

  it("keeps one queue per sidecar_url", function()
    local other = buffer.get("unix:/run/aforo/sidecar.sock", S.send, kong.log)
    assert.are_not.equal(q, other)
    assert.equal(q, buffer.get("http://127.0.0.1:8750", S.send, kong.log))
  end)
end)
