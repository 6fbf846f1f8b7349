// Scripted WebSocket server on Node `ws`, for wsrec's interop tests; the same steps as
// server.py (see its docstring).
//
// Usage: NODE_PATH=<dir with ws> node server.js SCRIPT.json [--deflate]
//            [--server-no-context-takeover] [--server-max-window-bits N]
//
// Prints `PORT <n>` on stdout; the first connection runs the script, later ones stay idle.
'use strict';

const fs = require('fs');
const { WebSocketServer } = require('ws');

const PATTERN = Array.from({ length: 997 }, (_, i) =>
  String.fromCharCode(97 + ((i * i + 7 * i) % 26)),
).join('');

function bigText(size) {
  const n = size - '{"big":""}'.length;
  return '{"big":"' + PATTERN.repeat(Math.floor(n / PATTERN.length) + 1).slice(0, n) + '"}';
}

const args = process.argv.slice(2);
const steps = JSON.parse(fs.readFileSync(args[0], 'utf8'));
const flag = (name) => args.includes(name);
const value = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};

let perMessageDeflate = false;
if (flag('--deflate')) {
  // Left undefined, ws grants what the client asks for; `false` would refuse such offers.
  perMessageDeflate = { threshold: 0 };
  if (flag('--server-no-context-takeover')) perMessageDeflate.serverNoContextTakeover = true;
  const bits = value('--server-max-window-bits');
  if (bits !== undefined) perMessageDeflate.serverMaxWindowBits = bits;
}

function send(ws, data, options) {
  return new Promise((resolve, reject) => ws.send(data, options, (e) => (e ? reject(e) : resolve())));
}

async function run(ws, next) {
  for (const step of steps) {
    switch (step.op) {
      case 'expect': {
        const got = await next();
        if (got !== step.data) await send(ws, JSON.stringify({ unexpected: got }), {});
        break;
      }
      case 'text':
        await send(ws, step.data, { binary: false });
        break;
      case 'binary':
        await send(ws, Buffer.from(step.data, 'base64'), { binary: true });
        break;
      case 'fragments':
      case 'binary_fragments': {
        const binary = step.op === 'binary_fragments';
        for (let i = 0; i < step.data.length; i++) {
          const part = binary ? Buffer.from(step.data[i], 'base64') : step.data[i];
          await send(ws, part, { binary, fin: i === step.data.length - 1 });
        }
        break;
      }
      case 'big':
        await send(ws, bigText(step.size), { binary: false });
        break;
      case 'ping':
        await new Promise((resolve) => {
          ws.once('pong', resolve);
          ws.ping(step.data);
        });
        await send(ws, JSON.stringify({ pong: step.data }), {});
        break;
      case 'close':
        ws.close(step.code, step.reason);
        return;
      case 'abort':
        // FIN after the data already written: no close frame.
        ws._socket.end();
        return;
      default:
        throw new Error(`unknown op ${step.op}`);
    }
  }
}

let served = 0;
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate }, () => {
  process.stdout.write(`PORT ${wss.address().port}\n`);
});
wss.on('connection', (ws) => {
  served += 1;
  if (served !== 1) return;
  const inbox = [];
  const waiting = [];
  ws.on('message', (data) => {
    const text = data.toString();
    if (waiting.length) waiting.shift()(text);
    else inbox.push(text);
  });
  const next = () =>
    inbox.length ? Promise.resolve(inbox.shift()) : new Promise((resolve) => waiting.push(resolve));
  run(ws, next).catch((e) => {
    process.stderr.write(`script failed: ${e.stack}\n`);
    process.exit(1);
  });
});
// Stop when the test goes away (stdin closes).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
