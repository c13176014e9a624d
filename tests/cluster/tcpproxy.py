#!/usr/bin/env python3
"""A TCP forwarder the cluster puts in front of PostgreSQL and S3, so the fault tests can make
either unreachable without touching the machine's own servers (a shared PostgreSQL cannot be
restarted by a test, and every node must lose the dependency at the same moment).

    tcpproxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT

SIGUSR1 takes it down: the listener closes (new connections are refused, as from a stopped
server) and every open connection is cut, as a restarting PostgreSQL or a dead S3 endpoint cuts
them. SIGUSR2 brings it back on the same port. SIGTERM exits.
"""
import asyncio
import signal
import socket
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError, OSError):
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1])
    host, tport = sys.argv[2].rsplit(":", 1)
    tport = int(tport)
    conns = set()  # the tasks of open connections, cancelled when going down

    async def handle(creader, cwriter):
        me = asyncio.current_task()
        conns.add(me)
        try:
            sreader, swriter = await asyncio.open_connection(host, tport)
        except OSError:
            cwriter.close()
            conns.discard(me)
            return
        try:
            await asyncio.gather(pipe(creader, swriter), pipe(sreader, cwriter))
        except asyncio.CancelledError:
            pass
        finally:
            for w in (cwriter, swriter):
                # An abort (RST), not a polite close: what a process killed mid-conversation does.
                if w.transport is not None:
                    w.transport.abort()
            conns.discard(me)

    async def listen():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return await asyncio.start_server(handle, sock=sock)

    state = {"server": await listen()}
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    async def down():
        s = state.pop("server", None)
        if s is not None:
            s.close()
            for t in list(conns):
                t.cancel()
            await s.wait_closed()
        print("down", flush=True)

    async def up():
        if "server" not in state:
            state["server"] = await listen()
        print("up", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(down()))
    loop.add_signal_handler(signal.SIGUSR2, lambda: loop.create_task(up()))
    loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(None))
    print("up", flush=True)
    await done


if __name__ == "__main__":
    asyncio.run(main())
