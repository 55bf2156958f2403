// Two clients of Microsoft's JS SDK talk through the local stack; prints one JSON line per thing seen.
// Usage: node two_clients.mjs <function app URL> <first user> <second user> <text the second one sends>
import { WebPubSubClient, WebPubSubJsonProtocol } from "@azure/web-pubsub-client";

const [appUrl, firstUser, secondUser, text] = process.argv.slice(2);
const TIMEOUT_MS = 30000;
let waitingFor = "start";

const report = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const timer = setTimeout(() => {
  process.stderr.write(`timed out waiting for: ${waitingFor}\n`);
  process.exit(2);
}, TIMEOUT_MS);

async function negotiate(userId) {
  const response = await fetch(`${appUrl}/api/negotiate?userId=${encodeURIComponent(userId)}`);
  if (!response.ok) throw new Error(`negotiate ${userId}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()).url;
}

function connect(userId, options) {
  const client = new WebPubSubClient({ getClientAccessUrl: () => negotiate(userId) }, options);
  const seen = [];
  const waiters = [];
  client.on("connected", (e) => report({ client: userId, event: "connected", connectionId: e.connectionId, userId: e.userId }));
  client.on("server-message", (e) => {
    const data = e.message.data;
    report({ client: userId, event: "server-message", dataType: e.message.dataType, data });
    seen.push(data);
    for (const waiter of waiters.splice(0)) {
      if (waiter.matches(data)) waiter.resolve(data);
      else waiters.push(waiter);
    }
  });
  const until = (what, matches) => {
    waitingFor = `${userId}: ${what}`;
    const found = seen.find(matches);
    return found ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ matches, resolve }));
  };
  return { client, until };
}

const isPresence = (event, userId) => (d) => d?.type === "presence" && d.event === event && d.userId === userId;

// The first client uses the SDK's default (reliable JSON) protocol, the second the plain JSON protocol.
const first = connect(firstUser, {});
const second = connect(secondUser, { protocol: WebPubSubJsonProtocol() });
waitingFor = `${firstUser}: start`;
await first.client.start();
waitingFor = `${secondUser}: start`;
await second.client.start();
await first.until(`presence of ${secondUser}`, isPresence("connected", secondUser));
waitingFor = `${secondUser}: ack of the message`;
const result = await second.client.sendEvent("message", text, "text");
report({ client: secondUser, event: "acked", ackId: result.ackId });
await second.until("the reply with the stored id", (d) => d && d.type === undefined && typeof d.id === "string");
await first.until("the message", (d) => d?.type === "message" && d.userId === secondUser && d.data === text);
second.client.stop();
await first.until(`${secondUser} leaving`, isPresence("disconnected", secondUser));
first.client.stop();
clearTimeout(timer);
report({ event: "done" });
// The SDK's keep-alive timers outlive stop() by up to 40 s; both clients are stopped, so end here.
process.exit(0);
