-- files: answers questions about the files in agents/data through a third-party MCP server,
-- @modelcontextprotocol/server-filesystem (install: npm install -g
-- @modelcontextprotocol/server-filesystem, or put scripts/npm-deps.sh's .bin on PATH).
-- Its tools are registered beside the Lua tools as fs_list_directory, fs_read_text_file, ...
-- (docs/mcp.md).
return {
  name = "files",
  description = "Lists and reads the files of agents/data through an MCP filesystem server",
  model = "offline",
  system_prompt = "You answer questions about the files in the data folder. List a directory "
    .. "before reading a file you do not know, and quote what the file says.",
  tools = {},
  mcp = {
    fs = {
      command = "mcp-server-filesystem",
      args = { "data" },   -- the folder it may touch, relative to this agent's folder
      tools = { "list_directory", "read_text_file", "get_file_info", "search_files" },
      timeout = 10,
    },
  },
  limits = { max_steps = 6, max_tool_calls = 10 },
  default_input = "List the files in the data folder.",
}
