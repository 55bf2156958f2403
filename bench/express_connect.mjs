// Times @azure/web-pubsub-express's dispatcher on one signed connect event, for bench/connect_handler.py.
//
// Reads one JSON line {"headers", "body"} on stdin, then one line per round, "<kind> <events>" (kind:
// "stand-ins" or "node", see request() below); answers each round with a JSON line {"wall": µs per event, "cpu": CPU µs per event}. The first
// line answered is {"answer": ...}: what the dispatcher answered, for the caller to compare.
//
// The handler does what the app's connect handler does: accept the user, pick the JSON subprotocol, and
// keep the display name from the query in the connection state. The express dispatcher checks no
// signature (the app does). Each event gets a fresh request stream and response object, as a server
// makes for each request; no socket is involved.
import { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { createInterface } from "node:readline";
import { WebPubSubEventHandler } from "@azure/web-pubsub-express";

const JSON_SUBPROTOCOLS = ["json.webpubsub.azure.v1", "json.reliable.webpubsub.azure.v1"];
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const event = JSON.parse((await lines.next()).value);
const headers = Object.fromEntries(Object.entries(event.headers).map(([name, value]) => [name.toLowerCase(), value]));
const body = Buffer.from(event.body, "utf8");

const handler = new WebPubSubEventHandler(headers["ce-hub"], {
  path: "/api/eventhandler",
  allowedEndpoints: [`https://${headers["webhook-request-origin"]}`],
  handleConnect(request, response) {
    const subprotocol = (request.subprotocols ?? []).find((offered) => JSON_SUBPROTOCOLS.includes(offered));
    const name = request.queries?.userName?.[0];
    if (name) response.setState("userName", name);
    response.success({ userId: request.context.userId, subprotocol });
  },
});
const middleware = handler.getMiddleware();

// "stand-ins": a bare stream and a plain object; "node": Node's own IncomingMessage and ServerResponse,
// as its HTTP server hands them to express (without a socket: the response is kept in memory).
function request(kind) {
  const stream = kind === "node" ? new IncomingMessage(null) : new Readable({ read() {} });
  Object.assign(stream, { method: "POST", baseUrl: "", path: "/api/eventhandler", url: "/api/eventhandler", headers });
  stream.push(body);
  stream.push(null);
  return stream;
}

function response(kind, req, resolve) {
  if (kind === "node") {
    const res = new ServerResponse(req);
    const end = res.end.bind(res);
    res.end = (answer) => {
      end(answer);
      resolve({ status: res.statusCode, headers: res.getHeaders(), body: String(answer ?? "") });
    };
    return res;
  }
  return {
    statusCode: 200,
    headers: {},
    setHeader(name, value) { this.headers[name.toLowerCase()] = value; },
    end(answer) { resolve({ status: this.statusCode, headers: this.headers, body: String(answer ?? "") }); },
  };
}

function dispatch(kind) {
  return new Promise((resolve, reject) => {
    const req = request(kind);
    middleware(req, response(kind, req, resolve), () => reject(new Error("the dispatcher did not handle the event")));
  });
}

process.stdout.write(JSON.stringify({ answer: await dispatch("stand-ins") }) + "\n");
for (let next = await lines.next(); !next.done; next = await lines.next()) {
  const [kind, count] = next.value.split(" ");
  const events = Number(count);
  const cpu = process.cpuUsage();
  const began = process.hrtime.bigint();
  for (let i = 0; i < events; i++) await dispatch(kind);
  const wall = Number(process.hrtime.bigint() - began) / 1000 / events;
  const used = process.cpuUsage(cpu);
  process.stdout.write(JSON.stringify({ wall, cpu: (used.user + used.system) / events }) + "\n");
}
