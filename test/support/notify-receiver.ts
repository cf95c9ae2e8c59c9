// A stand-in for PID 1's notification socket: a python3 process bound to an AF_UNIX datagram
// socket named by NOTIFY_SOCKET (Node cannot open one). Like PID 1 it closes the file descriptors
// that come with a message, which releases systemd-notify's BARRIER=1 wait.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { tempDir } from "./helpers.js";

const RECEIVER = `
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    fds = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(data[: len(data) - len(data) % a.itemsize])
            fds.extend(a)
    for fd in fds:
        os.close(fd)
    print(json.dumps({"message": msg.decode("utf-8", "replace"), "fds": len(fds)}), flush=True)
`;

export interface Datagram {
  message: string;
  fds: number;
}

export interface Receiver {
  socket: string;
  datagrams: Datagram[];
  /** Variables of every datagram so far, in order. */
  assignments(): string[];
  stop(): void;
}

export async function startReceiver(): Promise<Receiver> {
  const socket = path.join(tempDir("nodecert-notify-"), "notify.sock");
  const child: ChildProcess = spawn("python3", ["-u", "-c", RECEIVER, socket], { stdio: ["ignore", "pipe", "pipe"] });
  const datagrams: Datagram[] = [];
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`receiver did not start: ${err}`)), 10_000);
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = JSON.parse(buf.slice(0, i)) as Datagram & { listening?: boolean };
        buf = buf.slice(i + 1);
        if (line.listening) {
          clearTimeout(timer);
          resolve();
        } else datagrams.push(line);
      }
    });
    child.on("exit", (c) => reject(new Error(`receiver exited ${c}: ${err}`)));
  });
  return {
    socket,
    datagrams,
    assignments: () => datagrams.flatMap((d) => d.message.split("\n").filter(Boolean)),
    stop: () => child.kill("SIGKILL"),
  };
}

/** The receiver prints asynchronously; wait until it has printed what systemd-notify sent. */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for the notification");
    await new Promise((r) => setTimeout(r, 20));
  }
}
