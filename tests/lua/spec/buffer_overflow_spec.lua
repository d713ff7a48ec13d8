-- Specs of buffer.lua's overflow file: what a worker cannot send while the sidecar is down goes to a
-- file, replayed in order, claimed by rename, handed over on exit and on reload.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")
local helper = _G.aforo_spec_helper
local fixture = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "buffer_fixture.lua")

describe("aforo-metering buffer", function()
  local S = fixture.state(helper)
  local env, buffer, sent, q
  local new_queue, add, errors = S.new_queue, S.add, S.errors

  before_each(function()
    S.setup()
    env, buffer, sent, q = S.env, S.buffer, S.sent, S.q
  end)

  describe("overflow file", function()
    local dir, path

    local function numbers()
      local out = {}
      for _, batch in ipairs(sent) do
        for _, e in ipairs(batch) do out[#out + 1] = e.n end
      end
      return out
    end

    local function lines_of(file)
      local f = io.open(file, "rb")
      if not f then return nil end
      local n = 0
      for _ in f:lines() do n = n + 1 end
      f:close()
      return n
    end

    -- Writes (mode "wb") or appends ("ab") text to a file.
    local function put_file(file, text, mode)
      local f = assert(io.open(file, mode or "wb"))
      f:write(text)
      f:close()
    end

    -- Neither the overflow file nor a claimed one is left.
    local function assert_no_files()
      assert.is_nil(io.open(path, "rb"))
      assert.is_nil(io.open(path .. ".replaying", "rb"))
    end

    -- Removes the overflow watch timers from the pending ones; returns how many there were.
    local function unwatch()
      local n = 0
      for i = #env.timers, 1, -1 do
        if env.timers[i].fn == buffer._watch() then
          table.remove(env.timers, i)
          n = n + 1
        end
      end
      return n
    end

    before_each(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. dir))
      buffer.set_overflow(q, dir, 1000000)
      assert.equal(1, unwatch())
      path = q.overflow_path
      assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/aforo%-overflow%-0%-%d+%.jsonl$", path)
    end)

    after_each(function()
      os.remove(path)
      os.remove(path .. ".replaying")
      os.remove(dir)
    end)

    it("takes the events past the high-water mark while the sidecar is down, and replays them in order", function()
      S.outcome = function() return nil, "connection refused" end
      add(q, 1)
      helper.run_timers(env, false, 1) -- the first flush fails
      assert.is_true(q.failures >= 1)
      for i = 2, 6 do add(q, i) end     -- 6 queued: past half of buffer_max_size (10)
      helper.run_timers(env, false, 1) -- the spill timer
      assert.equal(0, buffer.count(q))
      assert.equal(6, lines_of(path))
      for i = 7, 8 do add(q, i) end     -- newer, in memory
      assert.equal(2, buffer.count(q))
      S.outcome = function() return true end
      helper.run_timers(env)
      -- The file is claimed and read a second later (a writer in another process that opened it before
      -- the claim has finished by then); the memory waits behind it.
      assert.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, numbers())
      assert_no_files()
      assert.equal(6, buffer.stats(q).spilled)
      assert.equal(0, #errors() - 1) -- only the "could not send" line
    end)

    it("never writes the file in the request path: adding only schedules a timer", function()
      S.outcome = function() return nil, "connection refused" end
      add(q, 1)
      helper.run_timers(env, false, 1)
      for i = 2, 9 do add(q, i) end
      assert.is_nil(io.open(path, "rb"))
    end)

    it("keeps appending while the sidecar stays down, then replays everything once", function()
      S.outcome = function() return nil, "connection refused" end
      local n = 0
      for _ = 1, 10 do
        for _ = 1, 6 do
          n = n + 1
          add(q, n)
        end
        helper.run_timers(env, false, 2)
      end
      assert.equal(0, buffer.stats(q).dropped)
      S.outcome = function() return true end
      for _ = 1, 10 do helper.run_timers(env) end
      local expected = {}
      for i = 1, n do expected[i] = i end
      assert.same(expected, numbers())
    end)

    it("drops past overflow_max_bytes, counting them and logging an ERROR", function()
      buffer.set_overflow(q, dir, 30) -- three events of 9 bytes ('{"n":1}' and a newline... )
      S.outcome = function() return nil, "connection refused" end
      add(q, 1)
      helper.run_timers(env, false, 1)
      for i = 2, 6 do add(q, i) end
      helper.run_timers(env, false, 1)
      assert.equal(0, buffer.count(q))
      local kept = lines_of(path)
      assert.is_true(kept >= 3 and kept < 6)
      assert.equal(6 - kept, buffer.stats(q).overflow_dropped)
      assert.matches("ERROR overflow file .* full %(overflow_max_bytes 30%), dropped " .. (6 - kept) .. " events",
                     errors()[#errors()])
    end)

    it("keeps what an exiting worker could not send, and the next worker replays it", function()
      S.outcome = function() return nil, "connection refused" end
      for i = 1, 2 do add(q, i) end
      env.exiting = true
      helper.run_timers(env, true)
      assert.equal(0, #errors())
      assert.equal(2, lines_of(path))
      -- The next worker (same id) finds the file and sends it without waiting for traffic.
      buffer._reset()
      env.exiting = false
      env.timers = {}
      S.outcome = function() return true end
      local q2 = new_queue(3, 10)
      buffer.set_overflow(q2, dir, 1000000)
      assert.equal(1, unwatch()) -- and one flush, now
      assert.equal(1, #env.timers)
      helper.run_timers(env)
      assert.same({ 1, 2 }, numbers())
      assert.is_nil(io.open(path, "rb"))
    end)

    it("on exit with older events in the file, appends the queue after them instead of sending it first", function()
      put_file(path, '{"n":1}\n{"n":2}\n', "wb")
      for i = 3, 4 do add(q, i) end
      env.exiting = true
      helper.run_timers(env, true)
      assert.equal(0, #sent)
      assert.equal(4, lines_of(path))
      buffer._reset()
      env.exiting = false
      env.timers = {}
      local q2 = new_queue(3, 10)
      buffer.set_overflow(q2, dir, 1000000)
      helper.run_timers(env)
      assert.same({ 1, 2, 3, 4 }, numbers())
    end)

    it("skips a line cut short by a failed write", function()
      put_file(path, '{"n":1}\n{"n":2}\n{"n":', "wb")
      add(q, 3)
      helper.run_timers(env)
      assert.same({ 1, 2, 3 }, numbers())
      assert.matches("ERROR overflow file .* skipped a line that is not a whole event", errors()[1])
    end)

    it("after a write cut short, the next append starts on a line of its own and is sent", function()
      put_file(path, '{"n":1}\n{"n":', "wb")
      S.outcome = function() return nil, "connection refused" end
      add(q, 2)
      helper.run_timers(env, false, 1)
      for i = 3, 6 do add(q, i) end
      helper.run_timers(env, false, 1) -- the spill timer
      assert.equal(0, buffer.count(q))
      S.outcome = function() return true end
      helper.run_timers(env)
      assert.same({ 1, 2, 3, 4, 5, 6 }, numbers())
    end)

    it("finds a file the worker it replaces wrote after this one started, and sends it without traffic", function()
      buffer._reset()
      env.timers = {}
      local q2 = new_queue(3, 10)
      buffer.set_overflow(q2, dir, 1000000)
      assert.equal(1, #env.timers) -- the watch, nothing to flush yet
      helper.run_timers(env, false, 1)
      assert.equal(1, #env.timers) -- looks again a second later
      assert.equal(0, #sent)
      -- The exiting worker (another process) appends its events now.
      put_file(path, '{"n":1}\n{"n":2}\n', "ab")
      helper.run_timers(env, false, 5)
      assert.same({ 1, 2 }, numbers())
      assert_no_files()
    end)

    it("events appended after the file was claimed go to a new file and are sent too, none twice", function()
      put_file(path, '{"n":1}\n{"n":2}\n', "wb")
      add(q, 3)
      helper.run_timers(env, false, 1) -- claims the file, reads it a second later, the memory after it
      assert.is_nil(io.open(path, "rb"))
      assert.same({}, numbers())
      -- The exiting worker appends between the claim and the read: the append starts a new file.
      put_file(path, '{"n":4}\n', "ab")
      helper.run_timers(env)
      assert.same({ 1, 2, 4, 3 }, numbers())
      assert_no_files()
    end)

    it("waits for a claimed file on a timer nginx runs after its clock moved (never a zero delay)", function()
      put_file(path, '{"n":1}\n', "wb")
      add(q, 2)
      helper.run_timers(env, false, 1) -- claims the file; the memory waits behind it
      assert.same({}, numbers())
      -- Its timer fires a little early (nginx's clock is cached): not settled yet, it looks again.
      local t = table.remove(env.timers, 1)
      env.clock.t = env.clock.t + 0.9999
      t.fn(false, unpack(t.args))
      assert.equal(1, #env.timers)
      assert.is_true(env.timers[1].delay >= 0.01)
      helper.run_timers(env)
      assert.same({ 1, 2 }, numbers())
    end)

    it("while a claimed file settles, the queue waits, and past its high-water mark spills after it", function()
      put_file(path, '{"n":1}\n{"n":2}\n', "wb")
      add(q, 3)
      helper.run_timers(env, false, 1) -- claims the file
      assert.same({}, numbers())
      assert.is_true(q.settling)
      for i = 4, 14 do -- more than buffer_max_size (10) in all: past its half they go to the file
        add(q, i)
        for k = #env.timers, 1, -1 do -- the spill timers only (the clock stays within the second)
          local t = env.timers[k]
          if t.delay == 0 and t.args[2] == nil then
            table.remove(env.timers, k)
            t.fn(false, unpack(t.args))
          end
        end
      end
      assert.equal(0, buffer.stats(q).dropped)
      helper.run_timers(env)
      local all = {}
      for i = 1, 14 do all[i] = i end
      assert.same(all, numbers())
      assert.equal(0, buffer.stats(q).dropped)
      assert_no_files()
    end)

    it("a worker exiting while a claimed file settles hands its queue over in the file, after it", function()
      put_file(path, '{"n":1}\n', "wb")
      add(q, 2)
      helper.run_timers(env, false, 1) -- claims the file
      env.exiting = true
      helper.run_timers(env, true)
      assert.same({}, numbers())
      assert.equal(1, lines_of(path .. ".replaying"))
      assert.equal(1, lines_of(path))
      buffer._reset()
      env.exiting = false
      env.timers = {}
      local q2 = new_queue(3, 10)
      buffer.set_overflow(q2, dir, 1000000)
      helper.run_timers(env)
      assert.same({ 1, 2 }, numbers())
    end)

    it("stops watching when the worker exits", function()
      env.timers = {}
      buffer._reset()
      local q2 = new_queue(3, 10)
      buffer.set_overflow(q2, dir, 1000000)
      env.exiting = true
      helper.run_timers(env, true)
      assert.equal(0, #env.timers)
    end)
  end)
end)
