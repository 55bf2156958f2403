// Drives Microsoft's JS client (@azure/web-pubsub-client) against the emulator and prints what it saw
// as one JSON line. Input: one JSON argument {urlA, urlB, dropHookBase, group}.
//   A uses the client's default protocol (json.reliable.webpubsub.azure.v1), B the plain JSON protocol.
import { WebPubSubClient, WebPubSubJsonProtocol } from "@azure/web-pubsub-client";

const input = JSON.parse(process.argv[2]);
const result = {};

function collector(client, kind) {
  const items = [];
  const waiters = [];
  client.on(kind, (e) => {
    items.push(e.message);
    waiters.splice(0).forEach((w) => w());
  });
  return {
    items,
    async take(n, timeoutMs = 15000) {
      const deadline = Date.now() + timeoutMs;
      while (items.length < n) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} ${kind} events, got ${items.length}`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return items.splice(0, n);
    },
  };
}

const a = new WebPubSubClient(input.urlA, { messageRetryOptions: { maxRetries: 0 } });
const b = new WebPubSubClient(input.urlB, { protocol: WebPubSubJsonProtocol() });
let aConnected = [];
a.on("connected", (e) => aConnected.push(e));
const aGroup = collector(a, "group-message");
const aServer = collector(a, "server-message");
const bGroup = collector(b, "group-message");

try {
  await a.start();
  await b.start();
  await a.joinGroup(input.group);
  await b.joinGroup(input.group);

  await a.sendToGroup(input.group, { from: "a" }, "json", { noEcho: true });
  await b.sendToGroup(input.group, "from b", "text");
  result.bReceived = (await bGroup.take(2)).map((m) => ({ group: m.group, dataType: m.dataType, data: m.data, fromUserId: m.fromUserId }));
  result.aReceived = (await aGroup.take(1)).map((m) => m.data);

  await a.sendEvent("echo", "echo me", "text");
  result.echo = (await aServer.take(1)).map((m) => ({ dataType: m.dataType, data: m.data }));

  try {
    await a.sendEvent("fail", "x", "text");
    result.failError = null;
  } catch (err) {
    result.failError = err.errorDetail ? err.errorDetail.name : String(err);
  }

  // Forced reconnect: the emulator cuts A's socket; B keeps sending; A must get everything once, in order.
  result.connectionId = aConnected[0].connectionId;
  const resp = await fetch(`${input.dropHookBase}/${result.connectionId}/drop`, { method: "POST" });
  result.dropStatus = resp.status;
  for (let i = 0; i < 5; i++) {
    await b.sendToGroup(input.group, `r${i}`, "text");
  }
  result.afterDrop = (await aGroup.take(5, 30000)).map((m) => m.data);
  await new Promise((resolve) => setTimeout(resolve, 300));
  result.extra = aGroup.items.map((m) => m.data);
  result.connectedEvents = aConnected.map((e) => e.connectionId);
} catch (err) {
  result.error = String(err && err.stack ? err.stack : err);
} finally {
  a.stop();
  b.stop();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
