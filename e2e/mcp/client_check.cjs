// The TypeScript SDK (npm @modelcontextprotocol/sdk) as the client of a federated MCP endpoint:
// connects over streamable HTTP, lists the tools, calls the tool named by CALL (JSON arguments in
// ARGS) and prints one JSON line with what it saw.
//
// Usage: NODE_PATH=<node_modules> URL=http://... CALL=alpha_add ARGS='{"a":1,"b":2}' node client_check.cjs

const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

async function main() {
  const client = new Client({ name: "fleetgate-e2e-ts", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(process.env.URL));
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const result = await client.callTool({
    name: process.env.CALL,
    arguments: JSON.parse(process.env.ARGS || "{}"),
  });
  const text = (result.content || []).map((c) => c.text);
  const report = {
    protocolVersion: transport.protocolVersion,
    sessionId: Boolean(transport.sessionId),
    server: client.getServerVersion()?.name,
    tools,
    call: { error: Boolean(result.isError), text },
  };
  await transport.terminateSession();
  await client.close();
  console.log(JSON.stringify(report));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
