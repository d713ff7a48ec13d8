-- The access phase as Kong 3.x's runloop runs it (kong/init.lua, execute_access_plugins_iterator and
-- flush_delayed_response), for one plugin: used by runner.lua in nginx and by the busted helper.
--
-- Kong sets ngx.ctx.delay_response, then runs each plugin's access handler in a coroutine of its own
-- (coroutine.create + coroutine.resume). kong.response.exit called there does not answer: it stores
-- the response in ngx.ctx.delayed_response (status, body, headers, a flush callback) and yields, so
-- the rest of the handler never runs (the coroutine is abandoned) and no further plugin's access runs.
-- After the loop Kong clears delay_response and flushes the stored response (headers, JSON body,
-- ngx.exit). A handler that raises is logged with kong.log.err and answered 500
-- {"message":"An unexpected error occurred"}, also delayed; header_filter and log run afterwards
-- either way. Written from Kong's semantics, not copied from it.
-- ngx and kong are read at each call (the busted helper installs fresh ones per spec).
local coroutine = coroutine


local _M = {}

_M.UNEXPECTED = "An unexpected error occurred"


--- Sends the response kong.response.exit stored while the access phase ran (Kong's
-- flush_delayed_response): its callback when it has one, else Kong's error response.
function _M.flush_delayed_response(ctx)
  ctx.delay_response = nil
  local cb = ctx.delayed_response_callback
  if type(cb) == "function" then
    cb(ctx)
    return
  end
  local dr = ctx.delayed_response
  -- Kong answers with kong.response.error(status, message, headers): the JSON {"message": ...}.
  return kong.response.exit(dr.status_code, dr.content, dr.headers)
end


--- Runs handler:access(conf) as Kong does. Returns true when the access phase ended in a response
-- (exit or error), and the error the handler raised, if any.
function _M.access(handler, conf)
  local ctx = ngx.ctx
  ctx.delay_response = true
  local co = coroutine.create(handler.access)
  local ok, err = coroutine.resume(co, handler, conf)
  local raised
  if not ok then
    raised = err
    kong.log.err(err)
    ctx.delayed_response = { status_code = 500, content = { message = _M.UNEXPECTED } }
  end
  -- Kong's plugins iterator ends here: a handler that exited (or raised) stops the loop.
  ctx.delay_response = nil
  if ctx.delayed_response then
    _M.flush_delayed_response(ctx)
    return true, raised
  end
  return false
end


return _M
