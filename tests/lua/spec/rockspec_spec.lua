-- The rockspec installs every module of the plugin (a module missing from it is missing in Kong).
local root = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../../../"

describe("aforo-metering rockspec", function()
  it("lists every file of the plugin as its module, and nothing else", function()
    local dir = "lua/kong/plugins/aforo-metering/"
    local files = {}
    local ls = assert(io.popen("ls " .. root .. dir))
    for name in ls:lines() do
      if name:match("%.lua$") then
        files["kong.plugins.aforo-metering." .. name:gsub("%.lua$", "")] = dir .. name
      end
    end
    ls:close()
    local spec = {}
    local chunk = assert(loadfile(root .. "lua/aforo-metering-0.1.0-1.rockspec", "t", spec))
    if setfenv then setfenv(chunk, spec) end
    chunk()
    assert.same(files, spec.build.modules)
  end)
end)
