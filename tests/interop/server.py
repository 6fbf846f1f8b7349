"""Scripted WebSocket server on Python `websockets`, for wsrec's interop tests.

Usage: server.py SCRIPT.json [--deflate] [--server-no-context-takeover]
                 [--server-max-window-bits N] [--cert PEM --key PEM]

Listens on 127.0.0.1 on a free port and prints `PORT <n>` on stdout (nothing else goes to
stdout). The first connection runs the script's steps in order; later connections (the
recorder reconnecting) are kept open and idle. Steps (JSON objects with an "op"):

  {"op": "expect", "data": TEXT}            wait for a message from the client; if it differs,
                                            send {"unexpected": <what came>} instead
  {"op": "text", "data": TEXT}              one text message
  {"op": "binary", "data": BASE64}          one binary message
  {"op": "fragments", "data": [TEXT, ...]}  one text message sent as one frame per item
  {"op": "binary_fragments", "data": [BASE64, ...]}
  {"op": "big", "size": N}                  one text message of N bytes, see big_text()
  {"op": "ping", "data": TEXT}              ping, wait for the pong, then send {"pong": TEXT}
  {"op": "close", "code": N, "reason": R}   close handshake with code and reason
  {"op": "abort"}                           close the TCP connection without a close frame
"""

import argparse
import asyncio
import base64
import json
import ssl
import sys

from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

PATTERN = "".join(chr(97 + (i * i + 7 * i) % 26) for i in range(997))


def big_text(size):
    """A JSON text of exactly `size` bytes: {"big":"<letters>"}; the tests build the same."""
    n = size - len('{"big":""}')
    body = (PATTERN * (n // len(PATTERN) + 1))[:n]
    return '{"big":"' + body + '"}'


async def run_script(ws, steps):
    for step in steps:
        op = step["op"]
        if op == "expect":
            got = await ws.recv()
            if got != step["data"]:
                await ws.send(json.dumps({"unexpected": got}))
        elif op == "text":
            await ws.send(step["data"])
        elif op == "binary":
            await ws.send(base64.b64decode(step["data"]))
        elif op == "fragments":
            await ws.send(list(step["data"]))
        elif op == "binary_fragments":
            await ws.send([base64.b64decode(d) for d in step["data"]])
        elif op == "big":
            await ws.send(big_text(step["size"]))
        elif op == "ping":
            waiter = await ws.ping(step["data"])
            await waiter
            await ws.send(json.dumps({"pong": step["data"]}))
        elif op == "close":
            await ws.close(step["code"], step["reason"])
            return
        elif op == "abort":
            # close() on the transport flushes what is buffered, then sends FIN: the data
            # arrives, the close frame never does.
            ws.transport.close()
            return
        else:
            raise ValueError(f"unknown op {op!r}")


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("script")
    p.add_argument("--deflate", action="store_true")
    p.add_argument("--server-no-context-takeover", action="store_true")
    p.add_argument("--server-max-window-bits", type=int)
    p.add_argument("--cert")
    p.add_argument("--key")
    args = p.parse_args()
    with open(args.script) as f:
        steps = json.load(f)

    extensions = []
    if args.deflate:
        extensions.append(
            ServerPerMessageDeflateFactory(
                server_no_context_takeover=args.server_no_context_takeover,
                server_max_window_bits=args.server_max_window_bits,
                compress_settings={"memLevel": 5},
            )
        )
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)

    served = 0

    async def handler(ws):
        nonlocal served
        served += 1
        if served == 1:
            await run_script(ws, steps)
        await ws.wait_closed()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        extensions=extensions,
        ssl=context,
        max_size=None,
        ping_interval=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        # Stop when the test goes away (stdin closes) or kills us.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
